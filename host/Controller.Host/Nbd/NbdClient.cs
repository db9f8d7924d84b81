using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Controller.Firmware.Host.Nbd;
using Controller.Management;

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
    public static Task<NbdClient> ConnectAsync(NbdUri uri, CancellationToken cancellation) => ConnectAsync(uri, tls: null, cancellation);

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

    /// <summary>Lists the server's exports (NBD_OPT_LIST), then ends the session; over TLS for an nbds:// URI.</summary>
    public static async Task<List<(string Name, string Description)>> ListAsync(NbdUri uri, TlsCredentials? tls, CancellationToken cancellation)
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
                (NbdOptionReply type, byte[] data) = await client.ReadOptionReplyAsync(NbdOption.List, cancellation).ConfigureAwait(false);
                if (type == NbdOptionReply.Ack)
                {
                    break;
                }

                if (type != NbdOptionReply.Server || data.Length < 4)
                {
                    throw new NbdClientException($"the server refused to list its exports ({type})");
                }

                int nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
                exports.Add((Encoding.UTF8.GetString(data, 4, nameLength), Encoding.UTF8.GetString(data, 4 + nameLength, data.Length - 4 - nameLength)));
            }

            await client.SendOptionAsync(NbdOption.Abort, [], cancellation).ConfigureAwait(false);
            return exports;
        }
        finally
        {
            await client._stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A connected stream to the server <paramref name="uri"/> names (TCP without Nagle's delay, or a Unix socket).</summary>
    private static async Task<Stream> OpenAsync(NbdUri uri, CancellationToken cancellation)
    {
        var socket = uri.EndPoint is UnixDomainSocketEndPoint
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
        SendAsync(NbdCommand.Read, NbdCommandModifiers.None, offset, (uint)buffer.Length, ReadOnlyMemory<byte>.Empty, new Pending(NbdCommand.Read, offset, buffer), cancellation);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; with <paramref name="fua"/>, durable when done.</summary>
    public Task WriteAsync(long offset, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellation) =>
        SendAsync(NbdCommand.Write, Fua(fua), offset, (uint)data.Length, data, new Pending(NbdCommand.Write, offset, Memory<byte>.Empty), cancellation);

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
        InPiecesAsync(NbdCommand.WriteZeroes, Fua(fua) | (noHole ? NbdCommandModifiers.NoHole : NbdCommandModifiers.None), offset, length, cancellation);

    /// <summary>Makes every command completed before it durable (FUA on a flush, which the protocol allows, asks for nothing more).</summary>
    public Task FlushAsync(bool fua, CancellationToken cancellation) =>
        SendAsync(NbdCommand.Flush, Fua(fua), 0, 0, ReadOnlyMemory<byte>.Empty, new Pending(NbdCommand.Flush, 0, Memory<byte>.Empty), cancellation);

    private static NbdCommandModifiers Fua(bool fua) => fua ? NbdCommandModifiers.Fua : NbdCommandModifiers.None;

    /// <summary>The allocation of <paramref name="length"/> bytes at <paramref name="offset"/> (the server may describe less).</summary>
    public async Task<List<NbdExtent>> BlockStatusAsync(long offset, long length, CancellationToken cancellation)
    {
        if (!CanBlockStatus)
        {
            throw new NbdClientException("the server does not offer base:allocation block status");
        }

        var pending = new Pending(NbdCommand.BlockStatus, offset, Memory<byte>.Empty);
        await SendAsync(NbdCommand.BlockStatus, NbdCommandModifiers.None, offset, checked((uint)length), ReadOnlyMemory<byte>.Empty, pending, cancellation).ConfigureAwait(false);
        return pending.Extents;
    }

    /// <summary>A trim or write-zeroes of any length: the protocol's length is 32 bits, so 1 GiB at a time.</summary>
    private async Task InPiecesAsync(NbdCommand command, NbdCommandModifiers flags, long offset, long length, CancellationToken cancellation)
    {
        const long Piece = 1L << 30;
        for (long done = 0; done < length; done += Piece)
        {
            long size = Math.Min(Piece, length - done);
            await SendAsync(command, flags, offset + done, (uint)size, ReadOnlyMemory<byte>.Empty, new Pending(command, offset + done, Memory<byte>.Empty), cancellation).ConfigureAwait(false);
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
                await SendAsync(NbdCommand.Disconnect, NbdCommandModifiers.None, 0, 0, ReadOnlyMemory<byte>.Empty, null, CancellationToken.None).ConfigureAwait(false);
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
        catch (Exception e) when (e is IOException or ObjectDisposedException or NbdClientException or EndOfStreamException or OperationCanceledException or NotSupportedException)
        {
            // Closed under it (a disposed stream says it cannot be read).
        }

        _sendLock.Dispose();
    }

    private async Task GreetAsync(CancellationToken cancellation)
    {
        byte[] greeting = new byte[18];
        await _stream.ReadExactlyAsync(greeting, cancellation).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdProtocol.InitMagic || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != NbdProtocol.OptionMagic)
        {
            throw new NbdClientException("the server did not greet as an NBD server (fixed newstyle)");
        }

        var features = (NbdHandshakeFeatures)BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
        if (!features.HasFlag(NbdHandshakeFeatures.FixedNewstyle))
        {
            throw new NbdClientException("the server does not speak fixed newstyle");
        }

        byte[] flags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, (uint)(NbdClientFeatures.FixedNewstyle | (features & NbdHandshakeFeatures.NoZeroes) switch { 0 => 0, _ => NbdClientFeatures.NoZeroes }));
        await _stream.WriteAsync(flags, cancellation).ConfigureAwait(false);
    }

    /// <summary>The greeting, then, for an nbds:// URI, NBD_OPT_STARTTLS and the TLS handshake: every option after it goes over TLS.</summary>
    private async Task GreetAsync(NbdUri uri, TlsCredentials? tls, CancellationToken cancellation)
    {
        await GreetAsync(cancellation).ConfigureAwait(false);
        if (!uri.Tls)
        {
            return;
        }

        if (tls is null)
        {
            throw new NbdClientException($"{uri} is a TLS URI; give the directory holding ca-cert.pem (and client-cert.pem, client-key.pem if the server checks clients) with --tls-certificates DIR");
        }

        await SendOptionAsync(NbdOption.StartTls, [], cancellation).ConfigureAwait(false);
        (NbdOptionReply type, byte[] message) = await ReadOptionReplyAsync(NbdOption.StartTls, cancellation).ConfigureAwait(false);
        if (type != NbdOptionReply.Ack)
        {
            throw new NbdClientException($"the server refused TLS ({type}: {Encoding.UTF8.GetString(message)}); an nbds:// URI does not go on in the clear");
        }

        _stream = await tls.AuthenticateAsClientAsync(_stream, uri.TlsHost, cancellation).ConfigureAwait(false);
    }

    private async Task HandshakeAsync(string export, CancellationToken cancellation)
    {
        await SendOptionAsync(NbdOption.StructuredReply, [], cancellation).ConfigureAwait(false);
        Structured = (await ReadOptionReplyAsync(NbdOption.StructuredReply, cancellation).ConfigureAwait(false)).Type == NbdOptionReply.Ack;
        if (Structured)
        {
            await SendOptionAsync(NbdOption.SetMetaContext, MetaContextData(export, NbdProtocol.BaseAllocation), cancellation).ConfigureAwait(false);
            while (true)
            {
                (NbdOptionReply type, byte[] data) = await ReadOptionReplyAsync(NbdOption.SetMetaContext, cancellation).ConfigureAwait(false);
                if (type == NbdOptionReply.MetaContext && data.Length >= 4 && Encoding.UTF8.GetString(data, 4, data.Length - 4) == NbdProtocol.BaseAllocation)
                {
                    _allocationContext = BinaryPrimitives.ReadUInt32BigEndian(data);
                }
                else if (type != NbdOptionReply.MetaContext)
                {
                    break;
                }
            }
        }

        byte[] name = Encoding.UTF8.GetBytes(export);
        byte[] go = new byte[4 + name.Length + 2 + 4];
        BinaryPrimitives.WriteUInt32BigEndian(go, (uint)name.Length);
        name.CopyTo(go, 4);
        BinaryPrimitives.WriteUInt16BigEndian(go.AsSpan(4 + name.Length), 2);
        BinaryPrimitives.WriteUInt16BigEndian(go.AsSpan(4 + name.Length + 2), (ushort)NbdInfo.BlockSize);
        BinaryPrimitives.WriteUInt16BigEndian(go.AsSpan(4 + name.Length + 4), (ushort)NbdInfo.Description);
        await SendOptionAsync(NbdOption.Go, go, cancellation).ConfigureAwait(false);
        Export = export;
        while (true)
        {
            (NbdOptionReply type, byte[] data) = await ReadOptionReplyAsync(NbdOption.Go, cancellation).ConfigureAwait(false);
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

            switch ((NbdInfo)BinaryPrimitives.ReadUInt16BigEndian(data))
            {
                case NbdInfo.Export when data.Length >= 12:
                    Size = (long)BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                    Features = (NbdExportFeatures)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
                    break;
                case NbdInfo.BlockSize when data.Length >= 14:
                    BlockSizes = (BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(10)));
                    break;
                case NbdInfo.Description:
                    Description = Encoding.UTF8.GetString(data, 2, data.Length - 2);
                    break;
            }
        }

        static string Message(byte[] data) => data.Length > 0 ? $": {Encoding.UTF8.GetString(data)}" : "";
    }

    private static byte[] MetaContextData(string export, string query)
    {
        byte[] name = Encoding.UTF8.GetBytes(export);
        byte[] text = Encoding.UTF8.GetBytes(query);
        byte[] data = new byte[4 + name.Length + 4 + 4 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)name.Length);
        name.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4 + name.Length), 1);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8 + name.Length), (uint)text.Length);
        text.CopyTo(data, 12 + name.Length);
        return data;
    }

    private async Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        byte[] header = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(header, NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), (uint)data.Length);
        data.CopyTo(header, 16);
        await _stream.WriteAsync(header, cancellation).ConfigureAwait(false);
    }

    private async Task<(NbdOptionReply Type, byte[] Data)> ReadOptionReplyAsync(NbdOption expected, CancellationToken cancellation)
    {
        byte[] header = new byte[20];
        await _stream.ReadExactlyAsync(header, cancellation).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64BigEndian(header) != NbdProtocol.OptionReplyMagic || (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)) != expected)
        {
            throw new NbdClientException($"the server's reply to {expected} is malformed");
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16));
        if (length > 1 << 20)
        {
            throw new NbdClientException($"the server's reply to {expected} claims {length} bytes");
        }

        byte[] data = new byte[length];
        await _stream.ReadExactlyAsync(data, cancellation).ConfigureAwait(false);
        return ((NbdOptionReply)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12)), data);
    }

    private async Task SendAsync(NbdCommand command, NbdCommandModifiers flags, long offset, uint length, ReadOnlyMemory<byte> payload, Pending? pending, CancellationToken cancellation)
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

            BinaryPrimitives.WriteUInt32BigEndian(_request, NbdProtocol.RequestMagic);
            BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(4), (ushort)flags);
            BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(6), (ushort)command);
            BinaryPrimitives.WriteUInt64BigEndian(_request.AsSpan(8), handle);
            BinaryPrimitives.WriteUInt64BigEndian(_request.AsSpan(16), (ulong)offset);
            BinaryPrimitives.WriteUInt32BigEndian(_request.AsSpan(24), length);
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
                uint magic = BinaryPrimitives.ReadUInt32BigEndian(header);
                if (magic == NbdProtocol.SimpleReplyMagic)
                {
                    await _replies.ReadExactlyAsync(header.AsMemory(4, 12)).ConfigureAwait(false);
                    var error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
                    Pending pending = Take(BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)), remove: true);
                    if (error == NbdError.None && pending.Command == NbdCommand.Read)
                    {
                        await _replies.ReadExactlyAsync(pending.Buffer).ConfigureAwait(false);
                    }

                    pending.Finish(error, "");
                }
                else if (magic == NbdProtocol.StructuredReplyMagic)
                {
                    await _replies.ReadExactlyAsync(header.AsMemory(4, 16)).ConfigureAwait(false);
                    await ReadChunkAsync(header).ConfigureAwait(false);
                }
                else
                {
                    throw new NbdClientException($"a reply with magic 0x{magic:x8}");
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or NbdClientException or SocketException or NotSupportedException)
        {
            _broken = e is EndOfStreamException or NotSupportedException ? new NbdClientException("the server closed the connection") : e;
            foreach (ulong handle in _pending.Keys)
            {
                if (_pending.TryRemove(handle, out Pending? pending))
                {
                    pending.Done.TrySetException(new NbdClientException($"the connection ended before the reply: {_broken.Message}"));
                }
            }
        }
    }

    private async Task ReadChunkAsync(byte[] header)
    {
        bool done = (BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)) & 1) != 0;
        var type = (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
        ulong handle = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8));
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16));
        Pending pending = Take(handle, remove: done);
        switch (type)
        {
            case NbdReplyType.OffsetData when pending.Command == NbdCommand.Read && length >= 8:
            {
                byte[] offsetBytes = new byte[8];
                await _replies.ReadExactlyAsync(offsetBytes).ConfigureAwait(false);
                long at = (long)BinaryPrimitives.ReadUInt64BigEndian(offsetBytes) - pending.Offset;
                if (at < 0 || at + (length - 8) > pending.Buffer.Length)
                {
                    throw new NbdClientException($"a data chunk outside the read ({at}+{length - 8} of {pending.Buffer.Length})");
                }

                await _replies.ReadExactlyAsync(pending.Buffer.Slice((int)at, (int)(length - 8))).ConfigureAwait(false);
                break;
            }

            case NbdReplyType.OffsetHole when pending.Command == NbdCommand.Read && length == 12:
            {
                byte[] hole = new byte[12];
                await _replies.ReadExactlyAsync(hole).ConfigureAwait(false);
                long at = (long)BinaryPrimitives.ReadUInt64BigEndian(hole) - pending.Offset;
                uint size = BinaryPrimitives.ReadUInt32BigEndian(hole.AsSpan(8));
                if (at < 0 || at + size > pending.Buffer.Length)
                {
                    throw new NbdClientException($"a hole chunk outside the read ({at}+{size} of {pending.Buffer.Length})");
                }

                pending.Buffer.Span.Slice((int)at, (int)size).Clear();
                break;
            }

            case NbdReplyType.BlockStatus when length >= 4 && (length - 4) % 8 == 0:
            {
                byte[] data = new byte[length];
                await _replies.ReadExactlyAsync(data).ConfigureAwait(false);
                for (int i = 4; i < data.Length; i += 8)
                {
                    pending.Extents.Add(new NbdExtent(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(i)), (NbdAllocationState)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(i + 4))));
                }

                break;
            }

            case NbdReplyType.Error or NbdReplyType.ErrorOffset when length >= 6:
            {
                byte[] data = new byte[length];
                await _replies.ReadExactlyAsync(data).ConfigureAwait(false);
                int messageLength = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(4)), data.Length - 6);
                pending.Error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(data);
                pending.Message = Encoding.UTF8.GetString(data, 6, messageLength);
                break;
            }

            case NbdReplyType.None when length == 0:
                break;
            default:
                throw new NbdClientException($"a reply chunk of type {type} and {length} bytes to {pending.Command}");
        }

        if (done)
        {
            pending.Finish(pending.Error, pending.Message);
        }
    }

    private Pending Take(ulong handle, bool remove)
    {
        bool found = remove ? _pending.TryRemove(handle, out Pending? pending) : _pending.TryGetValue(handle, out pending);
        return found ? pending! : throw new NbdClientException($"a reply to handle {handle}, which no request in flight has");
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
                Done.TrySetException(new NbdCommandException(error, $"{Command} at {Offset} failed: {ErrorName(error)}{(message.Length > 0 ? $" ({message})" : "")}"));
            }
        }
    }

    /// <summary>The name of an error, as errno spells it.</summary>
    public static string ErrorName(NbdError error) => error switch
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
