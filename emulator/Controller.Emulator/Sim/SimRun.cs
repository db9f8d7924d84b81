using Controller.Emulator.Nand;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;

namespace Controller.Emulator.Sim;

/// <summary>What a sim run is asked to do.</summary>
/// <param name="Seed">The one seed every random choice of the run comes from.</param>
/// <param name="Workload">The workload's name.</param>
/// <param name="Parameters">The workload's knobs.</param>
/// <param name="PowerCuts">Power cuts at random instants during the run (each followed by recovery and a check of the
/// whole device).</param>
public sealed record SimOptions(ulong Seed, string Workload, WorkloadParameters Parameters, int PowerCuts = 0)
{
    /// <summary>Deliberately broken firmware variants, for the tests' canaries only.</summary>
    internal SimHooks Hooks { get; init; } = SimHooks.None;

    /// <summary>
    /// Told where the run is (its phase and how far into it), at each phase's start and about every
    /// 1% of it; it observes only, so the run is the same with or without it.
    /// </summary>
    public Action<SimProgress>? Progress { get; init; }

    /// <summary>
    /// Keep a timeline of the run (about 256 samples of its counters) and its blocks' erase counts, for a report's
    /// charts.
    /// </summary>
    public bool KeepTimeline { get; init; }

    /// <summary>
    /// The host commands to run in place of a workload (the crash test's prefix, sequence and tail), or null.
    /// </summary>
    internal IReadOnlyList<HostRequest>? Script { get; init; }

    /// <summary>One planned power cut in place of random ones (the crash test's cut point), or null.</summary>
    internal CrashPlan? Crash { get; init; }
}

/// <summary>
/// One planned power cut: the crash test's cut point. The run counts NAND operations from host
/// command <paramref name="FirstCommand"/> on; with <paramref name="DuringNandOperation"/> above
/// zero the power is cut during that operation (1: the first one issued from there), at an instant
/// drawn within it as random cuts are; with <paramref name="AfterCommand"/> at or above zero, it is
/// cut once that command completes. Either way the run recovers, checks the whole device and
/// stops; recovery is not cut. With neither, the run only counts.
/// </summary>
/// <param name="FirstCommand">The first command of the sequence under test (0-based, in the script).</param>
/// <param name="DuringNandOperation">The NAND operation to cut during, counted from <paramref name="FirstCommand"/>, or
/// 0.</param>
/// <param name="AfterCommand">The command after whose completion to cut, or -1.</param>
internal sealed record CrashPlan(int FirstCommand, long DuringNandOperation = 0, int AfterCommand = -1);

/// <summary>
/// Decorators around the firmware's edges for a run: how the tests put a canary in. The firmware
/// itself is the shipping one; what is broken is what it talks to.
/// </summary>
/// <param name="Nand">
/// Wraps the NAND the FTL mounts (above the SPI driver, when there is one), once per run; it is
/// given what the FTL is doing at each instant.
/// </param>
/// <param name="Store">Wraps the sector store the cache writes to, at each mount.</param>
/// <param name="Command">
/// Applied to each host command on its way to the controller loop (the oracle still sees it as
/// the host sent it): a device that drops a flag, such as one that ignores FUA on TRIM.
/// </param>
internal sealed record SimHooks(
    Func<INandDevice, Func<FtlActivity>, INandDevice>? Nand = null,
    Func<ISectorStore, ISectorStore>? Store = null,
    Func<HostRequest, HostRequest>? Command = null
)
{
    public static SimHooks None { get; } = new();
}

/// <summary>What the cache did in a run, for comparing trim policies.</summary>
/// <param name="Policy">The trim policy.</param>
/// <param name="MeanBytesHeld">DRAM the arena held allocated, averaged over commands.</param>
/// <param name="BytesMigrated">Bytes copied between frames by migration.</param>
/// <param name="BytesZeroed">Bytes zeroed in place by trims.</param>
/// <param name="HitRatio">Sectors read that were valid in the cache, over all sectors read.</param>
/// <param name="TrimLatencyMicroseconds">TRIM latency percentiles in virtual time.</param>
/// <param name="Statistics">Every counter of the cache, over the whole run (power cuts included).</param>
public sealed record CacheMetrics(
    string Policy,
    double MeanBytesHeld,
    long BytesMigrated,
    long BytesZeroed,
    double HitRatio,
    (double P50, double P99) TrimLatencyMicroseconds,
    CacheStatistics Statistics
);

/// <summary>Where the power cuts of a run struck, and what they tore.</summary>
public sealed class PowerCutReport
{
    /// <summary>Every cut, those inside recovery included.</summary>
    public int Total { get; internal set; }

    /// <summary>Cuts inside recovery (while mounting after an earlier cut).</summary>
    public int InRecovery { get; internal set; }

    /// <summary>Cuts by the NAND operation during which they struck: read, program, erase.</summary>
    public SortedDictionary<string, int> ByOperation { get; } = new(StringComparer.Ordinal);

    /// <summary>Cuts by what the FTL was doing: host, gc, checkpoint, journal, recovery, ...</summary>
    public SortedDictionary<string, int> ByActivity { get; } = new(StringComparer.Ordinal);

    /// <summary>Programs caught in progress by a cut.</summary>
    public int TornPrograms { get; internal set; }

    /// <summary>Erases caught in progress by a cut.</summary>
    public int TornErases { get; internal set; }

    /// <summary>Cuts with power-loss protection: the cache was saved on hold-up energy.</summary>
    public int HoldUpSaves { get; internal set; }

    /// <summary>
    /// Sectors checked after the cuts whose newest written value was not yet durable when the power went (acknowledged,
    /// unflushed).
    /// </summary>
    public long UnflushedSectors { get; internal set; }

    /// <summary>
    /// Of those, the sectors the cuts lost (they came back older, as the rules allow for unflushed data).
    /// </summary>
    public long UnflushedSectorsLost { get; internal set; }

    /// <summary>
    /// Cuts armed (at a host command drawn uniformly over the run; each strikes during a later NAND operation).
    /// </summary>
    public int Armed { get; internal set; }

    /// <summary>
    /// Dirty sectors in the cache at the instants cuts were armed, summed: what a cut at a random command boundary
    /// would lose.
    /// </summary>
    public long DirtySectorsWhenArmed { get; internal set; }

    internal void Add(PowerCutPoint cut, bool inRecovery)
    {
        Total++;
        InRecovery += inRecovery ? 1 : 0;
        string operation = cut.Operation?.ToString().ToLowerInvariant() ?? "none";
        ByOperation[operation] = ByOperation.GetValueOrDefault(operation) + 1;
        string activity = inRecovery ? "recovery" : Activity(cut.Activity);
        ByActivity[activity] = ByActivity.GetValueOrDefault(activity) + 1;
        TornPrograms += cut.Torn.Count(t => t.Kind == NandOperationKind.Program);
        TornErases += cut.Torn.Count(t => t.Kind == NandOperationKind.Erase);
    }

    /// <summary>Adds another run's counts (for campaign totals).</summary>
    public void Add(PowerCutReport other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Total += other.Total;
        InRecovery += other.InRecovery;
        TornPrograms += other.TornPrograms;
        TornErases += other.TornErases;
        HoldUpSaves += other.HoldUpSaves;
        UnflushedSectors += other.UnflushedSectors;
        UnflushedSectorsLost += other.UnflushedSectorsLost;
        Armed += other.Armed;
        DirtySectorsWhenArmed += other.DirtySectorsWhenArmed;
        foreach ((string key, int count) in other.ByOperation)
        {
            ByOperation[key] = ByOperation.GetValueOrDefault(key) + count;
        }

        foreach ((string key, int count) in other.ByActivity)
        {
            ByActivity[key] = ByActivity.GetValueOrDefault(key) + count;
        }
    }

    /// <summary>An activity as the reports write it.</summary>
    public static string Activity(FtlActivity activity) =>
        activity switch
        {
            FtlActivity.GarbageCollection => "gc",
            FtlActivity.WearLeveling => "wear-leveling",
            _ => activity.ToString().ToLowerInvariant(),
        };
}

/// <summary>One seed's results, the RUN object of DESIGN.md section 6.</summary>
public sealed record SimResult(
    SimOptions Options,
    ResolvedConfig Config,
    long HostOps,
    long HostBytesWritten,
    long NandPagesRead,
    long NandPagesProgrammed,
    long NandBlocksErased,
    int NandPageBytes,
    long DataPagesProgrammed,
    double SpareFactor,
    double EffectiveSpareFactor,
    ulong TraceHash,
    double WallSeconds,
    double VirtualSeconds,
    (double P50, double P99, double P999) LatencyMicroseconds,
    WearReport Wear,
    FtlStatistics Ftl,
    IReadOnlyList<Violation> Violations,
    PowerCutReport PowerCuts,
    long BytesCopied,
    CacheMetrics? Cache = null
)
{
    /// <summary>Latencies of the measured phase per operation (those that ran), in virtual microseconds.</summary>
    public IReadOnlyList<OperationLatency> Operations { get; init; } = [];

    /// <summary>Virtual time from the first measured command's submission to the last one's completion.</summary>
    public double MeasuredVirtualSeconds { get; init; }

    /// <summary>Host bytes read in the measured phase.</summary>
    public long HostBytesRead { get; init; }

    /// <summary>The queue depth the host kept.</summary>
    public int QueueDepth { get; init; } = 1;

    /// <summary>
    /// Reads submitted while a write to the same sectors was in flight, or writes while such a read was.
    /// </summary>
    public long ReadsOverlappingWrites { get; init; }

    /// <summary>
    /// Writes, trims and write-zeroes submitted while another of them to a common sector was in flight.
    /// </summary>
    public long WritesOverlappingWrites { get; init; }

    /// <summary>
    /// What the workload had to say (a trace's figures, a warning that it was folded onto the device).
    /// </summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Measured commands per second of virtual time.</summary>
    public double Iops => MeasuredVirtualSeconds <= 0 ? 0 : HostOps / MeasuredVirtualSeconds;

    /// <summary>Bytes programmed into NAND in the measured phase: host data, GC and metadata.</summary>
    public long NandBytesProgrammed => NandPagesProgrammed * NandPageBytes;

    /// <summary>NAND bytes programmed per host byte written, everything counted.</summary>
    public double Waf => HostBytesWritten == 0 ? 0 : (double)NandBytesProgrammed / HostBytesWritten;

    /// <summary>As <see cref="Waf"/>, host and GC data only: the model's definition.</summary>
    public double WafData => HostBytesWritten == 0 ? 0 : (double)DataPagesProgrammed * NandPageBytes / HostBytesWritten;

    /// <summary>The model's write amplification at the FTL's spare factor.</summary>
    public double ModelWaf => WriteAmplificationModel.Greedy(SpareFactor);

    /// <summary>The model's write amplification at the spare factor raised by the trimmed space.</summary>
    public double ModelWafEffective => WriteAmplificationModel.Greedy(EffectiveSpareFactor);

    /// <summary>Host operations per second of wall time, in the measured phase.</summary>
    public double HostOpsPerWallSecond => WallSeconds <= 0 ? 0 : HostOps / WallSeconds;

    /// <summary>NAND page operations (reads and programs) per second of wall time, in the measured phase.</summary>
    public double NandPageOpsPerWallSecond =>
        WallSeconds <= 0 ? 0 : (NandPagesRead + NandPagesProgrammed) / WallSeconds;

    /// <summary>As <see cref="NandPageOpsPerWallSecond"/>, counted in 4 KiB pages (a 16 KiB page is four).</summary>
    public double Nand4KPageOpsPerWallSecond => NandPageOpsPerWallSecond * NandPageBytes / 4096.0;

    /// <summary>
    /// Why the run stopped early at the device's end of life (grown bad blocks used up the spare; not a violation), or
    /// null.
    /// </summary>
    public string? EndOfLife { get; init; }

    /// <summary>With <see cref="SimOptions.KeepTimeline"/>: the run's counters over time.</summary>
    public IReadOnlyList<SimSample> Timeline { get; init; } = [];

    /// <summary>With <see cref="SimOptions.KeepTimeline"/>: the virtual instants (seconds) the power was cut.</summary>
    public IReadOnlyList<double> CutSeconds { get; init; } = [];

    /// <summary>With <see cref="SimOptions.KeepTimeline"/>: the erase count of each good block at the end.</summary>
    public IReadOnlyList<uint> EraseCounts { get; init; } = [];

    /// <summary>
    /// With <see cref="SimOptions.KeepTimeline"/>: each operation's latency histogram in the measured phase (nanosecond
    /// bucket edges).
    /// </summary>
    public IReadOnlyList<(
        string Operation,
        IReadOnlyList<(long UpperEdge, long Count)> Buckets
    )> LatencyBuckets { get; init; } = [];

    /// <summary>
    /// Wall seconds the fill took (the preparation before the warm-up; all of it when there is none).
    /// </summary>
    public double FillWallSeconds { get; init; }

    /// <summary>Wall seconds the warm-up's random writes took, after the fill and before the measured phase.</summary>
    public double WarmupWallSeconds { get; init; }

    /// <summary>
    /// Seconds a plain loop took to copy <see cref="BytesCopied"/> (<see cref="MemcpyFloor"/>), or 0 when not measured.
    /// </summary>
    public double MemcpyFloorSeconds { get; init; }

    /// <summary>The measured phase's wall time over the memcpy floor, or 0 when not measured.</summary>
    public double WallOverMemcpyFloor => MemcpyFloorSeconds <= 0 ? 0 : WallSeconds / MemcpyFloorSeconds;

    /// <summary>
    /// With a crash plan: the NAND operations issued from its first command to the end of the script.
    /// </summary>
    internal long CrashNandOperations { get; init; }
}

/// <summary>Runs one seed: see <see cref="SimulationRun"/>.</summary>
public static class SimRunner
{
    /// <summary>The workloads <see cref="Run"/> knows.</summary>
    public static IReadOnlyList<string> Workloads => SimWorkload.Names;

    /// <summary>Runs one seed; <paramref name="trace"/>, when given, receives every event as a line.</summary>
    public static SimResult Run(ResolvedConfig config, SimOptions options, TextWriter? trace = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        using var run = new SimulationRun(config, options, trace);
        return run.Execute();
    }
}

/// <summary>
/// The counters of a run at one instant of virtual time, from its start (the fill included):
/// bytes the host wrote, bytes programmed on the NAND (everything) and by GC relocation, the
/// cache's sector hits and misses, and the DRAM its pages held.
/// </summary>
public readonly record struct SimSample(
    double Seconds,
    bool Measuring,
    long HostBytesWritten,
    long NandBytesProgrammed,
    long GcBytesWritten,
    long CacheHits,
    long CacheMisses,
    long DramHeldBytes
);

/// <summary>
/// Where a run is: <paramref name="Phase"/> (fill, warm-up, measure), <paramref name="Done"/> of its
/// <paramref name="Total"/> commands.
/// </summary>
public readonly record struct SimProgress(string Phase, long Done, long Total);

/// <summary>The latencies of one operation in the measured phase, in virtual microseconds.</summary>
/// <param name="Operation">read, write, trim, write-zeroes or flush.</param>
/// <param name="Count">Commands of it measured.</param>
/// <param name="Mean">The mean latency.</param>
/// <param name="P50">The median (each percentile within 3.2%, as the histogram keeps it).</param>
/// <param name="P99">The 99th percentile.</param>
/// <param name="P999">The 99.9th percentile.</param>
/// <param name="Max">The longest.</param>
public sealed record OperationLatency(
    string Operation,
    long Count,
    double Mean,
    double P50,
    double P99,
    double P999,
    double Max
);
