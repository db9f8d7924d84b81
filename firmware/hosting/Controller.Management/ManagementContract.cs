using PolyType;
using StreamJsonRpc;

namespace Controller.Management;

/// <summary>
/// The <c>control</c> channel of the management endpoint: JSON-RPC 2.0 methods <c>stats</c>,
/// <c>powerCut</c>, <c>checkpoint</c>, <c>setFaults</c> and <c>powerFail</c>, framed with
/// Content-Length headers.
/// </summary>
[JsonRpcContract]
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public partial interface IManagementService
{
    /// <summary>Counters and gauges of the device as it is now.</summary>
    [JsonRpcMethod("stats")]
    Task<DeviceStats> GetStatsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Cuts the power at this instant (what the controller held in DRAM is lost unless power-loss
    /// protection saves it), powers on, recovers and serves again. Every NBD connection ends.
    /// </summary>
    [JsonRpcMethod("powerCut")]
    Task<PowerCutResult> PowerCutAsync(CancellationToken cancellationToken);

    /// <summary>Writes back the cache, flushes and takes an FTL checkpoint now.</summary>
    [JsonRpcMethod("checkpoint")]
    Task<CheckpointResult> CheckpointAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Changes the NAND's fault injection; fields left null keep their value. Returns the settings in force.
    /// </summary>
    [JsonRpcMethod("setFaults")]
    Task<FaultSettings> SetFaultsAsync(FaultRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Raises the power-fail signal, as a board's power-fail pin does: power-loss protection saves
    /// the cache on hold-up energy. On an emulated device the power then goes (a cut, a recovery,
    /// serving again); on a board the firmware stops, the save done, and the next boot recovers.
    /// </summary>
    [JsonRpcMethod("powerFail")]
    Task<PowerFailResult> PowerFailAsync(CancellationToken cancellationToken);
}

/// <summary>What the device has done and holds.</summary>
public sealed record DeviceStats
{
    /// <summary>What the device is (profile, image).</summary>
    public string Device { get; init; } = "";

    /// <summary>The size the host sees, bytes.</summary>
    public long CapacityBytes { get; init; }

    /// <summary>Seconds since the server started.</summary>
    public double UptimeSeconds { get; init; }

    /// <summary>Host commands and bytes.</summary>
    public HostCounters Host { get; init; } = new();

    /// <summary>The DRAM cache.</summary>
    public CacheGauges Cache { get; init; } = new();

    /// <summary>The flash translation layer.</summary>
    public FtlGauges Ftl { get; init; } = new();

    /// <summary>The NAND array.</summary>
    public NandCounters Nand { get; init; } = new();

    /// <summary>
    /// Write amplification: NAND bytes programmed (data, GC and metadata) over host bytes written; 0 before any write.
    /// </summary>
    public double Waf { get; init; }

    /// <summary>
    /// Service latency per command (read, write, trim, write-zeroes, flush), microseconds of wall time.
    /// </summary>
    public IReadOnlyDictionary<string, LatencySummary> LatencyMicroseconds { get; init; } =
        new Dictionary<string, LatencySummary>();

    /// <summary>Power cuts made through the management endpoint since the server started.</summary>
    public long PowerCuts { get; init; }
}

/// <summary>Host commands completed and their bytes.</summary>
public sealed record HostCounters
{
    /// <summary>READ commands.</summary>
    public long Reads { get; init; }

    /// <summary>WRITE commands.</summary>
    public long Writes { get; init; }

    /// <summary>TRIM commands.</summary>
    public long Trims { get; init; }

    /// <summary>WRITE ZEROES commands.</summary>
    public long WriteZeroes { get; init; }

    /// <summary>FLUSH commands.</summary>
    public long Flushes { get; init; }

    /// <summary>Commands that completed with an error.</summary>
    public long Errors { get; init; }

    /// <summary>Bytes read.</summary>
    public long BytesRead { get; init; }

    /// <summary>Bytes written (WRITE only).</summary>
    public long BytesWritten { get; init; }

    /// <summary>Bytes trimmed or zeroed.</summary>
    public long BytesTrimmed { get; init; }

    /// <summary>Every command.</summary>
    public long Commands => Reads + Writes + Trims + WriteZeroes + Flushes;
}

/// <summary>The cache's occupancy now, and its counters since the server started (power cuts included).</summary>
public sealed record CacheGauges
{
    /// <summary>The arena, in 4 KiB sectors.</summary>
    public long CapacitySectors { get; init; }

    /// <summary>Sectors of the arena in use.</summary>
    public long SectorsHeld { get; init; }

    /// <summary>Sectors holding data not yet written back.</summary>
    public long DirtySectors { get; init; }

    /// <summary>Cached sectors that read as holes (punched while cached).</summary>
    public long HoleSectors { get; init; }

    /// <summary>Large pages cached.</summary>
    public long PagesCached { get; init; }

    /// <summary>Sector accesses found in the cache.</summary>
    public long SectorHits { get; init; }

    /// <summary>Sector accesses that missed.</summary>
    public long SectorMisses { get; init; }

    /// <summary>Large pages evicted.</summary>
    public long Evictions { get; init; }

    /// <summary>Dirty sectors written back to the FTL.</summary>
    public long SectorsWrittenBack { get; init; }

    /// <summary>TRIMs that covered part of a cached large page (the trim policy's work).</summary>
    public long PartialPagePunches { get; init; }

    /// <summary>Splits that could not get their frames and kept the large page with holes.</summary>
    public long SplitFallbacks { get; init; }

    /// <summary>Migrations that could not get their frames and kept the large page with holes.</summary>
    public long MigrateFallbacks { get; init; }

    /// <summary>Clean pages dropped to give migration the frames it needed.</summary>
    public long CleanPagesReclaimed { get; init; }

    /// <summary>Bytes copied by migration.</summary>
    public long BytesMigrated { get; init; }

    /// <summary>Bytes zeroed in place by trims.</summary>
    public long BytesZeroed { get; init; }

    /// <summary>Sectors read past the cache because no room could be made (a device at the end of its life).</summary>
    public long ReadsPastTheCache { get; init; }
}

/// <summary>The FTL's space and wear.</summary>
public sealed record FtlGauges
{
    /// <summary>Logical 4 KiB sectors.</summary>
    public long LogicalSectors { get; init; }

    /// <summary>Logical sectors that hold data; the rest are holes.</summary>
    public long MappedSectors { get; init; }

    /// <summary>Blocks ready to be written.</summary>
    public long FreeBlocks { get; init; }

    /// <summary>Blocks retired as bad.</summary>
    public long BadBlocks { get; init; }

    /// <summary>Least erase count of a good block.</summary>
    public long EraseCountMin { get; init; }

    /// <summary>Greatest erase count of a good block.</summary>
    public long EraseCountMax { get; init; }

    /// <summary>Mean erase count of the good blocks.</summary>
    public double EraseCountMean { get; init; }

    /// <summary>Blocks garbage collection has reclaimed.</summary>
    public long GcVictims { get; init; }

    /// <summary>Sectors GC and wear levelling copied.</summary>
    public long SectorsRelocated { get; init; }

    /// <summary>Checkpoints taken.</summary>
    public long Checkpoints { get; init; }
}

/// <summary>Operations of the NAND array.</summary>
public sealed record NandCounters
{
    /// <summary>Pages read.</summary>
    public long PagesRead { get; init; }

    /// <summary>Pages programmed.</summary>
    public long PagesProgrammed { get; init; }

    /// <summary>Blocks erased.</summary>
    public long BlocksErased { get; init; }

    /// <summary>Reads ECC corrected.</summary>
    public long CorrectedReads { get; init; }

    /// <summary>Reads ECC could not correct.</summary>
    public long UncorrectableReads { get; init; }

    /// <summary>Programs that failed.</summary>
    public long ProgramFailures { get; init; }

    /// <summary>Erases that failed.</summary>
    public long EraseFailures { get; init; }
}

/// <summary>Latency percentiles of one kind of command, microseconds.</summary>
public sealed record LatencySummary
{
    /// <summary>Commands measured.</summary>
    public long Count { get; init; }

    /// <summary>Median.</summary>
    public double P50 { get; init; }

    /// <summary>99th percentile.</summary>
    public double P99 { get; init; }

    /// <summary>99.9th percentile.</summary>
    public double P999 { get; init; }
}

/// <summary>What a power cut did.</summary>
public sealed record PowerCutResult
{
    /// <summary>NAND operations in flight that the cut tore or cancelled.</summary>
    public int TornOperations { get; init; }

    /// <summary>Dirty cache sectors lost with the DRAM (none were flushed; 0 with power-loss protection).</summary>
    public long DirtySectorsLost { get; init; }

    /// <summary>Pages power-loss protection saved on hold-up energy.</summary>
    public long PagesSavedOnHoldUp { get; init; }

    /// <summary>NBD connections the cut ended.</summary>
    public int ConnectionsEnded { get; init; }

    /// <summary>Page reads recovery made.</summary>
    public long RecoveryPageReads { get; init; }

    /// <summary>Journal and data units recovery replayed.</summary>
    public long RecoveryUnitsReplayed { get; init; }
}

/// <summary>What the power-fail signal did.</summary>
public sealed record PowerFailResult
{
    /// <summary>Dirty cache sectors when the signal came, all saved.</summary>
    public long DirtySectorsSaved { get; init; }

    /// <summary>Page programs the save on hold-up energy took.</summary>
    public long PagesSavedOnHoldUp { get; init; }

    /// <summary>The budget of page programs the hold-up energy allows (power.plpBudgetPages).</summary>
    public long HoldUpBudgetPages { get; init; }

    /// <summary>The power then went (an emulated device): the cut that followed, or null on a board.</summary>
    public PowerCutResult? Cut { get; init; }
}

/// <summary>What a checkpoint did.</summary>
public sealed record CheckpointResult
{
    /// <summary>Checkpoints taken since the FTL mounted, this one included.</summary>
    public long Checkpoints { get; init; }

    /// <summary>Dirty sectors written back first.</summary>
    public long SectorsWrittenBack { get; init; }
}

/// <summary>Fault injection to change; null leaves a setting as it is.</summary>
public sealed record FaultRequest
{
    /// <summary>Raw bit error rate of a fresh block, 0 to 1.</summary>
    public double? RawBitErrorRate { get; init; }

    /// <summary>Chance that a page program fails, 0 to 1.</summary>
    public double? ProgramFailProbability { get; init; }

    /// <summary>Chance that a block erase fails, 0 to 1.</summary>
    public double? EraseFailProbability { get; init; }

    /// <summary>This many of the next page programs fail, wherever they are.</summary>
    public int? FailNextPrograms { get; init; }

    /// <summary>This many of the next block erases fail.</summary>
    public int? FailNextErases { get; init; }
}

/// <summary>The fault injection in force.</summary>
public sealed record FaultSettings
{
    /// <summary>Raw bit error rate of a fresh block.</summary>
    public double RawBitErrorRate { get; init; }

    /// <summary>Chance that a page program fails.</summary>
    public double ProgramFailProbability { get; init; }

    /// <summary>Chance that a block erase fails.</summary>
    public double EraseFailProbability { get; init; }
}

/// <summary>
/// One line of the <c>telemetry</c> channel: the device's stats and the rates over the last interval.
/// </summary>
public sealed record TelemetrySample
{
    /// <summary>When the sample was taken (UTC, ISO 8601).</summary>
    public string Time { get; init; } = "";

    /// <summary>Seconds since the previous sample.</summary>
    public double IntervalSeconds { get; init; }

    /// <summary>Commands per second over the interval.</summary>
    public double Iops { get; init; }

    /// <summary>Reads per second.</summary>
    public double ReadIops { get; init; }

    /// <summary>Writes per second.</summary>
    public double WriteIops { get; init; }

    /// <summary>Bytes read per second / 2^20.</summary>
    public double ReadMibPerSecond { get; init; }

    /// <summary>Bytes written per second / 2^20.</summary>
    public double WriteMibPerSecond { get; init; }

    /// <summary>The stats at the end of the interval.</summary>
    public DeviceStats Stats { get; init; } = new();
}
