using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Host.Cli;
using Controller.Host.Nbd;
using Controller.Host.Verify;
using Controller.Management;
using Controller.Traces;

namespace Controller.Host.Commands;

/// <summary>
/// <c>ssdhost replay</c>: a block trace sent to any NBD server, at its times or as fast as the server allows.
/// </summary>
internal static class ReplayCommand
{
    public static readonly Verb Verb = new(
        "replay",
        "replays a block trace (blkparse, fio iolog, MQSim, MSR, SPC)",
        "Sends the requests of the block trace FILE (FILE.gz is read through gzip) to the device: reads, writes, trims (as NBD TRIM) and flushes, with FUA where the trace has it. Addresses beyond the device are folded onto it (--fit), with a warning; extents are widened to whole blocks of the server's minimum and requests longer than its largest are split. Written data is a fixed pattern, or with --ledger a stamp per 512 bytes, so that `ssdhost verify URI --ledger FILE --check` judges the device afterwards (the ledger starts by zeroing the device; extents are then widened to whole 4 KiB blocks, a request waits for any in flight on a common block, and a flush for every request in flight). On a terminal a progress line shows what is done and the time left (plain lines when redirected); then the latency of each operation, or one JSON object.",
        [
            new(
                "--format",
                "F",
                "blkparse, fio, mqsim, msr or spc (see ssd-emulator sim --help)",
                Choices: Controller.Traces.TraceFormats.Names
            ),
            new(
                "--speed",
                "X",
                "1 (default): each request is sent at its time in the trace, up to --iodepth in flight (default 64; a request that finds none free waits, and is counted late); 2 twice as fast; 0: as fast as the server answers, --iodepth in flight (default 1)"
            ),
            new("--iodepth", "N", "requests in flight at most"),
            new(
                "--fit",
                "wrap|scale",
                "addresses beyond the device: modulo its size (default) or in proportion",
                Choices: ["wrap", "scale"]
            ),
            new("--ledger", "FILE", "a new verify ledger of every request (FILE must not exist)"),
            new("--seed", "N", "the seed stamped into the data with --ledger (default 1)"),
            HostOptions.Json,
        ],
        RunAsync
    )
    {
        Arguments = [HostOptions.Uri, new("FILE", "the trace (FILE.gz is read through gzip)")],
        Epilogue = """
            Examples:
              ssdhost replay nbd+unix:///ssd?socket=/tmp/ssd.sock tpcc.trace --format mqsim
              ssdhost replay nbd://127.0.0.1:10809/ssd trim.iolog --format fio --speed 0 --iodepth 16 --ledger run.ledger
            """,
    };

    private static async Task<int> RunAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        string file = args.Positional(1, "the trace FILE");
        if (!File.Exists(file))
        {
            throw new UsageException($"the trace file '{file}' does not exist");
        }

        TraceFormat format = Format(args);
        TraceFit fit = Parsed(args, "--fit", TraceFormats.ParseFit);
        double speed = Parsed(args, "--speed", TraceFormats.ParseSpeed);

        int depth = (int)args.Integer("--iodepth", speed > 0 ? 64 : 1, 1, 1024);
        string? ledgerPath = args.Value("--ledger");
        ulong seed = (ulong)args.Integer("--seed", 1, 0, long.MaxValue);
        if (ledgerPath is null && args.Value("--seed") is not null)
        {
            throw new UsageException("--seed is the seed of the --ledger's stamps; give --ledger FILE with it");
        }

        if (ledgerPath is not null && File.Exists(ledgerPath))
        {
            throw new UsageException($"the ledger '{ledgerPath}' exists; a replay starts a new one");
        }

        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        long alignment = Math.Max(512, ledgerPath is null ? client.BlockSizes.Minimum : Ledger.BlockBytes);
        TraceSummary summary;
        TraceFolder folder;
        long commands;
        try
        {
            summary = TraceSummary.Scan(TraceReader.Open(file, format), client.BlockSizes.Maximum);
            folder = new TraceFolder(client.Size, fit, summary.EndBytes, client.BlockSizes.Maximum, alignment);
            commands = TraceReader.Open(file, format).SelectMany(folder.Fold).LongCount();
        }
        catch (TraceFormatException e)
        {
            throw new UsageException($"{e.Message}");
        }

        await console
            .Error.WriteLineAsync(
                $"replay: {Path.GetFileName(file)} ({TraceFormats.NameOf(format)}): {summary.Describe()}"
            )
            .ConfigureAwait(false);
        if (folder.Warning is { } warning)
        {
            await console.Error.WriteLineAsync($"replay: warning: {warning}").ConfigureAwait(false);
        }

        using Ledger? ledger = ledgerPath is null
            ? null
            : Ledger.Create(ledgerPath, seed, client.Size / Ledger.BlockBytes, client.Size);
        using var run = new Replayer(client, ledger, seed, depth, speed, cancellation);
        if (ledger is not null)
        {
            await console
                .Error.WriteLineAsync(
                    $"replay: zeroing the device for the ledger ({client.Size / Ledger.BlockBytes * Ledger.BlockBytes} bytes)"
                )
                .ConfigureAwait(false);
            await run.BaselineAsync().ConfigureAwait(false);
        }

        long started = Stopwatch.GetTimestamp();
        Task replay = run.RunAsync(TraceReader.Open(file, format).SelectMany(folder.Fold));
        var progress = new ProgressLine(console.Error, console.OutputIsTerminal, TimeSpan.FromSeconds(1));
        while (!replay.IsCompleted)
        {
            await Task.WhenAny(replay, Task.Delay(console.OutputIsTerminal ? 250 : 1000, CancellationToken.None))
                .ConfigureAwait(false);
            if (!replay.IsCompleted)
            {
                progress.Show(Progress(run, commands, Stopwatch.GetElapsedTime(started).TotalSeconds), now: true);
            }
        }

        bool interrupted = false;
        try
        {
            await replay.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Ctrl-C: what completed is still worth its summary (and its ledger, checkable as is).
            interrupted = true;
        }

        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        progress.Keep();
        await Report(args, console, file, format, run, seconds, ledgerPath).ConfigureAwait(false);
        if (interrupted)
        {
            await console
                .Error.WriteLineAsync(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"replay: interrupted (Ctrl-C) after {run.Completed} of {commands} commands; the figures cover those"
                    )
                )
                .ConfigureAwait(false);
            return run.Failures > 0 ? ExitCodes.Failure : ExitCodes.Interrupted;
        }

        return run.Failures > 0 ? ExitCodes.Failure : ExitCodes.Done;
    }

    private static TraceFormat Format(CommandArgs args)
    {
        string name = args.Value("--format")
            ?? throw new UsageException($"--format F is required: {string.Join(", ", TraceFormats.Names)}");
        return TraceFormats.TryParse(name, out TraceFormat format)
            ? format
            : throw new UsageException(
                $"--format '{name}' is not a trace format; formats are {string.Join(", ", TraceFormats.Names)}"
            );
    }

    private static T Parsed<T>(CommandArgs args, string option, Func<string?, T> parse)
    {
        try
        {
            return parse(args.Value(option));
        }
        catch (FormatException e)
        {
            throw new UsageException($"{option} {e.Message}");
        }
    }

    private static string Progress(Replayer run, long commands, double elapsed)
    {
        long done = run.Completed;
        double rate = done / Math.Max(elapsed, 1e-6);
        string left = done == 0 ? "?" : $"{(commands - done) / Math.Max(rate, 1e-6):0} s";
        return string.Create(
            CultureInfo.InvariantCulture,
            $"replay: {done}/{commands} ({(double)done / Math.Max(1, commands):P0}) {elapsed:0.0} s, {rate:0} IOPS, {run.Bytes / Math.Max(elapsed, 1e-6) / (1 << 20):0.0} MiB/s, {run.Failures} failed, {left} left"
        );
    }

    private static async Task Report(
        CommandArgs args,
        HostConsole console,
        string file,
        TraceFormat format,
        Replayer run,
        double seconds,
        string? ledger
    )
    {
        var operations = run
            .Latencies.Where(l => l.Value.Count > 0)
            .Select(l => new
            {
                operation = l.Key,
                count = l.Value.Count,
                meanMicroseconds = Math.Round(l.Value.Mean / 1000, 1),
                p50Microseconds = l.Value.Percentile(0.5) / 1000.0,
                p99Microseconds = l.Value.Percentile(0.99) / 1000.0,
                p999Microseconds = l.Value.Percentile(0.999) / 1000.0,
                maxMicroseconds = l.Value.Max / 1000.0,
            })
            .ToList();
        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        new
                        {
                            trace = file,
                            format = TraceFormats.NameOf(format),
                            commands = run.Completed,
                            failures = run.Failures,
                            late = run.Late,
                            bytes = run.Bytes,
                            seconds = Math.Round(seconds, 3),
                            iops = Math.Round(run.Completed / seconds, 1),
                            operations,
                            ledger,
                        },
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
            return;
        }

        CultureInfo c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(
            c,
            $"replay {Path.GetFileName(file)}: {run.Completed} commands in {seconds:0.00} s: {run.Completed / seconds:0} IOPS, {run.Bytes / seconds / (1 << 20):0.0} MiB/s; {run.Failures} failed; {run.Late} sent late (no free slot at their time)"
        );
        foreach (var o in operations)
        {
            text.AppendLine(
                c,
                $"  {o.operation, -6} n={o.count, -8} mean={o.meanMicroseconds:0.0}us p50={o.p50Microseconds:0.0}us p99={o.p99Microseconds:0.0}us p99.9={o.p999Microseconds:0.0}us max={o.maxMicroseconds:0.0}us"
            );
        }

        if (ledger is not null)
        {
            text.AppendLine(c, $"ledger {ledger}: check the device with ssdhost verify URI --ledger {ledger} --check");
        }

        await console.Out.WriteAsync(text.ToString()).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends the requests, each in its own task, with at most the depth in flight; with a ledger, in the order the
    /// ledger can judge.
    /// </summary>
    private sealed class Replayer(
        NbdClient client,
        Ledger? ledger,
        ulong seed,
        int depth,
        double speed,
        CancellationToken cancellation
    ) : IDisposable
    {
        private readonly SemaphoreSlim _slots = new(depth, depth);
        private readonly Lock _gate = new();
        private readonly List<(long First, long End, Task Done)> _inFlight = [];
        private byte[] _pattern = [];
        private long _generation = 1;
        private long _completed;
        private long _bytes;
        private long _failures;

        public SortedDictionary<string, LatencyHistogram> Latencies { get; } =
            new(StringComparer.Ordinal)
            {
                ["read"] = new(),
                ["write"] = new(),
                ["trim"] = new(),
                ["flush"] = new(),
            };

        public long Completed => Interlocked.Read(ref _completed);

        public long Bytes => Interlocked.Read(ref _bytes);

        public long Failures => Interlocked.Read(ref _failures);

        public long Late { get; private set; }

        public void Dispose() => _slots.Dispose();

        /// <summary>The ledger's known starting state: the whole device zeroed, then flushed.</summary>
        public async Task BaselineAsync()
        {
            Ledger l = ledger!;
            await SendAsync(
                    new TraceRequest(0, 0, TraceOperation.Write, 0, l.Blocks * Ledger.BlockBytes),
                    zero: true,
                    measured: false
                )
                .ConfigureAwait(false);
            await SendAsync(new TraceRequest(0, 0, TraceOperation.Flush, 0, 0), zero: false, measured: false)
                .ConfigureAwait(false);
        }

        public async Task RunAsync(IEnumerable<TraceRequest> requests)
        {
            long start = Stopwatch.GetTimestamp();
            foreach (TraceRequest request in requests)
            {
                if (speed > 0)
                {
                    TimeSpan due = TimeSpan.FromTicks((long)(request.TimeNanoseconds / speed / 100));
                    TimeSpan wait = due - Stopwatch.GetElapsedTime(start);
                    if (wait > TimeSpan.FromMilliseconds(1))
                    {
                        await Task.Delay(wait, cancellation).ConfigureAwait(false);
                    }

                    if (_slots.CurrentCount == 0)
                    {
                        Late++;
                    }
                }

                if (ledger is not null)
                {
                    await OrderedAsync(request).ConfigureAwait(false);
                }

                await _slots.WaitAsync(cancellation).ConfigureAwait(false);
                Task sent = SendAndReleaseAsync(request);
                if (ledger is not null)
                {
                    lock (_gate)
                    {
                        _inFlight.RemoveAll(f => f.Done.IsCompleted);
                        _inFlight.Add(
                            (
                                request.Offset / Ledger.BlockBytes,
                                (request.End + Ledger.BlockBytes - 1) / Ledger.BlockBytes,
                                sent
                            )
                        );
                    }
                }
            }

            for (int i = 0; i < depth; i++)
            {
                await _slots.WaitAsync(cancellation).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// With a ledger: a flush waits for every request in flight, any other request for those on a common block.
        /// </summary>
        private async Task OrderedAsync(TraceRequest request)
        {
            Task[] before;
            lock (_gate)
            {
                long first = request.Offset / Ledger.BlockBytes;
                long end = (request.End + Ledger.BlockBytes - 1) / Ledger.BlockBytes;
                before =
                [
                    .. _inFlight
                        .Where(f => request.Operation == TraceOperation.Flush || (f.First < end && first < f.End))
                        .Select(f => f.Done),
                ];
            }

            await Task.WhenAll(before).ConfigureAwait(false);
        }

        private async Task SendAndReleaseAsync(TraceRequest request)
        {
            try
            {
                await SendAsync(request, zero: false, measured: true).ConfigureAwait(false);
            }
            finally
            {
                _slots.Release();
            }
        }

        private async Task SendAsync(TraceRequest request, bool zero, bool measured)
        {
            long generation = 0;
            char kind = zero
                ? 'Z'
                : request.Operation switch
                {
                    TraceOperation.Write => 'W',
                    TraceOperation.Trim => 'T',
                    TraceOperation.Flush => 'S',
                    _ => 'R',
                };
            byte[]? rented = null;
            Memory<byte> data = Memory<byte>.Empty;
            if (request.Operation is TraceOperation.Read or TraceOperation.Write && !zero)
            {
                rented = ArrayPool<byte>.Shared.Rent((int)request.Length);
                data = rented.AsMemory(0, (int)request.Length);
            }

            if (ledger is not null && kind != 'R')
            {
                lock (_gate)
                {
                    generation = _generation++;
                    ledger.Issued(
                        new LedgerOp(
                            generation,
                            kind,
                            request.Offset / Ledger.BlockBytes,
                            request.Length / Ledger.BlockBytes,
                            session: 0,
                            request.Fua
                        )
                    );
                }
            }

            if (kind == 'W')
            {
                Fill(data.Span, request.Offset, generation);
            }

            long started = Stopwatch.GetTimestamp();
            try
            {
                await (
                    kind switch
                    {
                        'R' => client.ReadAsync(request.Offset, data, cancellation),
                        'W' => client.WriteAsync(request.Offset, data, request.Fua, cancellation),
                        'T' => client.TrimAsync(request.Offset, request.Length, request.Fua, cancellation),
                        'Z' => client.ZeroAsync(
                            request.Offset,
                            request.Length,
                            noHole: false,
                            request.Fua,
                            cancellation
                        ),
                        _ => client.FlushAsync(request.Fua, cancellation),
                    }
                ).ConfigureAwait(false);
                long nanoseconds = Stopwatch.GetElapsedTime(started).Ticks * 100;
                lock (_gate)
                {
                    if (measured)
                    {
                        Latencies[Name(request.Operation)].Record(nanoseconds);
                    }

                    if (generation > 0)
                    {
                        ledger!.Acked(generation);
                    }
                }

                if (measured)
                {
                    Interlocked.Increment(ref _completed);
                    Interlocked.Add(
                        ref _bytes,
                        request.Operation is TraceOperation.Read or TraceOperation.Write ? request.Length : 0
                    );
                }
            }
            catch (NbdCommandException e)
            {
                Interlocked.Increment(ref _failures);
                Interlocked.Increment(ref _completed);
                if (generation > 0)
                {
                    lock (_gate)
                    {
                        ledger!.Failed(generation, e.Message);
                    }
                }
            }
            finally
            {
                if (rented is not null)
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }
        }

        /// <summary>
        /// A write's data: with a ledger, the stamps of its generation; without, a fixed pseudo-random pattern.
        /// </summary>
        private void Fill(Span<byte> data, long offset, long generation)
        {
            if (ledger is not null)
            {
                for (int at = 0; at < data.Length; at += Ledger.BlockBytes)
                {
                    VerifyStamp.Fill(data.Slice(at, Ledger.BlockBytes), offset + at, generation, seed);
                }

                return;
            }

            byte[] pattern = _pattern;
            if (pattern.Length < data.Length)
            {
                pattern = new byte[Math.Max(data.Length, 1 << 20)];
                var prng = new Prng(seed);
                for (int i = 0; i + 8 <= pattern.Length; i += 8)
                {
                    BitConverter.TryWriteBytes(pattern.AsSpan(i), prng.NextUInt64());
                }

                _pattern = pattern;
            }

            pattern.AsSpan(0, data.Length).CopyTo(data);
        }

        private static string Name(TraceOperation operation) =>
            operation switch
            {
                TraceOperation.Read => "read",
                TraceOperation.Write => "write",
                TraceOperation.Trim => "trim",
                _ => "flush",
            };
    }
}
