using System.Buffers;

namespace Controller.Nbd;

/// <summary>Writing NBD messages to a stream, shared by the server and the host tool's client.</summary>
public static class NbdWire
{
    /// <summary>A payload up to this size goes out in one write with its header.</summary>
    public const int JoinedWriteBytes = 64 << 10;

    /// <summary>
    /// Writes <paramref name="header"/> then <paramref name="payload"/>: one write when the payload is small (one send,
    /// not two), else two.
    /// </summary>
    public static async ValueTask WriteMessageAsync(
        Stream stream,
        ReadOnlyMemory<byte> header,
        ReadOnlyMemory<byte> payload,
        CancellationToken cancellation
    )
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (payload.IsEmpty)
        {
            await stream.WriteAsync(header, cancellation).ConfigureAwait(false);
        }
        else if (payload.Length <= JoinedWriteBytes)
        {
            byte[] joined = ArrayPool<byte>.Shared.Rent(header.Length + payload.Length);
            try
            {
                header.CopyTo(joined);
                payload.CopyTo(joined.AsMemory(header.Length));
                await stream
                    .WriteAsync(joined.AsMemory(0, header.Length + payload.Length), cancellation)
                    .ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(joined);
            }
        }
        else
        {
            await stream.WriteAsync(header, cancellation).ConfigureAwait(false);
            await stream.WriteAsync(payload, cancellation).ConfigureAwait(false);
        }
    }
}
