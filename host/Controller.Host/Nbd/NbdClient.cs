using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Controller.Management;
using Controller.Nbd;

namespace Controller.Host.Nbd;

/// <summary>A command the server answered with an error.</summary>
public sealed class NbdCommandException(NbdError error, string message) : Exception(message)
{
    /// <summary>The protocol's error number.</summary>
    public NbdError Error { get; } = error;
}

/// <summary>The server broke the protocol, or refused the handshake.</summary>
public sealed class NbdClientException(string message) : Exception(message);

/// <summary>
/// An NBD client (fixed newstyle, structured replies, <c>base:allocation</c>) speaking the wire
/// format of <see cref="NbdProtocol"/>. Commands may be issued from many tasks at once: requests go
/// out under a lock, and one reader matches the replies to them by handle, in any order.
/// </summary>
public sealed class NbdClient : IAsyncDisposable
{
    private Stream _stream;

    // Replies are read through a buffer of their own (requests are written to _stream directly):
    // a reply's header, offset and data come in with one receive rather than four. Made once the
    // handshake is over (the options' replies are read straight from the stream, which TLS replaces).
    private BufferedStream _replies = null!;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<ulong, Pending> _pending = new();
    private readonly byte[] _request = new byte[NbdProtocol.RequestBytes];
    private Task _reader = Task.CompletedTask;
    private Exception? _broken;
    private long _nextHandle;
    private uint _allocationContext;

    private NbdClient(Stream stream)
    {
        _stream = stream;
    }

    /// <summary>The export's name.</summary>
    public string Export { get; private set; } = "";

    /// <summary>The export's size in bytes.</summary>
    public long Size { get; private set; }

    /// <summary>What the export supports.</summary>
    public NbdExportFeatures Features { get; private set; }

    /// <summary>Minimum, preferred and maximum block sizes (512/4096/32 MiB when the server does not say).</summary>
    public (uint Minimum, uint Preferred, uint Maximum) BlockSizes { get; private set; } = (1, 4096, 32 << 20);

    /// <summary>The export's description, if the server gave one.</summary>
    public string Description { get; private set; } = "";

    /// <summary>True when structured replies were negotiated.</summary>
    public bool Structured { get; private set; }

    /// <summary>True when the server offers <c>base:allocation</c> block status.</summary>
    public bool CanBlockStatus => _allocationContext != 0;

    /// <summary>Connects to <paramref name="uri"/> and negotiates the export it names.</summary>
    public static Task<NbdClient> ConnectAsync(NbdUri uri, CancellationToken cancellation) =>
        ConnectAsync(uri, tls: null, cancellation);

    /// <summary>
    /// Connects to <paramref name="uri"/> and negotiates the export it names; for an nbds:// URI,
    /// over TLS with <paramref name="tls"/> (NBD_OPT_STARTTLS before any other option).
    /// </summary>
    public static async Task<NbdClient> ConnectAsync(NbdUri uri, TlsCredentials? tls, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var client = new NbdClient(await OpenAsync(uri, cancellation).ConfigureAwait(false));
        try
        {
            await client.GreetAsync(uri, tls, cancellation).ConfigureAwait(false);
            await client.HandshakeAsync(uri.Export, cancellation).ConfigureAwait(false);
            client._replies = new BufferedStream(client._stream, 64 << 10);
            client._reader = client.ReadRepliesAsync();
            return client;
        }
        catch
        {
            await client._stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Lists the server's exports (NBD_OPT_LIST), then ends the session; over TLS for an nbds:// URI.
    /// </summary>
    public static async Task<List<(string Name, string Description)>> ListAsync(
        NbdUri uri,
        TlsCredentials? tls,
        CancellationToken cancellation
    )
    {
        ArgumentNullException.ThrowIfNull(uri);
        var client = new NbdClient(await OpenAsync(uri, cancellation).ConfigureAwait(false));
        try
        {
            await client.GreetAsync(uri, tls, cancellation).ConfigureAwait(false);
            await client.SendOptionAsync(NbdOption.List, [], cancellation).ConfigureAwait(false);
            var exports = new List<(string, string)>();
            while (true)
            {
                (NbdOptionReply type, byte[] data) = await client
                    .ReadOptionReplyAsync(NbdOption.List, cancellation)
                    .ConfigureAwait(false);
                if (type == NbdOptionReply.Ack)
                {
                    break;
                }

                if (type != NbdOptionReply.Server || data.Length < 4)
                {
                    throw new NbdClientException($"the server refused to list its exports ({type})");
                }

                exports.Add(
                    NbdOptionData.ReadServer(data)
                        ?? throw new NbdClientException("the server listed an export whose name overruns its reply")
                );
            }

            await client.SendOptionAsync(NbdOption.Abort, [], cancellation).ConfigureAwait(false);
            return exports;
        }
        finally
        {
            await client._stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A connected stream to the server <paramref name="uri"/> names (TCP without Nagle's delay, or a Unix socket).
    /// </summary>
    private static async Task<Stream> OpenAsync(NbdUri uri, CancellationToken cancellation)
    {
        var socket =
            uri.EndPoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(uri.EndPoint, cancellation).ConfigureAwait(false);
            if (socket.ProtocolType == ProtocolType.Tcp)
            {
                socket.NoDelay = true;
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>.</summary>
    public Task ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellation) =>
        SendAsync(
            NbdCommand.Read,
            NbdCommandModifiers.None,
            offset,
            (uint)buffer.Length,
            ReadOnlyMemory<byte>.Empty,
            new Pending(NbdCommand.Read, offset, buffer),
            cancellation
        );

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/>; with <paramref name="fua"/>, durable when done.
    /// </summary>
    public Task WriteAsync(long offset, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellation) =>
        SendAsync(
            NbdCommand.Write,
            Fua(fua),
            offset,
            (uint)data.Length,
            data,
            new Pending(NbdCommand.Write, offset, Memory<byte>.Empty),
            cancellation
        );

    /// <summary>
    /// Trims (punches a hole in) <paramref name="length"/> bytes at <paramref name="offset"/>, in
    /// requests of at most 1 GiB; with <paramref name="fua"/>, the hole is durable when each completes.
    /// </summary>
    public Task TrimAsync(long offset, long length, bool fua, CancellationToken cancellation) =>
        InPiecesAsync(NbdCommand.Trim, Fua(fua), offset, length, cancellation);

    /// <summary>
    /// Makes <paramref name="length"/> bytes at <paramref name="offset"/> read as zeros (in requests
    /// of at most 1 GiB); with <paramref name="noHole"/>, without unmapping them; with
    /// <paramref name="fua"/>, durable when each completes.
    /// </summary>
    public Task ZeroAsync(long offset, long length, bool noHole, bool fua, CancellationToken cancellation) =>
        InPiecesAsync(
            NbdCommand.WriteZeroes,
            Fua(fua) | (noHole ? NbdCommandModifiers.NoHole : NbdCommandModifiers.None),
            offset,
            length,
            cancellation
        );

    /// <summary>
    /// Makes every command completed before it durable (FUA on a flush, which the protocol allows, asks for nothing
    /// more).
    /// </summary>
    public Task FlushAsync(bool fua, CancellationToken cancellation) =>
        SendAsync(
            NbdCommand.Flush,
            Fua(fua),
            0,
            0,
            ReadOnlyMemory<byte>.Empty,
            new Pending(NbdCommand.Flush, 0, Memory<byte>.Empty),
            cancellation
        );

    private static NbdCommandModifiers Fua(bool fua) => fua ? NbdCommandModifiers.Fua : NbdCommandModifiers.None;

    /// <summary>
    /// The allocation of <paramref name="length"/> bytes at <paramref name="offset"/> (the server may describe less).
    /// </summary>
    public async Task<List<NbdExtent>> BlockStatusAsync(long offset, long length, CancellationToken cancellation)
    {
        if (!CanBlockStatus)
        {
            throw new NbdClientException("the server does not offer base:allocation block status");
        }

        var pending = new Pending(NbdCommand.BlockStatus, offset, Memory<byte>.Empty);
        await SendAsync(
                NbdCommand.BlockStatus,
                NbdCommandModifiers.None,
                offset,
                checked((uint)length),
                ReadOnlyMemory<byte>.Empty,
                pending,
                cancellation
            )
            .ConfigureAwait(false);
        return pending.Extents;
    }

    /// <summary>A trim or write-zeroes of any length: the protocol's length is 32 bits, so 1 GiB at a time.</summary>
    private async Task InPiecesAsync(
        NbdCommand command,
        NbdCommandModifiers flags,
        long offset,
        long length,
        CancellationToken cancellation
    )
    {
        const long Piece = 1L << 30;
        for (long done = 0; done < length; done += Piece)
        {
            long size = Math.Min(Piece, length - done);
            await SendAsync(
                    command,
                    flags,
                    offset + done,
                    (uint)size,
                    ReadOnlyMemory<byte>.Empty,
                    new Pending(command, offset + done, Memory<byte>.Empty),
                    cancellation
                )
                .ConfigureAwait(false);
        }
    }

    /// <summary>Sends NBD_CMD_DISC and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        // The caller may be running on the reply reader (a command's continuation): leave it, so
        // the reader can see the connection close and end while this waits for it.
        await Task.Yield();
        try
        {
            if (_broken is null)
            {
                await SendAsync(
                        NbdCommand.Disconnect,
                        NbdCommandModifiers.None,
                        0,
                        0,
                        ReadOnlyMemory<byte>.Empty,
                        null,
                        CancellationToken.None
                    )
                    .ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NbdClientException or SocketException)
        {
            // The connection is already gone.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception e)
            when (e
                    is IOException
                        or ObjectDisposedException
                        or NbdClientException
                        or EndOfStreamException
                        or OperationCanceledException
                        or NotSupportedException
            )
        {
            // Closed under it (a disposed stream says it cannot be read).
        }

        _sendLock.Dispose();
    }

    private async Task GreetAsync(CancellationToken cancellation)
    {
        byte[] greeting = new byte[NbdGreeting.Bytes];
        await _stream.ReadExactlyAsync(greeting, cancellation).ConfigureAwait(false);
        NbdHandshakeFeatures features = NbdGreeting.Read(greeting)?.Features
            ?? throw new NbdClientException("the server did not greet as an NBD server (fixed newstyle)");
        if (!features.HasFlag(NbdHandshakeFeatures.FixedNewstyle))
        {
            throw new NbdClientException("the server does not speak fixed newstyle");
        }

        byte[] flags = new byte[NbdClientFlags.Bytes];
        new NbdClientFlags(
            NbdClientFeatures.FixedNewstyle
                | (features & NbdHandshakeFeatures.NoZeroes) switch
                {
                    0 => 0,
                    _ => NbdClientFeatures.NoZeroes,
                }
        ).Write(flags);
        await _stream.WriteAsync(flags, cancellation).ConfigureAwait(false);
    }

    /// <summary>
    /// The greeting, then, for an nbds:// URI, NBD_OPT_STARTTLS and the TLS handshake: every option after it goes over
    /// TLS.
    /// </summary>
    private async Task GreetAsync(NbdUri uri, TlsCredentials? tls, CancellationToken cancellation)
    {
        await GreetAsync(cancellation).ConfigureAwait(false);
        if (!uri.Tls)
        {
            return;
        }

        if (tls is null)
        {
            throw new NbdClientException(
                $"{uri} is a TLS URI; give the directory holding ca-cert.pem (and client-cert.pem, client-key.pem if the server checks clients) with --tls-certificates DIR"
            );
        }

        await SendOptionAsync(NbdOption.StartTls, [], cancellation).ConfigureAwait(false);
        (NbdOptionReply type, byte[] message) = await ReadOptionReplyAsync(NbdOption.StartTls, cancellation)
            .ConfigureAwait(false);
        if (type != NbdOptionReply.Ack)
        {
            throw new NbdClientException(
                $"the server refused TLS ({type}: {Encoding.UTF8.GetString(message)}); an nbds:// URI does not go on in the clear"
            );
        }

        _stream = await tls.AuthenticateAsClientAsync(_stream, uri.TlsHost, cancellation).ConfigureAwait(false);
    }

    private async Task HandshakeAsync(string export, CancellationToken cancellation)
    {
        await SendOptionAsync(NbdOption.StructuredReply, [], cancellation).ConfigureAwait(false);
        Structured =
            (await ReadOptionReplyAsync(NbdOption.StructuredReply, cancellation).ConfigureAwait(false)).Type
            == NbdOptionReply.Ack;
        if (Structured)
        {
            await SendOptionAsync(
                    NbdOption.SetMetaContext,
                    NbdOptionData.MetaContext(export, NbdProtocol.BaseAllocation),
                    cancellation
                )
                .ConfigureAwait(false);
            while (true)
            {
                (NbdOptionReply type, byte[] data) = await ReadOptionReplyAsync(NbdOption.SetMetaContext, cancellation)
                    .ConfigureAwait(false);
                if (
                    type == NbdOptionReply.MetaContext
                    && NbdOptionData.ReadMetaContextReply(data) is (uint id, NbdProtocol.BaseAllocation)
                )
                {
                    _allocationContext = id;
                }
                else if (type != NbdOptionReply.MetaContext)
                {
                    break;
                }
            }
        }

        await SendOptionAsync(
                NbdOption.Go,
                NbdOptionData.Info(export, NbdInfo.BlockSize, NbdInfo.Description),
                cancellation
            )
            .ConfigureAwait(false);
        Export = export;
        while (true)
        {
            (NbdOptionReply type, byte[] data) = await ReadOptionReplyAsync(NbdOption.Go, cancellation)
                .ConfigureAwait(false);
            if (type == NbdOptionReply.Ack)
            {
                break;
            }

            if (type == NbdOptionReply.ErrorUnknown)
            {
                throw new NbdClientException($"the server has no export named '{export}'{Message(data)}");
            }

            if (type != NbdOptionReply.Info || data.Length < 2)
            {
                throw new NbdClientException($"the server refused export '{export}' ({type}){Message(data)}");
            }

            switch (NbdOptionData.ReadInfoReply(data))
            {
                case { Type: NbdInfo.Export } info:
                    (Size, Features) = (info.Size, info.Features);
                    break;
                case { Type: NbdInfo.BlockSize } info:
                    BlockSizes = info.BlockSizes;
                    break;
                case { Type: NbdInfo.Description } info:
                    Description = info.Text;
                    break;
            }
        }

        static string Message(byte[] data) => data.Length > 0 ? $": {Encoding.UTF8.GetString(data)}" : "";
    }

    private async Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken cancellation) =>
        await _stream.WriteAsync(NbdOptionHeader.Message(option, data), cancellation).ConfigureAwait(false);

    private async Task<(NbdOptionReply Type, byte[] Data)> ReadOptionReplyAsync(
        NbdOption expected,
        CancellationToken cancellation
    )
    {
        byte[] bytes = new byte[NbdOptionReplyHeader.Bytes];
        await _stream.ReadExactlyAsync(bytes, cancellation).ConfigureAwait(false);
        NbdOptionReplyHeader header = NbdOptionReplyHeader.Read(bytes);
        if (header.Magic != NbdProtocol.OptionReplyMagic || header.Option != expected)
        {
            throw new NbdClientException($"the server's reply to {expected} is malformed");
        }

        if (header.Length > 1 << 20)
        {
            throw new NbdClientException($"the server's reply to {expected} claims {header.Length} bytes");
        }

        byte[] data = new byte[header.Length];
        await _stream.ReadExactlyAsync(data, cancellation).ConfigureAwait(false);
        return (header.Type, data);
    }

    private async Task SendAsync(
        NbdCommand command,
        NbdCommandModifiers flags,
        long offset,
        uint length,
        ReadOnlyMemory<byte> payload,
        Pending? pending,
        CancellationToken cancellation
    )
    {
        ulong handle = (ulong)Interlocked.Increment(ref _nextHandle);
        if (pending is not null)
        {
            _pending[handle] = pending;
        }

        await _sendLock.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            if (_broken is { } broken)
            {
                throw new NbdClientException($"the connection is gone: {broken.Message}");
            }

            new NbdRequestHeader(flags, command, handle, (ulong)offset, length).Write(_request);
            await NbdWire.WriteMessageAsync(_stream, _request, payload, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            _pending.TryRemove(handle, out _);
            throw new NbdClientException($"the connection ended while sending {command}: {e.Message}");
        }
        catch
        {
            _pending.TryRemove(handle, out _);
            throw;
        }
        finally
        {
            _sendLock.Release();
        }

        if (pending is not null)
        {
            await pending.Done.Task.ConfigureAwait(false);
        }
    }

    /// <summary>Reads replies until the connection ends, completing the command each names.</summary>
    private async Task ReadRepliesAsync()
    {
        byte[] header = new byte[NbdProtocol.StructuredReplyBytes];
        try
        {
            while (true)
            {
                await _replies.ReadExactlyAsync(header.AsMemory(0, 4)).ConfigureAwait(false);
                uint magic = NbdSimpleReply.MagicOf(header);
                if (magic == NbdProtocol.SimpleReplyMagic)
                {
                    await _replies.ReadExactlyAsync(header.AsMemory(4, NbdSimpleReply.Bytes - 4)).ConfigureAwait(false);
                    NbdSimpleReply reply = NbdSimpleReply.Read(header);
                    Pending pending = Take(reply.Handle, remove: true);
                    if (reply.Error == NbdError.None && pending.Command == NbdCommand.Read)
                    {
                        await _replies.ReadExactlyAsync(pending.Buffer).ConfigureAwait(false);
                    }

                    pending.Finish(reply.Error, "");
                }
                else if (magic == NbdProtocol.StructuredReplyMagic)
                {
                    await _replies.ReadExactlyAsync(header.AsMemory(4, NbdChunkHeader.Bytes - 4)).ConfigureAwait(false);
                    await ReadChunkAsync(NbdChunkHeader.Read(header)).ConfigureAwait(false);
                }
                else
                {
                    throw new NbdClientException($"a reply with magic 0x{magic:x8}");
                }
            }
        }
        catch (Exception e)
            when (e
                    is IOException
                        or EndOfStreamException
                        or ObjectDisposedException
                        or NbdClientException
                        or SocketException
                        or NotSupportedException
            )
        {
            _broken = e is EndOfStreamException or NotSupportedException
                ? new NbdClientException("the server closed the connection")
                : e;
            foreach (ulong handle in _pending.Keys)
            {
                if (_pending.TryRemove(handle, out Pending? pending))
                {
                    pending.Done.TrySetException(
                        new NbdClientException($"the connection ended before the reply: {_broken.Message}")
                    );
                }
            }
        }
    }

    private async Task ReadChunkAsync(NbdChunkHeader header)
    {
        (NbdReplyType type, uint length) = (header.Type, header.Length);
        Pending pending = Take(header.Handle, remove: header.Done);
        switch (type)
        {
            case NbdReplyType.OffsetData when pending.Command == NbdCommand.Read && length >= NbdChunkData.OffsetBytes:
            {
                byte[] offsetBytes = new byte[NbdChunkData.OffsetBytes];
                await _replies.ReadExactlyAsync(offsetBytes).ConfigureAwait(false);
                long at = (long)NbdChunkData.ReadOffset(offsetBytes) - pending.Offset;
                if (at < 0 || at + (length - 8) > pending.Buffer.Length)
                {
                    throw new NbdClientException(
                        $"a data chunk outside the read ({at}+{length - 8} of {pending.Buffer.Length})"
                    );
                }

                await _replies.ReadExactlyAsync(pending.Buffer.Slice((int)at, (int)(length - 8))).ConfigureAwait(false);
                break;
            }

            case NbdReplyType.OffsetHole when pending.Command == NbdCommand.Read && length == NbdChunkData.HoleBytes:
            {
                byte[] hole = new byte[NbdChunkData.HoleBytes];
                await _replies.ReadExactlyAsync(hole).ConfigureAwait(false);
                (ulong start, uint size) = NbdChunkData.ReadHole(hole);
                long at = (long)start - pending.Offset;
                if (at < 0 || at + size > pending.Buffer.Length)
                {
                    throw new NbdClientException(
                        $"a hole chunk outside the read ({at}+{size} of {pending.Buffer.Length})"
                    );
                }

                pending.Buffer.Span.Slice((int)at, (int)size).Clear();
                break;
            }

            case NbdReplyType.BlockStatus when length >= 4 && (length - 4) % 8 == 0:
            {
                byte[] data = new byte[length];
                await _replies.ReadExactlyAsync(data).ConfigureAwait(false);
                foreach ((uint extent, NbdAllocationState state) in NbdChunkData.ReadBlockStatus(data)!.Value.Extents)
                {
                    pending.Extents.Add(new NbdExtent(extent, state));
                }

                break;
            }

            case NbdReplyType.Error
            or NbdReplyType.ErrorOffset when length >= 6:
            {
                byte[] data = new byte[length];
                await _replies.ReadExactlyAsync(data).ConfigureAwait(false);
                (pending.Error, pending.Message) = NbdChunkData.ReadError(data)!.Value;
                break;
            }

            case NbdReplyType.None when length == 0:
                break;
            default:
                throw new NbdClientException($"a reply chunk of type {type} and {length} bytes to {pending.Command}");
        }

        if (header.Done)
        {
            pending.Finish(pending.Error, pending.Message);
        }
    }

    private Pending Take(ulong handle, bool remove)
    {
        bool found = remove
            ? _pending.TryRemove(handle, out Pending? pending)
            : _pending.TryGetValue(handle, out pending);
        return found
            ? pending!
            : throw new NbdClientException($"a reply to handle {handle}, which no request in flight has");
    }

    private sealed class Pending(NbdCommand command, long offset, Memory<byte> buffer)
    {
        public NbdCommand Command { get; } = command;

        public long Offset { get; } = offset;

        public Memory<byte> Buffer { get; } = buffer;

        public List<NbdExtent> Extents { get; } = [];

        public NbdError Error { get; set; }

        public string Message { get; set; } = "";

        // Completed on the reply reader: the awaiting command goes on there at once (usually to
        // send its next request), rather than waiting for a thread-pool thread.
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.None);

        public void Finish(NbdError error, string message)
        {
            if (error == NbdError.None)
            {
                Done.TrySetResult();
            }
            else
            {
                Done.TrySetException(
                    new NbdCommandException(
                        error,
                        $"{Command} at {Offset} failed: {ErrorName(error)}{(message.Length > 0 ? $" ({message})" : "")}"
                    )
                );
            }
        }
    }

    /// <summary>The name of an error, as errno spells it.</summary>
    public static string ErrorName(NbdError error) =>
        error switch
        {
            NbdError.NotPermitted => "EPERM (operation not permitted)",
            NbdError.Io => "EIO (input/output error)",
            NbdError.NoMemory => "ENOMEM (out of memory)",
            NbdError.Invalid => "EINVAL (invalid argument)",
            NbdError.NoSpace => "ENOSPC (no space left on device)",
            NbdError.Overflow => "EOVERFLOW (value too large)",
            NbdError.NotSupported => "ENOTSUP (not supported)",
            NbdError.Shutdown => "ESHUTDOWN (the server is shutting down)",
            _ => $"error {(uint)error}",
        };
}
