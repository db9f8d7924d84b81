namespace Controller.Traces;

/// <summary>How a trace's addresses are put onto a device smaller than the traced one.</summary>
public enum TraceFit
{
    /// <summary>
    /// Offsets modulo the device's size (locality within a region is kept; distant regions land on each other).
    /// </summary>
    Wrap,

    /// <summary>
    /// Offsets scaled by the device's size over the trace's extent (the layout is kept, shrunk; nearby requests may
    /// merge).
    /// </summary>
    Scale,
}

/// <summary>What one pass over a trace found: the figures a replay needs before it starts.</summary>
/// <param name="Records">Requests read from the file.</param>
/// <param name="Commands">Commands they become on a device (a request longer than the largest transfer is
/// split).</param>
/// <param name="Reads">Read requests.</param>
/// <param name="Writes">Write requests.</param>
/// <param name="Trims">Trim requests.</param>
/// <param name="Flushes">Flushes (blkparse preflushes and fio syncs among them).</param>
/// <param name="Fua">Requests with forced unit access.</param>
/// <param name="Empty">Reads, writes and trims of no bytes, which are passed over.</param>
/// <param name="EndBytes">The byte after the highest extent: the traced device's size as far as the trace shows
/// it.</param>
/// <param name="DurationNanoseconds">The last request's time.</param>
public sealed record TraceSummary(
    long Records,
    long Commands,
    long Reads,
    long Writes,
    long Trims,
    long Flushes,
    long Fua,
    long Empty,
    long EndBytes,
    long DurationNanoseconds
)
{
    /// <summary>Reads the whole of <paramref name="requests"/> once.</summary>
    public static TraceSummary Scan(
        IEnumerable<TraceRequest> requests,
        long maxTransferBytes = TraceFolder.DefaultMaxTransferBytes
    )
    {
        ArgumentNullException.ThrowIfNull(requests);
        long records = 0,
            commands = 0,
            reads = 0,
            writes = 0,
            trims = 0,
            flushes = 0,
            fua = 0,
            empty = 0,
            end = 0,
            duration = 0;
        foreach (TraceRequest r in requests)
        {
            records++;
            duration = Math.Max(duration, r.TimeNanoseconds);
            fua += r.Fua ? 1 : 0;
            switch (r.Operation)
            {
                case TraceOperation.Flush:
                    flushes++;
                    commands++;
                    continue;
                case TraceOperation.Read:
                    reads++;
                    break;
                case TraceOperation.Write:
                    writes++;
                    break;
                default:
                    trims++;
                    break;
            }

            if (r.Length <= 0)
            {
                empty++;
                continue;
            }

            commands += TraceFolder.Pieces(TraceFolder.Aligned(r).Length, maxTransferBytes);
            end = Math.Max(end, TraceFolder.Aligned(r).End);
        }

        return new TraceSummary(records, commands, reads, writes, trims, flushes, fua, empty, end, duration);
    }

    /// <summary>One line for a report: counts and extent.</summary>
    public string Describe() =>
        $"{Records} requests ({Reads} reads, {Writes} writes, {Trims} trims, {Flushes} flushes{(Fua > 0 ? $", {Fua} FUA" : string.Empty)}{(Empty > 0 ? $", {Empty} empty passed over" : string.Empty)}) over {EndBytes} bytes in {DurationNanoseconds / 1e9:0.###} s";
}

/// <summary>
/// Puts a trace's requests onto a device of <c>deviceBytes</c>: extents widened to whole blocks
/// (512 bytes unless told), addresses folded by <see cref="TraceFit"/> when the trace reaches beyond the device, a
/// request that would cross the device's end moved back to end there, and reads and writes longer
/// than the largest transfer split into pieces at the same time.
/// </summary>
public sealed class TraceFolder
{
    /// <summary>The NBD server's largest request, and the sim's.</summary>
    public const long DefaultMaxTransferBytes = 32L << 20;

    private const long SectorBytes = 512;
    private readonly long _alignment;
    private readonly long _deviceBytes;
    private readonly TraceFit _fit;
    private readonly long _traceEnd;
    private readonly long _maxTransfer;

    /// <summary>
    /// Folds onto <paramref name="deviceBytes"/> a trace whose extents end by
    /// <paramref name="traceEndBytes"/> (<see cref="TraceSummary.EndBytes"/>), in whole blocks of
    /// <paramref name="alignmentBytes"/> (a power of two from 512).
    /// </summary>
    public TraceFolder(
        long deviceBytes,
        TraceFit fit,
        long traceEndBytes,
        long maxTransferBytes = DefaultMaxTransferBytes,
        long alignmentBytes = SectorBytes
    )
    {
        if (alignmentBytes < SectorBytes || (alignmentBytes & (alignmentBytes - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignmentBytes), alignmentBytes, "a power of two from 512");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(deviceBytes, alignmentBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTransferBytes, alignmentBytes);
        _alignment = alignmentBytes;
        _deviceBytes = deviceBytes / alignmentBytes * alignmentBytes;
        _fit = fit;
        _traceEnd = traceEndBytes;
        _maxTransfer = maxTransferBytes / alignmentBytes * alignmentBytes;
    }

    /// <summary>The trace reaches beyond the device, so its addresses are folded.</summary>
    public bool Folds => _traceEnd > _deviceBytes;

    /// <summary>A warning for the user when the trace is folded, or null.</summary>
    public string? Warning =>
        Folds
            ? $"the trace reaches {_traceEnd} bytes, beyond the device's {_deviceBytes}: its addresses are folded onto the device ({(_fit == TraceFit.Wrap ? "wrap: modulo the device's size" : "scale: in proportion")})"
            : null;

    /// <summary>
    /// The commands <paramref name="request"/> becomes on the device: none for an empty one, several for a long one.
    /// </summary>
    public IEnumerable<TraceRequest> Fold(TraceRequest request)
    {
        if (request.Operation == TraceOperation.Flush)
        {
            return [request];
        }

        if (request.Length <= 0)
        {
            return [];
        }

        TraceRequest aligned = Aligned(request, _alignment);
        long length = Math.Min(aligned.Length, _deviceBytes);
        long offset =
            !Folds ? aligned.Offset
            : _fit == TraceFit.Wrap ? aligned.Offset % _deviceBytes
            : (long)((Int128)aligned.Offset * _deviceBytes / _traceEnd) / _alignment * _alignment;
        offset = Math.Min(offset, _deviceBytes - length);
        return Split(aligned with { Offset = offset, Length = length });
    }

    internal static TraceRequest Aligned(TraceRequest request, long alignment = SectorBytes)
    {
        long offset = request.Offset / alignment * alignment;
        long end = (request.End + alignment - 1) / alignment * alignment;
        return request with { Offset = offset, Length = end - offset };
    }

    internal static long Pieces(long length, long maxTransfer) =>
        (length + (maxTransfer / SectorBytes * SectorBytes) - 1) / (maxTransfer / SectorBytes * SectorBytes);

    private List<TraceRequest> Split(TraceRequest request)
    {
        var pieces = new List<TraceRequest>((int)Pieces(request.Length, _maxTransfer));
        for (long done = 0; done < request.Length; done += _maxTransfer)
        {
            pieces.Add(
                request with
                {
                    Offset = request.Offset + done,
                    Length = Math.Min(_maxTransfer, request.Length - done),
                }
            );
        }

        return pieces;
    }
}
