using System.Diagnostics;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>What a sim run is asked to do.</summary>
/// <param name="Seed">The one seed every random choice of the run comes from.</param>
/// <param name="Workload">The workload's name.</param>
/// <param name="MeasuredWrites">Random 4 KiB writes in the measured phase (0: twice the live sectors).</param>
/// <param name="WarmupWrites">Random writes before measuring, to reach steady state (-1: twice the live sectors).</param>
/// <param name="TrimFraction">Fraction of the logical space trimmed after the fill and never written again.</param>
/// <param name="HotFraction">For hot-cold: the fraction of the live space that is hot.</param>
/// <param name="HotTraffic">For hot-cold: the fraction of writes that go to the hot space.</param>
public sealed record SimOptions(ulong Seed, string Workload, long MeasuredWrites, long WarmupWrites, double TrimFraction, double HotFraction, double HotTraffic);

/// <summary>What the cache did in a run through the loop, for comparing trim policies.</summary>
/// <param name="Policy">The trim policy.</param>
/// <param name="MeanBytesHeld">DRAM the arena held allocated, averaged over commands.</param>
/// <param name="BytesMigrated">Bytes copied between frames by migration.</param>
/// <param name="BytesZeroed">Bytes zeroed in place by trims.</param>
/// <param name="HitRatio">Sectors read that were valid in the cache, over all sectors read.</param>
/// <param name="TrimLatencyMicroseconds">TRIM latency percentiles in virtual time.</param>
/// <param name="Statistics">Every counter of the cache.</param>
public sealed record CacheMetrics(string Policy, double MeanBytesHeld, long BytesMigrated, long BytesZeroed, double HitRatio, (double P50, double P99) TrimLatencyMicroseconds, Firmware.Cache.CacheStatistics Statistics);

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
    IReadOnlyList<string> Violations,
    CacheMetrics? Cache = null)
{
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
}

/// <summary>
/// One deterministic run: an emulated NAND in memory, the FTL mounted on it, a workload, all on
/// one virtual clock in one thread, every random choice drawn from one seed. The workload fills
/// the device sequentially, trims a fraction if asked, warms up with random writes until garbage
/// collection is in steady state, then measures a phase of random writes; at the end every sector
/// is read back and compared with what was last written to it.
/// </summary>
public static class SimRunner
{
    /// <summary>The workloads <see cref="Run"/> knows: the FTL's own, then those through the loop and cache.</summary>
    public static IReadOnlyList<string> Workloads { get; } = ["uniform-randwrite", "hot-cold", .. HostWorkload.Names];

    /// <summary>Runs one seed.</summary>
    public static SimResult Run(ResolvedConfig config, SimOptions options, TextWriter? progress = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        if (HostWorkload.Names.Contains(options.Workload))
        {
            return HostSimRunner.Run(config, options);
        }

        var seeds = new Prng(options.Seed);
        var clock = new VirtualClock();
        using EmulatedNand nand = EmulatedNand.InMemory(config, clock);
        var tracing = new TracingNand(nand);
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(tracing, clock, seeds.Fork(), FtlConfig.Options(config));
        Prng workload = seeds.Fork();
        var generations = new int[ftl.LogicalSectors];
        byte[] buffer = new byte[SectorStamp.Bytes];
        long trimmed = (long)(ftl.LogicalSectors * options.TrimFraction);
        long live = ftl.LogicalSectors - trimmed;
        for (long sector = 0; sector < ftl.LogicalSectors; sector++)
        {
            Write(ftl, generations, buffer, sector);
        }

        if (trimmed > 0)
        {
            ftl.Trim(0, trimmed);
            Array.Clear(generations, 0, (int)trimmed);
        }

        ftl.Flush();
        long warmup = options.WarmupWrites < 0 ? 2 * live : options.WarmupWrites;
        long measured = options.MeasuredWrites <= 0 ? 2 * live : options.MeasuredWrites;
        Func<long> pick = Picker(options, workload, trimmed, live);
        for (long i = 0; i < warmup; i++)
        {
            Write(ftl, generations, buffer, pick());
        }

        progress?.WriteLine($"seed {options.Seed}: filled {ftl.LogicalSectors} sectors, trimmed {trimmed}, warmed up with {warmup} writes; measuring {measured}");
        var before = (Nand: Snapshot(nand), Data: ftl.Statistics.DataPagesProgrammed);
        var latencies = new double[measured];
        var wall = Stopwatch.StartNew();
        for (long i = 0; i < measured; i++)
        {
            long start = clock.NowNanoseconds;
            Write(ftl, generations, buffer, pick());
            latencies[i] = (clock.NowNanoseconds - start) / 1e3;
        }

        ftl.Flush();
        wall.Stop();
        (long read, long programmed, long erased) after = Snapshot(nand);
        List<string> violations = Verify(ftl, generations, buffer);
        Array.Sort(latencies);
        return new SimResult(
            options,
            config,
            measured,
            measured * SectorStamp.Bytes,
            after.read - before.Nand.Read,
            after.programmed - before.Nand.Programmed,
            after.erased - before.Nand.Erased,
            nand.Geometry.PageBytes,
            ftl.Statistics.DataPagesProgrammed - before.Data,
            ftl.Capacity.SpareFactor,
            (double)(ftl.Capacity.PhysicalSectors - live) / ftl.Capacity.PhysicalSectors,
            tracing.Hash,
            wall.Elapsed.TotalSeconds,
            clock.NowNanoseconds / 1e9,
            (Percentile(latencies, 0.50), Percentile(latencies, 0.99), Percentile(latencies, 0.999)),
            ftl.Wear(),
            ftl.Statistics,
            violations);
    }

    private static Func<long> Picker(SimOptions options, Prng prng, long first, long live) => options.Workload switch
    {
        "uniform-randwrite" => () => first + (long)prng.NextUInt64((ulong)live),
        "hot-cold" => HotCold(prng, first, live, options.HotFraction, options.HotTraffic),
        _ => throw new ArgumentException($"unknown workload '{options.Workload}'; workloads are {string.Join(", ", Workloads)}", nameof(options)),
    };

    private static Func<long> HotCold(Prng prng, long first, long live, double hotFraction, double hotTraffic)
    {
        long hot = Math.Max(1, (long)(live * hotFraction));
        long cold = Math.Max(1, live - hot);
        return () => prng.NextDouble() < hotTraffic
            ? first + (long)prng.NextUInt64((ulong)hot)
            : first + hot + (long)prng.NextUInt64((ulong)cold);
    }

    private static void Write(FlashTranslationLayer ftl, int[] generations, byte[] buffer, long sector)
    {
        SectorStamp.Fill(buffer, sector, ++generations[sector]);
        ftl.Write(sector, buffer);
    }

    /// <summary>Without power cuts every sector must read back exactly as last written.</summary>
    private static List<string> Verify(FlashTranslationLayer ftl, int[] generations, byte[] buffer)
    {
        var violations = new List<string>();
        for (long sector = 0; sector < generations.Length; sector++)
        {
            FtlReadResult read = ftl.Read(sector, buffer);
            (bool intact, long owner, int generation) = SectorStamp.Decode(buffer);
            string? problem = !read.Ok ? "unreadable"
                : !intact ? "bit corruption"
                : generation != 0 && owner != sector ? $"flying write from sector {owner}"
                : generation != generations[sector] ? $"holds generation {generation}, last written {generations[sector]}"
                : null;
            if (problem is not null && violations.Count < 100)
            {
                violations.Add($"sector {sector}: {problem}");
            }
        }

        return violations;
    }

    private static (long Read, long Programmed, long Erased) Snapshot(EmulatedNand nand) =>
        (nand.Statistics.PagesRead, nand.Statistics.PagesProgrammed, nand.Statistics.BlocksErased);

    private static double Percentile(double[] sorted, double quantile) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(quantile * sorted.Length))];
}
