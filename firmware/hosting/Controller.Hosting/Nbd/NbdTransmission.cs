using System.Buffers;
using System.Threading.Channels;
using Controller.Firmware.Host;
using Controller.Nbd;

namespace Controller.Hosting.Nbd;

/// <summary>
/// The transmission phase of one connection: requests are read one after another and handed to
/// the export in that order (so a FLUSH covers every write before it); their replies go out as
/// they complete, in any order, gathered in batches by one writer. A request the protocol calls
/// invalid gets its error without being executed; one that leaves no way to answer ends the
/// connection (an <see cref="NbdProtocolException"/>).
/// </summary>
internal sealed class NbdTransmission : IDisposable
{
    // Replies of commands the export has ended, written by one writer at a time, in batches.
    private const int ReplyBatchBytes = 256 * 1024;

    private readonly NbdInput _input;
    private readonly NbdAgreement _agreement;
    private readonly NbdServerOptions _options;
    private readonly int _connection;
    private readonly byte[] _header = new byte[NbdRequestHeader.Bytes];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _slots;
    private readonly Channel<(PendingRequest Request, HostStatus Status, Exception? Failure)> _replies =
        Channel.CreateUnbounded<(PendingRequest, HostStatus, Exception?)>(
            new UnboundedChannelOptions { SingleReader = true }
        );
    private CancellationToken _stop;
    private Exception? _failure;

    /// <summary>
    /// Transmission on <paramref name="input"/> as <paramref name="agreement"/> settled it, for connection number
    /// <paramref name="connection"/>.
    /// </summary>
    public NbdTransmission(NbdInput input, NbdAgreement agreement, NbdServerOptions options, int connection)
    {
        _input = input;
        _agreement = agreement;
        _options = options;
        _connection = connection;
        _slots = new SemaphoreSlim(options.MaximumRequestsInFlight, options.MaximumRequestsInFlight);
    }

    private Stream Output => _input.Stream;

    private bool Structured => _agreement.Structured;

    /// <inheritdoc />
    public void Dispose()
    {
        _writeLock.Dispose();
        _slots.Dispose();
    }

    /// <summary>
    /// Runs transmission until the client disconnects (or <paramref name="stop"/>); every reply in flight is written
    /// before it returns.
    /// </summary>
    public async Task RunAsync(CancellationToken stop)
    {
        INbdExport export = _agreement.Export;
        _stop = stop;
        var inFlight = new List<Task>();
        Task writer = WriteRepliesAsync();
        try
        {
            while (true)
            {
                if (!await _input.ReadOrEndAsync(_header, stop).ConfigureAwait(false))
                {
                    return;
                }

                NbdRequestHeader request = NbdRequestHeader.Read(_header);
                if (request.Magic != NbdProtocol.RequestMagic)
                {
                    throw new NbdProtocolException(
                        $"request magic 0x{request.Magic:x8}, not 0x{NbdProtocol.RequestMagic:x8}"
                    );
                }

                (NbdCommand command, NbdCommandModifiers flags, ulong handle, ulong offset, uint length) = (
                    request.Command,
                    request.Flags,
                    request.Handle,
                    request.Offset,
                    request.Length
                );
                if (command == NbdCommand.Disconnect)
                {
                    return;
                }

                if (command == NbdCommand.Write && length > _options.MaximumBlockBytes)
                {
                    // Its payload cannot be taken, and cannot be skipped safely: the connection ends.
                    throw new NbdProtocolException(
                        $"a write of {length} bytes, more than the {_options.MaximumBlockBytes} advertised"
                    );
                }

                byte[]? rented =
                    command is NbdCommand.Write or NbdCommand.Read && length <= _options.MaximumBlockBytes
                        ? ArrayPool<byte>.Shared.Rent((int)length)
                        : null;
                Memory<byte> buffer = rented is null ? Memory<byte>.Empty : rented.AsMemory(0, (int)length);
                try
                {
                    if (command == NbdCommand.Write)
                    {
                        await _input.ReadExactlyAsync(buffer, stop).ConfigureAwait(false);
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

                if (
                    Validate(export, command, flags, offset, length) == NbdError.None
                    && NbdConnection.HostCommandFor(command, flags) is { } host
                )
                {
                    // The common path: the command goes to the export, and its end straight to the
                    // queue of replies, with no task of its own.
                    var pending = new PendingRequest(this, command, handle, offset, length, buffer, rented);
                    export.Submit(host.Opcode, host.Options, (long)offset, length, buffer, pending);
                }
                else
                {
                    inFlight.RemoveAll(t => t.IsCompleted);
                    inFlight.Add(HandleAsync(export, command, flags, handle, offset, length, rented, stop));
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

    private async Task HandleAsync(
        INbdExport export,
        NbdCommand command,
        NbdCommandModifiers flags,
        ulong handle,
        ulong offset,
        uint length,
        byte[]? rented,
        CancellationToken stop
    )
    {
        try
        {
            await RequestAsync(export, command, flags, handle, offset, length, stop).ConfigureAwait(false);
        }
        catch (Exception e)
            when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException
            )
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

    private async Task RequestAsync(
        INbdExport export,
        NbdCommand command,
        NbdCommandModifiers flags,
        ulong handle,
        ulong offset,
        uint length,
        CancellationToken cancellation
    )
    {
        NbdError invalid = Validate(export, command, flags, offset, length);
        if (invalid != NbdError.None)
        {
            await SendAsync(ErrorReply(command, handle, invalid), ReadOnlyMemory<byte>.Empty, cancellation)
                .ConfigureAwait(false);
            return;
        }

        switch (command)
        {
            case NbdCommand.Cache:
                await SendAsync(SimpleReply(NbdError.None, handle), ReadOnlyMemory<byte>.Empty, cancellation)
                    .ConfigureAwait(false);
                return;
            case NbdCommand.BlockStatus:
                await BlockStatusAsync(export, flags, handle, offset, length, cancellation).ConfigureAwait(false);
                return;
        }

        // A valid READ, WRITE, FLUSH, TRIM or WRITE_ZEROES never comes here (RunAsync submits it).
        throw new InvalidOperationException($"{command} is not answered without the controller");
    }

    /// <summary>The error a command's status becomes on the wire, or none.</summary>
    private static NbdError ErrorFor(HostStatus status) =>
        status switch
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
                ReadOnlyMemory<byte> payload =
                    error == NbdError.None && request.Command == NbdCommand.Read
                        ? request.Buffer
                        : ReadOnlyMemory<byte>.Empty;
                byte[]? errorReply = error == NbdError.None ? null : ErrorReply(request.Command, request.Handle, error);
                int header = errorReply?.Length
                    ?? (request.Command == NbdCommand.Read ? ReadReplyHeaderBytes : NbdSimpleReply.Bytes);
                if (used + header + payload.Length > gathered.Length && used > 0)
                {
                    await Output.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
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
                    new NbdSimpleReply(NbdError.None, request.Handle).Write(gathered.AsSpan(used));
                }

                used += header;
                if (used + payload.Length <= gathered.Length)
                {
                    payload.CopyTo(gathered.AsMemory(used));
                    used += payload.Length;
                }
                else
                {
                    await Output.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
                    await Output.WriteAsync(payload, _stop).ConfigureAwait(false);
                    used = 0;
                }
            }

            if (used > 0)
            {
                await Output.WriteAsync(gathered.AsMemory(0, used), _stop).ConfigureAwait(false);
            }

            await Output.FlushAsync(_stop).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
            ArrayPool<byte>.Shared.Return(gathered);
        }
    }

    /// <summary>
    /// The bytes before a successful READ's data: a simple reply, or a structured OFFSET_DATA chunk's header and
    /// offset.
    /// </summary>
    private int ReadReplyHeaderBytes =>
        Structured ? NbdChunkHeader.Bytes + NbdChunkData.OffsetBytes : NbdSimpleReply.Bytes;

    private void ReadReplyHeader(Span<byte> header, ulong handle, ulong offset, uint length)
    {
        if (Structured)
        {
            NbdChunkHeader.Last(NbdReplyType.OffsetData, handle, NbdChunkData.OffsetBytes + length).Write(header);
            NbdChunkData.WriteOffset(header[NbdChunkHeader.Bytes..], offset);
        }
        else
        {
            new NbdSimpleReply(NbdError.None, handle).Write(header);
        }
    }

    /// <summary>The error a request gets before anything is executed, or none.</summary>
    private NbdError Validate(
        INbdExport export,
        NbdCommand command,
        NbdCommandModifiers flags,
        ulong offset,
        uint length
    )
    {
        NbdCommandModifiers allowed = NbdConnection.AllowedFlags(command);
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
            NbdCommand.BlockStatus when !Structured || !_agreement.AllocationContext || length == 0 => NbdError.Invalid,
            _ when ranged && (offset > size || length > size - offset) => writes ? NbdError.NoSpace : NbdError.Invalid,
            _ when ranged && (offset % block != 0 || length % block != 0) => NbdError.Invalid,
            NbdCommand.WriteZeroes
                when flags.HasFlag(NbdCommandModifiers.FastZero) && flags.HasFlag(NbdCommandModifiers.NoHole) =>
                NbdError.NotSupported,
            _ => NbdError.None,
        };
    }

    private async Task BlockStatusAsync(
        INbdExport export,
        NbdCommandModifiers flags,
        ulong handle,
        ulong offset,
        uint length,
        CancellationToken cancellation
    )
    {
        var extents = new List<NbdExtent>();
        await export.BlockStatusAsync((long)offset, length, extents, cancellation).ConfigureAwait(false);
        int count = flags.HasFlag(NbdCommandModifiers.RequestOne) ? Math.Min(1, extents.Count) : extents.Count;
        var descriptors = new (uint Length, NbdAllocationState Flags)[count];
        long covered = 0;
        for (int i = 0; i < count; i++)
        {
            long extent = Math.Min(extents[i].Length, length - covered);
            covered += extent;
            descriptors[i] = ((uint)extent, extents[i].Flags);
        }

        int payload = NbdChunkData.BlockStatusBytes(count);
        byte[] chunk = new byte[NbdChunkHeader.Bytes + payload];
        NbdChunkHeader.Last(NbdReplyType.BlockStatus, handle, (uint)payload).Write(chunk);
        NbdChunkData.WriteBlockStatus(
            chunk.AsSpan(NbdChunkHeader.Bytes),
            NbdHandshake.BaseAllocationContextId,
            descriptors
        );
        await SendAsync(chunk, ReadOnlyMemory<byte>.Empty, cancellation).ConfigureAwait(false);
    }

    /// <summary>
    /// The reply to a request that failed with <paramref name="error"/>: a structured error chunk with its text where
    /// the client takes one.
    /// </summary>
    private byte[] ErrorReply(NbdCommand command, ulong handle, NbdError error)
    {
        if (Structured && command is NbdCommand.Read or NbdCommand.BlockStatus)
        {
            byte[] payload = NbdChunkData.Error(error, ErrorText(error));
            byte[] chunk = new byte[NbdChunkHeader.Bytes + payload.Length];
            NbdChunkHeader.Last(NbdReplyType.Error, handle, (uint)payload.Length).Write(chunk);
            payload.CopyTo(chunk, NbdChunkHeader.Bytes);
            return chunk;
        }

        return SimpleReply(error, handle);
    }

    private static byte[] SimpleReply(NbdError error, ulong handle)
    {
        byte[] header = new byte[NbdSimpleReply.Bytes];
        new NbdSimpleReply(error, handle).Write(header);
        return header;
    }

    private static string ErrorText(NbdError error) =>
        error switch
        {
            NbdError.Invalid =>
                "invalid request: a range outside the export or not in whole 512-byte blocks, or an unknown command or flag",
            NbdError.Overflow => "the request is longer than the advertised maximum block size",
            NbdError.NotPermitted => "the export is read-only",
            NbdError.NoSpace =>
                "no space: the range is past the end of the export, or the device has used up its spare",
            NbdError.NotSupported => "zeroing without a hole cannot be fast",
            _ => "the NAND could not return the data intact",
        };

    /// <summary>Writes one whole reply (header, then payload) with no other reply between them.</summary>
    private async Task SendAsync(byte[] header, ReadOnlyMemory<byte> payload, CancellationToken cancellation)
    {
        await _writeLock.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            await NbdWire.WriteMessageAsync(Output, header, payload, cancellation).ConfigureAwait(false);
            await Output.FlushAsync(cancellation).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>
    /// A request handed to the export: what its reply needs, and the buffer to give back once it is sent.
    /// </summary>
    private sealed class PendingRequest(
        NbdTransmission transmission,
        NbdCommand command,
        ulong handle,
        ulong offset,
        uint length,
        Memory<byte> buffer,
        byte[]? rented
    ) : INbdCompletion
    {
        public NbdCommand Command => command;

        public ulong Handle => handle;

        public ulong Offset => offset;

        public uint Length => length;

        public Memory<byte> Buffer => buffer;

        public void Complete(HostStatus status) => transmission.Replied(this, status, null);

        public void Fail(Exception exception) => transmission.Replied(this, HostStatus.IoError, exception);

        public int Connection => transmission._connection;

        public void Release()
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
