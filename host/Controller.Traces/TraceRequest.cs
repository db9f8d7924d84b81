namespace Controller.Traces;

/// <summary>What a trace record asks the device to do.</summary>
public enum TraceOperation
{
    /// <summary>Read the extent.</summary>
    Read,

    /// <summary>Write the extent.</summary>
    Write,

    /// <summary>Discard the extent (TRIM, unmap, deallocate).</summary>
    Trim,

    /// <summary>Make every completed write durable (no extent).</summary>
    Flush,
}

/// <summary>
/// One request of a block trace, in bytes and nanoseconds. The time counts from the trace's first
/// record, so a trace starts at 0.
/// </summary>
/// <param name="Line">The line of the file it came from (1-based), for messages.</param>
/// <param name="TimeNanoseconds">Arrival, from the first record.</param>
/// <param name="Operation">Read, write, trim or flush.</param>
/// <param name="Offset">First byte on the traced device (0 for a flush).</param>
/// <param name="Length">Bytes (0 for a flush).</param>
/// <param name="Fua">The request was issued with forced unit access (blkparse's trailing F).</param>
public readonly record struct TraceRequest(
    long Line,
    long TimeNanoseconds,
    TraceOperation Operation,
    long Offset,
    long Length,
    bool Fua = false
)
{
    /// <summary>The byte after the extent.</summary>
    public long End => Offset + Length;
}

/// <summary>
/// A trace file that cannot be read as the format it was given as; the message names the file, the line and the value.
/// </summary>
public sealed class TraceFormatException(string message) : Exception(message);
