using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;

namespace Controller.Firmware.Host.Nbd;

/// <summary>Block sizes the server advertises, and the largest request it takes.</summary>
public sealed record NbdServerOptions
{
    /// <summary>NBD_INFO_BLOCK_SIZE minimum: the logical block.</summary>
    public int MinimumBlockBytes { get; init; } = 512;

    /// <summary>NBD_INFO_BLOCK_SIZE preferred: the FTL's sector.</summary>
    public int PreferredBlockBytes { get; init; } = 4096;

    /// <summary>NBD_INFO_BLOCK_SIZE maximum: the largest READ or WRITE taken (clients such as nbdcopy and fio do not split).</summary>
    public int MaximumBlockBytes { get; init; } = 32 << 20;

    /// <summary>The largest option data read in the handshake; a client sending more is cut off.</summary>
    public int MaximumOptionBytes { get; init; } = 64 << 10;

    /// <summary>Requests of one connection executing at once; the next waits to be read until one completes.</summary>
    public int MaximumRequestsInFlight { get; init; } = 16;

    /// <summary>TLS (NBD_OPT_STARTTLS), or null for none: NBD_OPT_STARTTLS is then refused with NBD_REP_ERR_POLICY.</summary>
    public NbdTls? Tls { get; init; }
}

/// <summary>How a server treats TLS, in the NBD specification's terms.</summary>
public enum NbdTlsMode
{
    /// <summary>TLS at the client's choice (SELECTIVETLS with no TLS-only export).</summary>
    Allowed,

    /// <summary>TLS before anything else (FORCEDTLS): every option but NBD_OPT_STARTTLS and NBD_OPT_ABORT gets NBD_REP_ERR_TLS_REQD.</summary>
    Required,
}

/// <summary>
/// TLS on an NBD connection: the mode, and the server's side of the TLS handshake, which takes the
/// connection's stream after the NBD_REP_ACK to NBD_OPT_STARTTLS and returns the stream that carries
/// the rest of the session. The handshake itself lives outside the firmware (the host's TLS library).
/// </summary>
/// <param name="Mode">Allowed or required.</param>
/// <param name="StartAsync">The server's side of the TLS handshake; throws when it fails.</param>
public sealed record NbdTls(NbdTlsMode Mode, Func<Stream, CancellationToken, Task<Stream>> StartAsync);

/// <summary>The client broke a rule of the protocol that leaves no way to answer: the connection ends.</summary>
public sealed class NbdProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NbdProtocolException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public NbdProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public NbdProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// One NBD connection over any duplex byte stream (TCP, a Unix socket, an in-process pipe): the
/// fixed newstyle handshake, then transmission until the client disconnects. It only parses and
/// answers; the commands go to an <see cref="INbdExport"/>, which feeds the controller loop. Bad
/// input gets the error the protocol names, or, where no answer is possible, the end of this
/// connection (an <see cref="NbdProtocolException"/>); nothing is executed for it.
/// </summary>
public sealed class NbdConnection : IDisposable
{
    private const uint BaseAllocationContextId = 1;

    private readonly Stream _connection;
    private Stream _stream;
    private bool _tlsStarted;
    private readonly IReadOnlyList<INbdExport> _exports;
    private readonly NbdServerOptions _options;

    // Requests are read through this buffer (replies are written by NbdWire).
    private const int InBufferBytes = 64 * 1024;

    private readonly byte[] _in = new byte[InBufferBytes];
    private int _inStart;
    private int _inEnd;
    private readonly byte[] _header = new byte[32];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _slots;

    // Replies of commands the export has ended, written by one writer at a time, in batches.
    private const int ReplyBatchBytes = 256 * 1024;

    private readonly Channel<(PendingRequest Request, HostStatus Status, Exception? Failure)> _replies =
        Channel.CreateUnbounded<(PendingRequest, HostStatus, Exception?)>(new UnboundedChannelOptions { SingleReader = true });
    private CancellationToken _stop;
    private Exception? _failure;
    private bool _structured;
    private bool _noZeroes;
    private bool _allocationContext;

    /// <summary>The connection's number on its server (from 1, in the order they were accepted; 0 when not numbered).</summary>
    public int Number { get; init; }

    /// <summary>A connection on <paramref name="stream"/> serving <paramref name="exports"/>.</summary>
    public NbdConnection(Stream stream, IReadOnlyList<INbdExport> exports, NbdServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(exports);
        _connection = stream;
        _stream = stream;
        _exports = exports;
        _options = options ?? new NbdServerOptions();
        _slots = new SemaphoreSlim(_options.MaximumRequestsInFlight, _options.MaximumRequestsInFlight);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stream != _connection)
        {
            // The TLS session's stream; the connection's own belongs to the caller.
            _stream.Dispose();
        }

        _writeLock.Dispose();
        _slots.Dispose();
    }

    /// <summary>The export chosen in the handshake, once there is one.</summary>
    public INbdExport? Export { get; private set; }

    /// <summary>
    /// Runs the connection to its end. <paramref name="handshake"/> cancels a handshake that takes
    /// too long (the caller sets its deadline); <paramref name="stop"/> ends the connection.
    /// Returns when the client disconnects; throws <see cref="NbdProtocolException"/> when it broke the protocol.
    /// </summary>
    public async Task RunAsync(CancellationToken handshake, CancellationToken stop)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(handshake, stop);
        INbdExport? export;
        try
        {
            export = await HandshakeAsync(both.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (handshake.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            throw new NbdProtocolException("the client did not finish the handshake in time");
        }

        if (export is null)
        {
            return;
        }

        Export = export;
        await TransmitAsync(export, stop).ConfigureAwait(false);
    }

    private async Task<INbdExport?> HandshakeAsync(CancellationToken cancellation)
    {
        BinaryPrimitives.WriteUInt64BigEndian(_header, NbdProtocol.InitMagic);
        BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(8), NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt16BigEndian(_header.AsSpan(16), (ushort)(NbdHandshakeFeatures.FixedNewstyle | NbdHandshakeFeatures.NoZeroes));
        await _stream.WriteAsync(_header.AsMemory(0, 18), cancellation).ConfigureAwait(false);
        await _stream.FlushAsync(cancellation).ConfigureAwait(false);

        if (!await ReadOrEndAsync(_header.AsMemory(0, 4), cancellation).ConfigureAwait(false))
        {
            return null;
        }

        var clientFlags = (NbdClientFeatures)BinaryPrimitives.ReadUInt32BigEndian(_header);
        if ((clientFlags & ~(NbdClientFeatures.FixedNewstyle | NbdClientFeatures.NoZeroes)) != 0)
        {
            throw new NbdProtocolException($"unknown client flags 0x{(uint)clientFlags:x8}");
        }

        _noZeroes = clientFlags.HasFlag(NbdClientFeatures.NoZeroes);
        if (_options.Tls is { Mode: NbdTlsMode.Required } && !clientFlags.HasFlag(NbdClientFeatures.FixedNewstyle))
        {
            throw new NbdProtocolException("this server requires TLS, which needs fixed newstyle negotiation, and the client did not take it");
        }

        while (true)
        {
            if (!await ReadOrEndAsync(_header.AsMemory(0, 16), cancellation).ConfigureAwait(false))
            {
                return null;
            }

            ulong magic = BinaryPrimitives.ReadUInt64BigEndian(_header);
            var option = (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(8));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(12));
            if (magic != NbdProtocol.OptionMagic)
            {
                throw new NbdProtocolException($"option magic 0x{magic:x16}, not IHAVEOPT");
            }

            if (length > _options.MaximumOptionBytes)
            {
                throw new NbdProtocolException($"option {(uint)option} carries {length} bytes, more than the {_options.MaximumOptionBytes} taken");
            }

            byte[] data = new byte[length];
            await ReadExactlyAsync(data, cancellation).ConfigureAwait(false);
            INbdExport? chosen = await OptionAsync(option, data, cancellation).ConfigureAwait(false);
            if (chosen is not null || option == NbdOption.Abort)
            {
                return chosen;
            }
        }
    }

    /// <summary>Answers one option; returns the export when the option enters transmission.</summary>
    private async Task<INbdExport?> OptionAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        if (option == NbdOption.StartTls)
        {
            await StartTlsAsync(data, cancellation).ConfigureAwait(false);
            return null;
        }

        if (_options.Tls is { Mode: NbdTlsMode.Required } && !_tlsStarted && option != NbdOption.Abort)
        {
            if (option == NbdOption.ExportName)
            {
                // NBD_OPT_EXPORT_NAME has no error reply: the session ends.
                throw new NbdProtocolException("NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS, and this server requires TLS");
            }

            await ErrorAsync(option, NbdOptionReply.ErrorTlsRequired, "this server requires TLS: send NBD_OPT_STARTTLS first", cancellation).ConfigureAwait(false);
            return null;
        }

        switch (option)
        {
            case NbdOption.ExportName:
                INbdExport export = Find(Encoding.UTF8.GetString(data))
                    ?? throw new NbdProtocolException($"NBD_OPT_EXPORT_NAME asked for export '{Encoding.UTF8.GetString(data)}', which is not served");
                byte[] reply = new byte[10 + (_noZeroes ? 0 : NbdProtocol.ExportNamePaddingBytes)];
                BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)export.SizeBytes);
                BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), (ushort)AdvertisedFlags(export));
                await _stream.WriteAsync(reply, cancellation).ConfigureAwait(false);
                await _stream.FlushAsync(cancellation).ConfigureAwait(false);
                return export;
            case NbdOption.Abort:
                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.List when data.Length != 0:
                await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "NBD_OPT_LIST takes no data", cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.List:
                foreach (INbdExport each in _exports)
                {
                    byte[] name = Encoding.UTF8.GetBytes(each.Name);
                    byte[] server = new byte[4 + name.Length];
                    BinaryPrimitives.WriteUInt32BigEndian(server, (uint)name.Length);
                    name.CopyTo(server, 4);
                    await ReplyAsync(option, NbdOptionReply.Server, server, cancellation).ConfigureAwait(false);
                }

                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.Info or NbdOption.Go:
                return await InfoAsync(option, data, cancellation).ConfigureAwait(false);
            case NbdOption.StructuredReply when data.Length != 0:
                await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data", cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.StructuredReply:
                _structured = true;
                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.ListMetaContext or NbdOption.SetMetaContext:
                await MetaContextAsync(option, data, cancellation).ConfigureAwait(false);
                return null;
            default:
                await ErrorAsync(option, NbdOptionReply.ErrorUnsupported, $"option {(uint)option} is not supported", cancellation).ConfigureAwait(false);
                return null;
        }
    }

    /// <summary>
    /// NBD_OPT_STARTTLS: the NBD_REP_ACK, then the TLS handshake; everything after it goes over TLS.
    /// Refused (the session goes on in the clear) with no TLS configured, with data, or a second time.
    /// </summary>
    private async Task StartTlsAsync(byte[] data, CancellationToken cancellation)
    {
        if (_options.Tls is not { } tls)
        {
            await ErrorAsync(NbdOption.StartTls, NbdOptionReply.ErrorPolicy, "TLS is off on this server (serve --tls on|require --tls-certificates DIR)", cancellation).ConfigureAwait(false);
            return;
        }

        if (data.Length != 0 || _tlsStarted)
        {
            await ErrorAsync(NbdOption.StartTls, NbdOptionReply.ErrorInvalid, _tlsStarted ? "TLS is already running" : "NBD_OPT_STARTTLS takes no data", cancellation).ConfigureAwait(false);
            return;
        }

        await ReplyAsync(NbdOption.StartTls, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
        if (_inStart != _inEnd)
        {
            // Bytes read past the option before the acknowledgement cannot be handed to TLS.
            throw new NbdProtocolException($"the client sent {_inEnd - _inStart} bytes after NBD_OPT_STARTTLS without waiting for its reply");
        }

        _stream = await tls.StartAsync(_stream, cancellation).ConfigureAwait(false);
        _tlsStarted = true;
    }

    private async Task<INbdExport?> InfoAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        // 32 bits name length, name, 16 bits number of requests, 16 bits each.
        if (data.Length < 6 || BinaryPrimitives.ReadUInt32BigEndian(data) is var nameLength && nameLength > data.Length - 6
            || BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(4 + (int)nameLength)) is var requests && data.Length != 6 + (int)nameLength + (2 * requests))
        {
            await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "malformed NBD_OPT_INFO/GO data", cancellation).ConfigureAwait(false);
            return null;
        }

        string name = Encoding.UTF8.GetString(data, 4, (int)nameLength);
        if (Find(name) is not { } export)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorUnknown, $"no export '{name}'", cancellation).ConfigureAwait(false);
            return null;
        }

        byte[] info = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info, (ushort)NbdInfo.Export);
        BinaryPrimitives.WriteUInt64BigEndian(info.AsSpan(2), (ulong)export.SizeBytes);
        BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(10), (ushort)AdvertisedFlags(export));
        await ReplyAsync(option, NbdOptionReply.Info, info, cancellation).ConfigureAwait(false);
        for (int i = 0; i < requests; i++)
        {
            var requested = (NbdInfo)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(6 + (int)nameLength + (2 * i)));
            if (requested is NbdInfo.Name or NbdInfo.Description)
            {
                byte[] text = Encoding.UTF8.GetBytes(requested == NbdInfo.Name ? export.Name : export.Description);
                byte[] reply = new byte[2 + text.Length];
                BinaryPrimitives.WriteUInt16BigEndian(reply, (ushort)requested);
                text.CopyTo(reply, 2);
                await ReplyAsync(option, NbdOptionReply.Info, reply, cancellation).ConfigureAwait(false);
            }
        }

        byte[] sizes = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(sizes, (ushort)NbdInfo.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), (uint)_options.MinimumBlockBytes);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), (uint)_options.PreferredBlockBytes);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), (uint)_options.MaximumBlockBytes);
        await ReplyAsync(option, NbdOptionReply.Info, sizes, cancellation).ConfigureAwait(false);
        await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
        return option == NbdOption.Go ? export : null;
    }

    private async Task MetaContextAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        if (option == NbdOption.SetMetaContext && !_structured)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "NBD_OPT_SET_META_CONTEXT needs structured replies first", cancellation).ConfigureAwait(false);
            return;
        }

        // 32 bits export name length, name, 32 bits number of queries, each 32 bits length and string.
        var queries = new List<string>();
        int position = 0;
        bool valid = TryString(data, ref position, out string name) && data.Length - position >= 4;
        uint count = valid ? BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(position)) : 0;
        position += 4;
        for (uint i = 0; valid && i < count; i++)
        {
            valid = TryString(data, ref position, out string query);
            queries.Add(query);
        }

        if (!valid || position != data.Length)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "malformed meta context data", cancellation).ConfigureAwait(false);
            return;
        }

        if (Find(name) is null)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorUnknown, $"no export '{name}'", cancellation).ConfigureAwait(false);
            return;
        }

        bool matches = option == NbdOption.ListMetaContext && count == 0
            || queries.Exists(q => q == NbdProtocol.BaseAllocation || (option == NbdOption.ListMetaContext && q == "base:"));
        if (option == NbdOption.SetMetaContext)
        {
            _allocationContext = matches;
        }

        if (matches)
        {
            byte[] context = Encoding.UTF8.GetBytes(NbdProtocol.BaseAllocation);
            byte[] reply = new byte[4 + context.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, BaseAllocationContextId);
            context.CopyTo(reply, 4);
            await ReplyAsync(option, NbdOptionReply.MetaContext, reply, cancellation).ConfigureAwait(false);
        }

        await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
    }

    private static bool TryString(byte[] data, ref int position, out string text)
    {
        text = string.Empty;
        if (data.Length - position < 4)
        {
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(position));
        if (length > NbdProtocol.MaxStringBytes || length > data.Length - position - 4)
        {
            return false;
        }

        text = Encoding.UTF8.GetString(data, position + 4, (int)length);
        position += 4 + (int)length;
        return true;
    }

    private async Task TransmitAsync(INbdExport export, CancellationToken stop)
    {
        // Requests are read one after another and handed to the export in that order (so a FLUSH
        // covers every write before it); their replies go out as they complete, in any order.
        _stop = stop;
        var inFlight = new List<Task>();
        Task writer = WriteRepliesAsync();
        try
        {
            while (true)
            {
                if (!await ReadOrEndAsync(_header.AsMemory(0, NbdProtocol.RequestBytes), stop).ConfigureAwait(false))
                {
                    return;
                }

                uint magic = BinaryPrimitives.ReadUInt32BigEndian(_header);
                var flags = (NbdCommandModifiers)BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(4));
                var command = (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(6));
                ulong handle = BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(8));
                ulong offset = BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(16));
                uint length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(24));
                if (magic != NbdProtocol.RequestMagic)
                {
                    throw new NbdProtocolException($"request magic 0x{magic:x8}, not 0x{NbdProtocol.RequestMagic:x8}");
                }

                if (command == NbdCommand.Disconnect)
                {
                    return;
                }

                if (command == NbdCommand.Write && length > _options.MaximumBlockBytes)
                {
                    // Its payload cannot be taken, and cannot be skipped safely: the connection ends.
                    throw new NbdProtocolException($"a write of {length} bytes, more than the {_options.MaximumBlockBytes} advertised");
                }

                byte[]? rented = command is NbdCommand.Write or NbdCommand.Read && length <= _options.MaximumBlockBytes ? ArrayPool<byte>.Shared.Rent((int)length) : null;
                Memory<byte> buffer = rented is null ? Memory<byte>.Empty : rented.AsMemory(0, (int)length);
                try
                {
                    if (command == NbdCommand.Write)
                    {
                        await ReadExactlyAsync(buffer, stop).ConfigureAwait(false);
                    }

                    await _slots.WaitAsync(stop).ConfigureAwait(false);
                }
                catch
                {
                    if (rented is not null)
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }

                    throw;
                }

                if (Validate(export, command, flags, offset, length) == NbdError.None && HostCommandFor(command, flags) is { } host)
                {
                    // The common path: the command goes to the export, and its end straight to the
                    // queue of replies, with no task of its own.
                    var request = new PendingRequest(this, command, handle, offset, length, buffer, rented);
                    export.Submit(host.Opcode, host.Options, (long)offset, length, buffer, request);
                }
                else
                {
                    inFlight.RemoveAll(t => t.IsCompleted);
                    inFlight.Add(HandleAsync(export, command, flags, handle, offset, length, buffer, rented, stop));
                }

                if (_failure is { } failure)
                {
                    throw failure;
                }
            }
        }
        finally
        {
            // Every reply in flight is finished (or has failed) before the connection closes: each
            // request holds a slot until its reply is written, so holding them all means none is left.
            await Task.WhenAll(inFlight).ConfigureAwait(false);
            for (int i = 0; i < _options.MaximumRequestsInFlight; i++)
            {
                await _slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            _replies.Writer.TryComplete();
            await writer.ConfigureAwait(false);
        }
    }

    private async Task HandleAsync(INbdExport export, NbdCommand command, NbdCommandModifiers flags, ulong handle, ulong offset, uint length, Memory<byte> buffer, byte[]? rented, CancellationToken stop)
    {
        try
        {
            await RequestAsync(export, command, flags, handle, offset, length, buffer, stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            _failure ??= e;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }

            _slots.Release();
        }
    }

    private async Task RequestAsync(INbdExport export, NbdCommand command, NbdCommandModifiers flags, ulong handle, ulong offset, uint length, Memory<byte> buffer, CancellationToken cancellation)
    {
        NbdError invalid = Validate(export, command, flags, offset, length);
        if (invalid != NbdError.None)
        {
            await ErrorReplyAsync(command, handle, invalid, cancellation).ConfigureAwait(false);
            return;
        }

        switch (command)
        {
            case NbdCommand.Cache:
                await SimpleReplyAsync(handle, NbdError.None, cancellation).ConfigureAwait(false);
                return;
            case NbdCommand.BlockStatus:
                await BlockStatusAsync(export, flags, handle, offset, length, cancellation).ConfigureAwait(false);
                return;
        }

        // A valid READ, WRITE, FLUSH, TRIM or WRITE_ZEROES never comes here (TransmitAsync submits it).
        throw new InvalidOperationException($"{command} is not answered without the controller");
    }

    /// <summary>The error a command's status becomes on the wire, or none.</summary>
    private static NbdError ErrorFor(HostStatus status) => status switch
    {
        HostStatus.Ok => NbdError.None,
        HostStatus.InvalidArgument => NbdError.Invalid,
        HostStatus.NoSpace => NbdError.NoSpace,
        _ => NbdError.Io,
    };

    /// <summary>
    /// A command's end, from the export (on the controller loop's thread): its reply joins the
    /// connection's queue for the writer. Nothing here blocks.
    /// </summary>
    private void Replied(PendingRequest request, HostStatus status, Exception? failure) =>
        _replies.Writer.TryWrite((request, status, failure));

    /// <summary>
    /// The connection's one writer, for its whole transmission phase: waits for replies, then
    /// writes every reply queued by then in one go, until the queue is closed.
    /// </summary>
    private async Task WriteRepliesAsync()
    {
        ChannelReader<(PendingRequest Request, HostStatus Status, Exception? Failure)> replies = _replies.Reader;
        var batch = new List<(PendingRequest Request, HostStatus Status, Exception? Failure)>();
        while (await replies.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (replies.TryRead(out (PendingRequest, HostStatus, Exception?) reply))
            {
                batch.Add(reply);
            }

            try
            {
                await WriteBatchAsync(batch).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Whatever stopped the write ends the connection; the writer goes on taking the
                // queue (writing nothing more) so no request is left holding its slot.
                _failure ??= e;
            }
            finally
            {
                foreach ((PendingRequest request, _, _) in batch)
                {
                    request.Release();
                    _slots.Release();
                }

                batch.Clear();
            }
        }
    }

    /// <summary>
    /// Writes the replies of <paramref name="batch"/>: headers and small payloads gathered into one
    /// buffer, a large payload written from the request's own buffer. A command the export could not
    /// run gets no reply; the connection ends with that failure.
    /// </summary>
    private async Task WriteBatchAsync(List<(PendingRequest Request, HostStatus Status, Exception? Failure)> batch)
    {
        byte[] gathered = ArrayPool<byte>.Shared.Rent(ReplyBatchBytes);
        int used = 0;
        await _writeLock.WaitAsync(_stop).ConfigureAwait(false);
        try
        {
            foreach ((PendingRequest request, HostStatus status, Exception? failure) in batch)
            {
                _failure ??= failure;
                if (_failure is not null)
                {
                    return;
                }

                NbdError error = ErrorFor(status);
                ReadOnlyMemory<byte> payload = error == NbdError.None && request.Command == NbdCommand.Read ? request.Buffer : ReadOnlyMemory<byte>.Empty;
                byte[]? errorReply = error == NbdError.None ? null : ErrorReply(request.Command, request.Handle, error);
                int header = errorReply?.Length ?? (request.Command == NbdCommand.Read ? ReadReplyHeaderBytes : NbdProtocol.SimpleReplyBytes);
                if (used + header + payload.Length > gathered.Length && used > 0)
                {
                    await _stream.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
                    used = 0;
                }

                if (errorReply is not null)
                {
                    errorReply.CopyTo(gathered, used);
                }
                else if (request.Command == NbdCommand.Read)
                {
                    ReadReplyHeader(gathered.AsSpan(used, header), request.Handle, request.Offset, request.Length);
                }
                else
                {
                    SimpleHeader(gathered.AsSpan(used), NbdError.None, request.Handle);
                }

                used += header;
                if (used + payload.Length <= gathered.Length)
                {
                    payload.CopyTo(gathered.AsMemory(used));
                    used += payload.Length;
                }
                else
                {
                    await _stream.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
                    await _stream.WriteAsync(payload, _stop).ConfigureAwait(false);
                    used = 0;
                }
            }

            if (used > 0)
            {
                await _stream.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
            }

            await _stream.FlushAsync(_stop).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
            ArrayPool<byte>.Shared.Return(gathered);
        }
    }

    /// <summary>The bytes before a successful READ's data: a simple reply, or a structured OFFSET_DATA chunk's header and offset.</summary>
    private int ReadReplyHeaderBytes => _structured ? NbdProtocol.StructuredReplyBytes + 8 : NbdProtocol.SimpleReplyBytes;

    private void ReadReplyHeader(Span<byte> header, ulong handle, ulong offset, uint length)
    {
        if (_structured)
        {
            StructuredHeader(header, NbdReplyType.OffsetData, handle, 8 + length);
            BinaryPrimitives.WriteUInt64BigEndian(header[NbdProtocol.StructuredReplyBytes..], offset);
        }
        else
        {
            SimpleHeader(header, NbdError.None, handle);
        }
    }

    /// <summary>A request handed to the export: what its reply needs, and the buffer to give back once it is sent.</summary>
    private sealed class PendingRequest(NbdConnection connection, NbdCommand command, ulong handle, ulong offset, uint length, Memory<byte> buffer, byte[]? rented) : INbdCompletion
    {
        public NbdCommand Command => command;

        public ulong Handle => handle;

        public ulong Offset => offset;

        public uint Length => length;

        public Memory<byte> Buffer => buffer;

        public void Complete(HostStatus status) => connection.Replied(this, status, null);

        public void Fail(Exception exception) => connection.Replied(this, HostStatus.IoError, exception);

        public int Connection => connection.Number;

        public void Release()
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// The command flags <paramref name="command"/> accepts. FUA on every command: the protocol
    /// says a server that advertises FUA must accept it on all of them (even by ignoring it), and
    /// clients are known to set it on reads and flushes. Then each command's own: DF on READ,
    /// NO_HOLE and FAST_ZERO on WRITE_ZEROES, REQ_ONE on BLOCK_STATUS.
    /// </summary>
    public static NbdCommandModifiers AllowedFlags(NbdCommand command) => NbdCommandModifiers.Fua | command switch
    {
        NbdCommand.Read => NbdCommandModifiers.DontFragment,
        NbdCommand.WriteZeroes => NbdCommandModifiers.NoHole | NbdCommandModifiers.FastZero,
        NbdCommand.BlockStatus => NbdCommandModifiers.RequestOne,
        _ => NbdCommandModifiers.None,
    };

    /// <summary>
    /// The host command a valid request becomes, or null for one answered without the loop (CACHE,
    /// BLOCK_STATUS, DISC). FUA and NO_HOLE pass through; DF and FAST_ZERO only shape the reply.
    /// </summary>
    public static (HostOpcode Opcode, HostCommandOptions Options)? HostCommandFor(NbdCommand command, NbdCommandModifiers flags)
    {
        HostOpcode? opcode = command switch
        {
            NbdCommand.Read => HostOpcode.Read,
            NbdCommand.Write => HostOpcode.Write,
            NbdCommand.Flush => HostOpcode.Flush,
            NbdCommand.Trim => HostOpcode.Trim,
            NbdCommand.WriteZeroes => HostOpcode.WriteZeroes,
            _ => null,
        };
        var options = (flags.HasFlag(NbdCommandModifiers.Fua) ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None)
            | (flags.HasFlag(NbdCommandModifiers.NoHole) ? HostCommandOptions.NoHole : HostCommandOptions.None);
        return opcode is { } known ? (known, options) : null;
    }

    /// <summary>The error a request gets before anything is executed, or none.</summary>
    private NbdError Validate(INbdExport export, NbdCommand command, NbdCommandModifiers flags, ulong offset, uint length)
    {
        NbdCommandModifiers allowed = AllowedFlags(command);
        bool writes = command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes;
        bool ranged = command is not NbdCommand.Flush;
        ulong size = (ulong)export.SizeBytes;
        ulong block = (ulong)_options.MinimumBlockBytes;
        return command switch
        {
            > NbdCommand.BlockStatus => NbdError.Invalid,
            _ when (flags & ~allowed) != 0 => NbdError.Invalid,
            _ when writes && export.IsReadOnly => NbdError.NotPermitted,
            NbdCommand.Flush when offset != 0 || length != 0 => NbdError.Invalid,
            NbdCommand.Read when length > _options.MaximumBlockBytes => NbdError.Overflow,
            NbdCommand.BlockStatus when !_structured || !_allocationContext || length == 0 => NbdError.Invalid,
            _ when ranged && (offset > size || length > size - offset) => writes ? NbdError.NoSpace : NbdError.Invalid,
            _ when ranged && (offset % block != 0 || length % block != 0) => NbdError.Invalid,
            NbdCommand.WriteZeroes when flags.HasFlag(NbdCommandModifiers.FastZero) && flags.HasFlag(NbdCommandModifiers.NoHole) => NbdError.NotSupported,
            _ => NbdError.None,
        };
    }

    private async Task BlockStatusAsync(INbdExport export, NbdCommandModifiers flags, ulong handle, ulong offset, uint length, CancellationToken cancellation)
    {
        var extents = new List<NbdExtent>();
        await export.BlockStatusAsync((long)offset, length, extents, cancellation).ConfigureAwait(false);
        int count = flags.HasFlag(NbdCommandModifiers.RequestOne) ? Math.Min(1, extents.Count) : extents.Count;
        byte[] chunk = new byte[NbdProtocol.StructuredReplyBytes + 4 + (8 * count)];
        StructuredHeader(chunk, NbdReplyType.BlockStatus, handle, (uint)(4 + (8 * count)));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(NbdProtocol.StructuredReplyBytes), BaseAllocationContextId);
        long covered = 0;
        for (int i = 0; i < count; i++)
        {
            long extent = Math.Min(extents[i].Length, length - covered);
            covered += extent;
            Span<byte> descriptor = chunk.AsSpan(NbdProtocol.StructuredReplyBytes + 4 + (8 * i));
            BinaryPrimitives.WriteUInt32BigEndian(descriptor, (uint)extent);
            BinaryPrimitives.WriteUInt32BigEndian(descriptor[4..], (uint)extents[i].Flags);
        }

        await SendAsync(chunk, ReadOnlyMemory<byte>.Empty, cancellation).ConfigureAwait(false);
    }

    private async Task ErrorReplyAsync(NbdCommand command, ulong handle, NbdError error, CancellationToken cancellation) =>
        await SendAsync(ErrorReply(command, handle, error), ReadOnlyMemory<byte>.Empty, cancellation).ConfigureAwait(false);

    /// <summary>The reply to a request that failed with <paramref name="error"/>: a structured error chunk with its text where the client takes one.</summary>
    private byte[] ErrorReply(NbdCommand command, ulong handle, NbdError error)
    {
        if (_structured && command is NbdCommand.Read or NbdCommand.BlockStatus)
        {
            byte[] message = Encoding.UTF8.GetBytes(ErrorText(error));
            byte[] chunk = new byte[NbdProtocol.StructuredReplyBytes + 6 + message.Length];
            StructuredHeader(chunk, NbdReplyType.Error, handle, (uint)(6 + message.Length));
            BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(NbdProtocol.StructuredReplyBytes), (uint)error);
            BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(NbdProtocol.StructuredReplyBytes + 4), (ushort)message.Length);
            message.CopyTo(chunk, NbdProtocol.StructuredReplyBytes + 6);
            return chunk;
        }

        byte[] header = new byte[NbdProtocol.SimpleReplyBytes];
        SimpleHeader(header, error, handle);
        return header;
    }

    private static string ErrorText(NbdError error) => error switch
    {
        NbdError.Invalid => "invalid request: a range outside the export or not in whole 512-byte blocks, or an unknown command or flag",
        NbdError.Overflow => "the request is longer than the advertised maximum block size",
        NbdError.NotPermitted => "the export is read-only",
        NbdError.NoSpace => "no space: the range is past the end of the export, or the device has used up its spare",
        NbdError.NotSupported => "zeroing without a hole cannot be fast",
        _ => "the NAND could not return the data intact",
    };

    private async Task SimpleReplyAsync(ulong handle, NbdError error, CancellationToken cancellation)
    {
        byte[] header = new byte[NbdProtocol.SimpleReplyBytes];
        SimpleHeader(header, error, handle);
        await SendAsync(header, ReadOnlyMemory<byte>.Empty, cancellation).ConfigureAwait(false);
    }

    /// <summary>Writes one whole reply (header, then payload) with no other reply between them.</summary>
    private async Task SendAsync(byte[] header, ReadOnlyMemory<byte> payload, CancellationToken cancellation)
    {
        await _writeLock.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            await NbdWire.WriteMessageAsync(_stream, header, payload, cancellation).ConfigureAwait(false);
            await _stream.FlushAsync(cancellation).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static void SimpleHeader(Span<byte> header, NbdError error, ulong handle)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, NbdProtocol.SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], (uint)error);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
    }

    /// <summary>The header of a structured chunk that ends its reply (NBD_REPLY_FLAG_DONE).</summary>
    private static void StructuredHeader(Span<byte> chunk, NbdReplyType type, ulong handle, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(chunk, NbdProtocol.StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(chunk[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(chunk[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(chunk[8..], handle);
        BinaryPrimitives.WriteUInt32BigEndian(chunk[16..], length);
    }

    private async Task ReplyAsync(NbdOption option, NbdOptionReply type, byte[] data, CancellationToken cancellation)
    {
        byte[] reply = new byte[20 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(reply, NbdProtocol.OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(12), (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(16), (uint)data.Length);
        data.CopyTo(reply, 20);
        await _stream.WriteAsync(reply, cancellation).ConfigureAwait(false);
        await _stream.FlushAsync(cancellation).ConfigureAwait(false);
    }

    private Task ErrorAsync(NbdOption option, NbdOptionReply type, string message, CancellationToken cancellation) =>
        ReplyAsync(option, type, Encoding.UTF8.GetBytes(message), cancellation);

    private INbdExport? Find(string name) =>
        name.Length == 0 && _exports.Count > 0 ? _exports[0] : _exports.FirstOrDefault(e => e.Name == name);

    /// <summary>The transmission flags advertised for <paramref name="export"/>.</summary>
    public static NbdExportFeatures AdvertisedFlags(INbdExport export)
    {
        ArgumentNullException.ThrowIfNull(export);
        return NbdExportFeatures.HasFlags | NbdExportFeatures.SendFlush | NbdExportFeatures.SendFua | NbdExportFeatures.SendTrim
            | NbdExportFeatures.SendWriteZeroes | NbdExportFeatures.SendFastZero | NbdExportFeatures.SendCache | NbdExportFeatures.CanMultiConn
            | (export.IsReadOnly ? NbdExportFeatures.ReadOnly : NbdExportFeatures.None);
    }

    /// <summary>Reads exactly <paramref name="buffer"/>; false if the stream ended before its first byte.</summary>
    private async Task<bool> ReadOrEndAsync(Memory<byte> buffer, CancellationToken cancellation)
    {
        if (_inStart == _inEnd && !await FillAsync(cancellation).ConfigureAwait(false))
        {
            return false;
        }

        await ReadExactlyAsync(buffer, cancellation).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Reads exactly <paramref name="buffer"/>.Length bytes through the read buffer: the requests a
    /// client has queued come in with one receive rather than two per request. A payload larger
    /// than the buffer goes straight into <paramref name="buffer"/>.
    /// </summary>
    private async ValueTask ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellation)
    {
        while (!buffer.IsEmpty)
        {
            if (_inStart == _inEnd)
            {
                if (buffer.Length >= _in.Length)
                {
                    await _stream.ReadExactlyAsync(buffer, cancellation).ConfigureAwait(false);
                    return;
                }

                if (!await FillAsync(cancellation).ConfigureAwait(false))
                {
                    throw new EndOfStreamException("the client closed the connection in the middle of a message");
                }
            }

            int take = Math.Min(buffer.Length, _inEnd - _inStart);
            _in.AsMemory(_inStart, take).CopyTo(buffer);
            _inStart += take;
            buffer = buffer[take..];
        }
    }

    private async ValueTask<bool> FillAsync(CancellationToken cancellation)
    {
        int read = await _stream.ReadAsync(_in, cancellation).ConfigureAwait(false);
        (_inStart, _inEnd) = (0, read);
        return read > 0;
    }
}
