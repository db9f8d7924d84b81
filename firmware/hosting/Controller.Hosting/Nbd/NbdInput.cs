namespace Controller.Hosting.Nbd;

/// <summary>
/// A connection's byte stream as the server reads it: through a buffer, so the requests a client
/// has queued come in with one receive rather than two per request (a payload larger than the
/// buffer goes straight to its destination). After NBD_OPT_STARTTLS the TLS session's stream
/// takes the place of the connection's own.
/// </summary>
internal sealed class NbdInput(Stream stream)
{
    private const int BufferBytes = 64 * 1024;

    private readonly byte[] _buffer = new byte[BufferBytes];
    private int _start;
    private int _end;

    /// <summary>The stream the session runs on now (the connection's, or the TLS session's).</summary>
    public Stream Stream { get; private set; } = stream;

    /// <summary>Bytes read from the stream and not yet taken.</summary>
    public int Buffered => _end - _start;

    /// <summary>Runs the rest of the session on <paramref name="tls"/>; nothing may be buffered.</summary>
    public void SwitchTo(Stream tls)
    {
        if (Buffered != 0)
        {
            throw new InvalidOperationException($"{Buffered} bytes read in the clear would be lost");
        }

        Stream = tls;
    }

    /// <summary>
    /// Reads exactly <paramref name="destination"/>; false if the stream ended before its first byte.
    /// </summary>
    public async Task<bool> ReadOrEndAsync(Memory<byte> destination, CancellationToken cancellation)
    {
        if (_start == _end && !await FillAsync(cancellation).ConfigureAwait(false))
        {
            return false;
        }

        await ReadExactlyAsync(destination, cancellation).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Reads exactly <paramref name="destination"/>.Length bytes; the stream ending first is an
    /// <see cref="EndOfStreamException"/>.
    /// </summary>
    public async ValueTask ReadExactlyAsync(Memory<byte> destination, CancellationToken cancellation)
    {
        while (!destination.IsEmpty)
        {
            if (_start == _end)
            {
                if (destination.Length >= _buffer.Length)
                {
                    await Stream.ReadExactlyAsync(destination, cancellation).ConfigureAwait(false);
                    return;
                }

                if (!await FillAsync(cancellation).ConfigureAwait(false))
                {
                    throw new EndOfStreamException("the client closed the connection in the middle of a message");
                }
            }

            int take = Math.Min(destination.Length, _end - _start);
            _buffer.AsMemory(_start, take).CopyTo(destination);
            _start += take;
            destination = destination[take..];
        }
    }

    private async ValueTask<bool> FillAsync(CancellationToken cancellation)
    {
        int read = await Stream.ReadAsync(_buffer, cancellation).ConfigureAwait(false);
        (_start, _end) = (0, read);
        return read > 0;
    }
}
