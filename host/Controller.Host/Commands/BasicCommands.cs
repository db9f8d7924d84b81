using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Host.Cli;
using Controller.Host.Nbd;
using Controller.Management;
using Controller.Nbd;

namespace Controller.Host.Commands;

/// <summary>The verbs that send one kind of command: info, write, read, trim, zero, flush, map.</summary>
internal static class BasicCommands
{
    private const int RequestsInFlight = 8;

    public static readonly Verb Info = new(
        "info",
        "the export: size, block sizes, what it supports",
        "Connects and prints the export's size, block sizes (minimum, preferred, maximum), the commands it supports, and whether it offers structured replies and base:allocation.",
        [new("--list", null, "list the server's exports instead"), HostOptions.Json],
        RunInfoAsync
    )
    {
        Arguments = [HostOptions.Uri],
        Epilogue = "Example:\n  ssdhost info nbd+unix:///ssd?socket=/tmp/ssd.sock",
    };

    public static readonly Verb Write = new(
        "write",
        "write a pattern byte, a file or standard input",
        "Writes at OFFSET: LENGTH bytes of one byte value (--pattern BYTE --length SIZE), or the contents of FILE (--file FILE, '-' for standard input; --length then takes only that much). Offset and length must be whole blocks of the server's minimum block size.",
        [
            new("--pattern", "BYTE", "the byte to write, 0 to 255 or 0x00 to 0xff (with --length)"),
            new("--file", "FILE|-", "write the contents of FILE ('-': standard input)"),
            new("--length", "SIZE", "bytes to write (k, M, G); with --file, at most that much"),
            HostOptions.Fua("each write is durable before it completes"),
            HostOptions.Json,
        ],
        RunWriteAsync
    )
    {
        Arguments = [HostOptions.Uri, HostOptions.Offset],
        Epilogue = """
            Examples:
              ssdhost write nbd://127.0.0.1:10809/ssd 0 --length 1M --pattern 0xab
              ssdhost write nbd://127.0.0.1:10809/ssd 1M --file disk.img --fua
              head -c 64k /dev/urandom | ssdhost write nbd://127.0.0.1:10809/ssd 0 --file -
            """,
    };

    public static readonly Verb Read = new(
        "read",
        "read to a file or standard output, or check a pattern",
        "Reads LENGTH bytes at OFFSET to FILE (default: standard output), or, with --expect-pattern, checks that every byte is BYTE and exits 1 naming the first offset that is not.",
        [
            new("--output", "FILE|-", "where the bytes go (default: standard output)"),
            new("--expect-pattern", "BYTE", "check that every byte is BYTE instead of writing them out"),
            HostOptions.Json,
        ],
        RunReadAsync
    )
    {
        Arguments = [HostOptions.Uri, HostOptions.Offset, HostOptions.Length],
        Epilogue = """
            Examples:
              ssdhost read nbd://127.0.0.1:10809/ssd 0 1M --output first.bin
              ssdhost read nbd://127.0.0.1:10809/ssd 0 1M --expect-pattern 0xab
            """,
    };

    public static readonly Verb Trim = new(
        "trim",
        "punch a hole: the range reads as zeros",
        "Sends TRIM for the range: it reads as zeros from then on, and its flash becomes garbage.",
        [
            HostOptions.Fua("the hole is durable before the command completes (no flush needed after it)"),
            HostOptions.Json,
        ],
        (a, c, t) => RangeCommandAsync(a, c, NbdCommand.Trim, t)
    )
    {
        Arguments = [HostOptions.Uri, HostOptions.Offset, HostOptions.Length],
        Epilogue = """
            Examples:
              ssdhost trim nbd://127.0.0.1:10809/ssd 0 1M
              ssdhost trim nbd://127.0.0.1:10809/ssd 64k 64k --fua
            """,
    };

    public static readonly Verb Zero = new(
        "zero",
        "make a range read as zeros (WRITE ZEROES)",
        "Sends WRITE ZEROES for the range.",
        [
            new(
                "--no-hole",
                null,
                "ask the server to allocate the zeros rather than unmap them (NBD_CMD_FLAG_NO_HOLE)"
            ),
            HostOptions.Fua("the zeros are durable before the command completes"),
            HostOptions.Json,
        ],
        (a, c, t) => RangeCommandAsync(a, c, NbdCommand.WriteZeroes, t)
    )
    {
        Arguments = [HostOptions.Uri, HostOptions.Offset, HostOptions.Length],
        Epilogue = """
            Examples:
              ssdhost zero nbd://127.0.0.1:10809/ssd 0 1M --no-hole
              ssdhost zero nbd://127.0.0.1:10809/ssd 0 1M --fua
            """,
    };

    public static readonly Verb Flush = new(
        "flush",
        "make every completed write durable",
        "Sends FLUSH: every write, trim and zero completed before it is durable when it returns.",
        [HostOptions.Json],
        RunFlushAsync
    )
    {
        Arguments = [HostOptions.Uri],
        Epilogue = "Example:\n  ssdhost flush nbd://127.0.0.1:10809/ssd",
    };

    public static readonly Verb Map = new(
        "map",
        "data, hole and zero extents, as nbdinfo --map prints them",
        "Prints the allocation of the range (default: the whole device) from base:allocation block status: offset, length, type (bit 0 hole, bit 1 zero) and a description, one extent a line.",
        [HostOptions.Json],
        RunMapAsync
    )
    {
        Arguments =
        [
            HostOptions.Uri,
            new("OFFSET", "where the range starts (default 0; k, M, G)"),
            new("LENGTH", "bytes from OFFSET (default: to the end)"),
        ],
        Epilogue = "Example:\n  ssdhost map nbd+unix:///ssd?socket=/tmp/ssd.sock",
    };

    private static async Task<int> RunInfoAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        if (args.Has("--list"))
        {
            NbdUri uri = Connection.ParseUri(args, args.Positional(0, "the NBD URI"));
            List<(string Name, string Description)> exports;
            try
            {
                exports = await NbdClient.ListAsync(uri, Connection.Tls(args), cancellation).ConfigureAwait(false);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new UsageException($"no NBD server at {uri}: {e.Message}");
            }

            await console
                .Out.WriteLineAsync(
                    args.Has("--json")
                        ? JsonSerializer.Serialize(
                            exports.Select(e => new { name = e.Name, description = e.Description }),
                            ManagementJson.Options
                        )
                        : string.Join('\n', exports.Select(e => $"{e.Name}\t{e.Description}"))
                )
                .ConfigureAwait(false);
            return 0;
        }

        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        string[] features =
        [
            .. Enum.GetValues<NbdExportFeatures>()
                .Where(f => f != NbdExportFeatures.None && client.Features.HasFlag(f))
                .Select(f => f.ToString()),
        ];
        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        new
                        {
                            export = client.Export,
                            size = client.Size,
                            description = client.Description,
                            blockSizes = new
                            {
                                minimum = client.BlockSizes.Minimum,
                                preferred = client.BlockSizes.Preferred,
                                maximum = client.BlockSizes.Maximum,
                            },
                            features,
                            structuredReplies = client.Structured,
                            baseAllocation = client.CanBlockStatus,
                        },
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
            return 0;
        }

        await console
            .Out.WriteLineAsync(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"""
                    export:        '{client.Export}'{(client.Description.Length > 0 ? $" ({client.Description})" : "")}
                    size:          {client.Size} bytes ({ByteUnits.Binary(client.Size)})
                    block sizes:   minimum {client.BlockSizes.Minimum}, preferred {client.BlockSizes.Preferred}, maximum {client.BlockSizes.Maximum}
                    features:      {string.Join(' ', features.Select(ProtocolName))}
                    replies:       {(client.Structured ? "structured" : "simple")}; block status {(
                        client.CanBlockStatus ? "base:allocation" : "not offered"
                    )}
                    """
                )
            )
            .ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// A transmission flag by the protocol's name for it: SendWriteZeroes is NBD_FLAG_SEND_WRITE_ZEROES.
    /// </summary>
    internal static string ProtocolName(string feature)
    {
        string snake = string.Concat(feature.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString()))
            .ToUpperInvariant();
        return "NBD_FLAG_" + snake.Replace("DONT_FRAGMENT", "DF", StringComparison.Ordinal);
    }

    private static async Task<int> RunWriteAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        byte? pattern = args.Byte("--pattern");
        string? file = args.Value("--file");
        if ((pattern is null) == (file is null))
        {
            throw new UsageException("give one of --pattern BYTE (with --length) or --file FILE|-");
        }

        long? length = args.Value("--length") is { } l ? Values.Size(l, "--length") : null;
        if (pattern is not null && length is null)
        {
            throw new UsageException("--pattern needs --length SIZE");
        }

        long offset = Values.Size(args.Positional(1, "the OFFSET"), "OFFSET");
        Stream? source = null;
        try
        {
            if (file is not null)
            {
                try
                {
                    source = file == "-" ? console.OpenInput() : File.OpenRead(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new UsageException($"cannot read '{file}': {e.Message}");
                }

                if (length is null && source.CanSeek)
                {
                    length = source.Length;
                }
            }

            await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
            if (length is { } known)
            {
                Connection.CheckRange(args, client, offset, known);
            }
            else
            {
                Connection.CheckRange(args, client, offset, 0);
            }

            bool fua = args.Has("--fua");
            int chunk = ChunkBytes(client);
            long started = Stopwatch.GetTimestamp();
            long written = 0;
            var inFlight = new List<Task>();
            while (length is null || written < length)
            {
                int size = (int)Math.Min(chunk, (length ?? long.MaxValue) - written);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
                int filled = size;
                if (pattern is { } value)
                {
                    buffer.AsSpan(0, size).Fill(value);
                }
                else
                {
                    filled = await source!
                        .ReadAtLeastAsync(buffer.AsMemory(0, size), size, throwOnEndOfStream: false, cancellation)
                        .ConfigureAwait(false);
                    if (filled == 0)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        break;
                    }

                    if (filled < size && length is not null)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        throw new UsageException(
                            $"'{file}' ended after {written + filled} of the {length} bytes asked for"
                        );
                    }
                }

                Connection.CheckRange(args, client, offset + written, filled);
                long at = offset + written;
                inFlight.Add(WriteChunkAsync(client, at, buffer, filled, fua, cancellation));
                written += filled;
                if (inFlight.Count >= RequestsInFlight)
                {
                    await Task.WhenAny(inFlight).ConfigureAwait(false);
                    await Drain(inFlight).ConfigureAwait(false);
                }

                if (filled < size)
                {
                    break;
                }
            }

            await Task.WhenAll(inFlight).ConfigureAwait(false);
            await Summary(args, console, "wrote", written, offset, started).ConfigureAwait(false);
            return 0;
        }
        finally
        {
            if (source is not null)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task WriteChunkAsync(
        NbdClient client,
        long offset,
        byte[] buffer,
        int length,
        bool fua,
        CancellationToken cancellation
    )
    {
        try
        {
            await client.WriteAsync(offset, buffer.AsMemory(0, length), fua, cancellation).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<int> RunReadAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        long offset = Values.Size(args.Positional(1, "the OFFSET"), "OFFSET");
        long length = Values.Size(args.Positional(2, "the LENGTH"), "LENGTH");
        byte? expect = args.Byte("--expect-pattern");
        string output = args.Value("--output") ?? "-";
        if (expect is not null && args.Value("--output") is not null)
        {
            throw new UsageException("--expect-pattern checks the data; it takes no --output");
        }

        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        Connection.CheckRange(args, client, offset, length);
        Stream? sink = null;
        try
        {
            if (expect is null)
            {
                try
                {
                    sink = output == "-" ? console.OpenOutput() : File.Create(output);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new UsageException($"cannot write '{output}': {e.Message}");
                }
            }

            int chunk = ChunkBytes(client);
            long started = Stopwatch.GetTimestamp();
            var inFlight = new Queue<(Task Read, byte[] Buffer, long At, int Size)>();
            long next = offset;
            while (next < offset + length || inFlight.Count > 0)
            {
                while (next < offset + length && inFlight.Count < RequestsInFlight)
                {
                    int size = (int)Math.Min(chunk, offset + length - next);
                    byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
                    inFlight.Enqueue(
                        (client.ReadAsync(next, buffer.AsMemory(0, size), cancellation), buffer, next, size)
                    );
                    next += size;
                }

                (Task read, byte[] data, long at, int got) = inFlight.Dequeue();
                try
                {
                    await read.ConfigureAwait(false);
                    if (expect is { } value)
                    {
                        int bad = data.AsSpan(0, got).IndexOfAnyExcept(value);
                        if (bad >= 0)
                        {
                            await console
                                .Error.WriteLineAsync(
                                    string.Create(
                                        CultureInfo.InvariantCulture,
                                        $"ssdhost read: byte {at + bad} is 0x{data[bad]:x2}, not the expected 0x{value:x2}"
                                    )
                                )
                                .ConfigureAwait(false);
                            return 1;
                        }
                    }
                    else
                    {
                        await sink!.WriteAsync(data.AsMemory(0, got), cancellation).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(data);
                }
            }

            if (sink is not null)
            {
                await sink.FlushAsync(cancellation).ConfigureAwait(false);
            }

            // The data may be on standard output: the summary goes to standard error then.
            await Summary(
                    args,
                    output == "-" && expect is null ? console with { Out = console.Error } : console,
                    expect is null ? "read" : $"checked (every byte 0x{expect:x2})",
                    length,
                    offset,
                    started
                )
                .ConfigureAwait(false);
            return 0;
        }
        finally
        {
            if (sink is not null && output != "-")
            {
                await sink.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> RangeCommandAsync(
        CommandArgs args,
        HostConsole console,
        NbdCommand command,
        CancellationToken cancellation
    )
    {
        long offset = Values.Size(args.Positional(1, "the OFFSET"), "OFFSET");
        long length = Values.Size(args.Positional(2, "the LENGTH"), "LENGTH");
        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        Connection.CheckRange(args, client, offset, length);
        long started = Stopwatch.GetTimestamp();
        bool fua = args.Has("--fua");
        await (
            command == NbdCommand.Trim
                ? client.TrimAsync(offset, length, fua, cancellation)
                : client.ZeroAsync(offset, length, args.Has("--no-hole"), fua, cancellation)
        ).ConfigureAwait(false);

        await Summary(args, console, command == NbdCommand.Trim ? "trimmed" : "zeroed", length, offset, started)
            .ConfigureAwait(false);
        return 0;
    }

    private static async Task<int> RunFlushAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        long started = Stopwatch.GetTimestamp();
        await client.FlushAsync(fua: false, cancellation).ConfigureAwait(false);
        await Summary(args, console, "flushed", 0, 0, started).ConfigureAwait(false);
        return 0;
    }

    private static async Task<int> RunMapAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        long offset = args.Positionals.Count > 1 ? Values.Size(args.Positionals[1], "OFFSET") : 0;
        long length = args.Positionals.Count > 2 ? Values.Size(args.Positionals[2], "LENGTH") : client.Size - offset;
        Connection.CheckRange(args, client, offset, length);
        var extents = new List<(long Offset, long Length, NbdAllocationState State)>();
        for (long at = offset; at < offset + length; )
        {
            List<NbdExtent> reply = await client
                .BlockStatusAsync(at, Math.Min(offset + length - at, uint.MaxValue & ~4095L), cancellation)
                .ConfigureAwait(false);
            if (reply.Count == 0)
            {
                throw new NbdClientException($"the server described nothing at offset {at}");
            }

            foreach (NbdExtent extent in reply)
            {
                long size = Math.Min(extent.Length, offset + length - at);
                if (extents.Count > 0 && extents[^1].State == extent.Flags)
                {
                    extents[^1] = extents[^1] with { Length = extents[^1].Length + size };
                }
                else
                {
                    extents.Add((at, size, extent.Flags));
                }

                at += size;
                if (at >= offset + length)
                {
                    break;
                }
            }
        }

        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        extents.Select(e => new
                        {
                            offset = e.Offset,
                            length = e.Length,
                            type = (uint)e.State,
                            description = Describe(e.State),
                        }),
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
            return 0;
        }

        foreach ((long at, long size, NbdAllocationState state) in extents)
        {
            await console
                .Out.WriteLineAsync(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"{at, 10} {size, 11} {(uint)state, 4}  {Describe(state)}"
                    )
                )
                .ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>nbdinfo's words for an allocation state.</summary>
    private static string Describe(NbdAllocationState state) =>
        state switch
        {
            NbdAllocationState.None => "data",
            NbdAllocationState.Hole => "hole",
            NbdAllocationState.Zero => "zero",
            _ => "hole,zero",
        };

    /// <summary>
    /// Requests of at most 4 MiB (or the server's maximum): big enough to stream, small enough to pipeline.
    /// </summary>
    private static int ChunkBytes(NbdClient client) =>
        (int)Math.Min(4u << 20, Math.Max(client.BlockSizes.Preferred, client.BlockSizes.Maximum));

    private static async Task Drain(List<Task> inFlight)
    {
        foreach (Task done in inFlight.Where(t => t.IsCompleted).ToList())
        {
            await done.ConfigureAwait(false);
            inFlight.Remove(done);
        }
    }

    private static async Task Summary(
        CommandArgs args,
        HostConsole console,
        string what,
        long bytes,
        long offset,
        long startedTimestamp
    )
    {
        double seconds = Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds;
        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        new
                        {
                            verb = args.Verb,
                            offset,
                            bytes,
                            seconds = Math.Round(seconds, 6),
                        },
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
            return;
        }

        string rate =
            bytes > 0 && seconds > 0
                ? string.Create(CultureInfo.InvariantCulture, $", {bytes / seconds / (1 << 20):0.0} MiB/s")
                : "";
        await console
            .Out.WriteLineAsync(
                bytes > 0
                    ? string.Create(
                        CultureInfo.InvariantCulture,
                        $"{what} {bytes} bytes ({ByteUnits.Binary(bytes)}) at offset {offset} in {seconds:0.000} s{rate}"
                    )
                    : string.Create(CultureInfo.InvariantCulture, $"{what} in {seconds * 1000:0.0} ms")
            )
            .ConfigureAwait(false);
    }
}
