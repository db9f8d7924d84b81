using System.Globalization;
using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>What the swarm drew for one seed.</summary>
/// <param name="Config">The resolved configuration.</param>
/// <param name="Profile">The profile the geometry came from.</param>
/// <param name="Overrides">The drawn <c>key=value</c> settings, in the order applied.</param>
/// <param name="Workload">The workload (drawn unless the command line fixed it).</param>
/// <param name="Parameters">The workload's knobs.</param>
public sealed record SwarmDraw(
    ResolvedConfig Config,
    string Profile,
    IReadOnlyList<string> Overrides,
    string Workload,
    WorkloadParameters Parameters
)
{
    /// <summary>One line: the profile and every drawn setting.</summary>
    public string Describe() =>
        $"profile={Profile} workload={Workload} idle={Parameters.IdleMicroseconds.ToString(CultureInfo.InvariantCulture)}us queueDepth={Parameters.QueueDepth} {string.Join(' ', Overrides)}";
}

/// <summary>
/// Swarm testing (Groce et al., ISSTA'12): each seed draws its own configuration within ranges,
/// so a campaign covers combinations no single configuration would: the geometry among the shipped
/// profiles (scaled down so a seed runs in well under a second), cache and large-page sizes, trim
/// and eviction policies, spare factor, GC policy, checkpoint interval, fault rates (bit errors,
/// program and erase failures that grow bad blocks, factory bad blocks), power-loss protection on
/// or off, the workload, the host's idle time and its queue depth. The draw depends on the seed alone, so <c>--swarm
/// --seed N</c> replays it.
/// </summary>
public static class Swarm
{
    private static readonly string[] s_workloads =
    [
        "mixed",
        "fs",
        "db",
        "zipf",
        "sequential",
        "uniform-randwrite",
        "hot-cold",
        "sequential-trim",
    ];

    /// <summary>
    /// Draws the configuration of <paramref name="seed"/>. <paramref name="load"/> resolves a profile
    /// with overrides; <paramref name="profile"/> (when given) fixes the profile and its geometry;
    /// <paramref name="overrides"/> (the command line's <c>--set</c>) are applied after the draw and win.
    /// </summary>
    public static SwarmDraw Draw(
        ulong seed,
        Func<string, IEnumerable<string>, ResolvedConfig> load,
        string? profile,
        IReadOnlyList<string> overrides,
        string? workload,
        WorkloadParameters parameters
    )
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(overrides);
        ArgumentNullException.ThrowIfNull(parameters);
        var prng = new Prng(seed ^ 0x5357_4152_4D00_0000);
        string chosen = profile ?? Pick(prng, "tiny", "default", "w25n01gv");
        var drawn = new List<string>();
        if (profile is null)
        {
            drawn.AddRange(
                chosen switch
                {
                    "tiny" => [$"nand.blocksPerDie={48 + prng.NextInt(49)}"],
                    "default" =>
                    [
                        $"nand.blocksPerDie={16 + prng.NextInt(17)}",
                        $"nand.pagesPerBlock={Pick(prng, "16", "32")}",
                    ],
                    _ =>
                    [
                        $"nand.blocksPerDie={160 + prng.NextInt(161)}",
                        $"nand.pagesPerBlock={Pick(prng, "32", "64")}",
                    ],
                }
            );
        }

        long largePage = 16L << prng.NextInt(4);
        drawn.Add($"cache.largePageBytes={largePage}k");
        drawn.Add($"cache.bytes={largePage * (4 + prng.NextInt(29))}k");
        drawn.Add($"cache.trimPolicy={Pick(prng, "zero-fill", "split", "migrate", "evict")}");
        drawn.Add($"cache.eviction={Pick(prng, "clock", "lru")}");
        drawn.Add("cache.checkInvariants=true");
        drawn.Add(
            string.Create(CultureInfo.InvariantCulture, $"ftl.spareFactor={0.07 + (prng.NextInt(29) / 100.0):0.00}")
        );
        drawn.Add($"ftl.gcPolicy={Pick(prng, "greedy", "cost-benefit")}");
        drawn.Add($"ftl.checkpointIntervalPages={16 << prng.NextInt(6)}");
        drawn.Add($"faults.seed={prng.NextInt(1 << 30)}");
        drawn.Add($"faults.rawBitErrorRate={Pick(prng, "0", "1e-7", "1e-6", "1e-5")}");
        drawn.Add($"faults.programFailProbability={Pick(prng, "0", "0", "1e-6", "1e-5")}");
        drawn.Add($"faults.eraseFailProbability={Pick(prng, "0", "0", "1e-4", "1e-3")}");
        drawn.Add($"faults.factoryBadBlockFraction={Pick(prng, "0", "0.01", "0.03")}");
        bool plp = prng.NextInt(3) == 0;
        drawn.Add("power.plp=false");
        string chosenWorkload = workload ?? Pick(prng, s_workloads);
        double idle =
            parameters.IdleMicroseconds >= 0
                ? parameters.IdleMicroseconds
                : double.Parse(Pick(prng, "0", "20", "200"), CultureInfo.InvariantCulture);
        int queueDepth =
            parameters.QueueDepth > 0
                ? parameters.QueueDepth
                : int.Parse(Pick(prng, "1", "1", "2", "4", "8", "32"), CultureInfo.InvariantCulture);
        WorkloadParameters drawnParameters = parameters with
        {
            IdleMicroseconds = idle,
            Warmup = parameters.Warmup >= 0 ? parameters.Warmup : 0,
            QueueDepth = queueDepth,
        };

        // A small array with many dies needs more spare than the draw may give: raise it until the
        // FTL accepts the geometry.
        ResolvedConfig config = LoadRaisingSpare(load, chosen, drawn, overrides);

        // The cache must leave the device room: at most an eighth of it, and at least 4 large pages.
        int rberIndex = drawn.FindIndex(d => d.StartsWith("faults.rawBitErrorRate=", StringComparison.Ordinal));
        double rber = double.Parse(drawn[rberIndex]["faults.rawBitErrorRate=".Length..], CultureInfo.InvariantCulture);
        drawn[rberIndex] = string.Create(
            CultureInfo.InvariantCulture,
            $"faults.rawBitErrorRate={Math.Min(rber, RatedBitErrorRate(config)):G3}"
        );
        long raw =
            config.Get(FirmwareConfig.Channels)
            * config.Get(FirmwareConfig.DiesPerChannel)
            * config.Get(FirmwareConfig.BlocksPerDie)
            * config.Get(FirmwareConfig.PagesPerBlock)
            * config.Get(FirmwareConfig.PageBytes);
        long cacheBytes = config.Get(CacheConfig.Bytes);
        long largePageBytes = config.Get(CacheConfig.LargePageBytes);
        if (cacheBytes > raw / 8 && !overrides.Any(o => o.StartsWith("cache.bytes=", StringComparison.Ordinal)))
        {
            long fitted = Math.Max(4, raw / 8 / largePageBytes) * largePageBytes;
            drawn[drawn.FindIndex(d => d.StartsWith("cache.bytes=", StringComparison.Ordinal))] =
                $"cache.bytes={fitted / 1024}k";
        }

        // Power-loss protection holds free blocks back for its save; halve the cache until the spare
        // can afford them, or go without.
        for (int attempt = 0; plp && attempt < 8; attempt++)
        {
            config = load(chosen, [.. drawn, .. overrides]);
            var withPlp = new List<string>(drawn) { $"power.plpBudgetPages={CacheConfig.PlpPagesNeeded(config)}" };
            withPlp[withPlp.IndexOf("power.plp=false")] = "power.plp=true";
            try
            {
                if (FormatProblem(load(chosen, [.. withPlp, .. overrides])) is { } problem)
                {
                    throw new ConfigException(problem);
                }

                drawn = withPlp;
                break;
            }
            catch (ConfigException)
            {
                int index = drawn.FindIndex(d => d.StartsWith("cache.bytes=", StringComparison.Ordinal));
                long bytes = config.Get(CacheConfig.Bytes) / largePageBytes / 2 * largePageBytes;
                if (
                    bytes < 4 * largePageBytes
                    || overrides.Any(o => o.StartsWith("cache.bytes=", StringComparison.Ordinal))
                )
                {
                    break;
                }

                drawn[index] = $"cache.bytes={bytes / 1024}k";
            }
        }

        config = load(chosen, [.. drawn, .. overrides]);
        return new SwarmDraw(config, chosen, drawn, chosenWorkload, drawnParameters);
    }

    private static ResolvedConfig LoadRaisingSpare(
        Func<string, IEnumerable<string>, ResolvedConfig> load,
        string profile,
        List<string> drawn,
        IReadOnlyList<string> overrides
    )
    {
        int index = drawn.FindIndex(d => d.StartsWith("ftl.spareFactor=", StringComparison.Ordinal));
        while (true)
        {
            string why;
            try
            {
                ResolvedConfig config = load(profile, [.. drawn, .. overrides]);
                if (FormatProblem(config) is not { } problem)
                {
                    return config;
                }

                why = problem;
            }
            catch (ConfigException e) when (index >= 0)
            {
                why = e.Message;
            }

            double spare =
                index < 0
                    ? 1
                    : double.Parse(drawn[index]["ftl.spareFactor=".Length..], CultureInfo.InvariantCulture) + 0.03;
            if (spare > 0.5)
            {
                throw new ConfigException(
                    $"the swarm's draw for profile {profile} cannot format at any spare factor up to 0.5: {why}"
                );
            }

            drawn[index] = string.Create(CultureInfo.InvariantCulture, $"ftl.spareFactor={spare:0.00}");
        }
    }

    /// <summary>
    /// Why the FTL would refuse to format the drawn device once its factory bad blocks (and, with
    /// power-loss protection, the blocks held back for the save) are out of the spare, or null.
    /// The configuration's own check counts every block good; the bad ones (each block with the
    /// drawn probability) are allowed for up to four standard deviations above their mean, so a
    /// draw formats whatever the fault seed marks.
    /// </summary>
    private static string? FormatProblem(ResolvedConfig config)
    {
        NandGeometry geometry = FirmwareConfig.Geometry(config);
        double fraction = config.Get(EmulatorConfig.FactoryBadBlockFraction);
        double mean = fraction * geometry.Blocks;
        int good = geometry.Blocks - (int)Math.Ceiling(mean + (4 * Math.Sqrt(mean)));
        var layout = new FtlLayout(geometry);
        return FtlCapacity
            .Count(layout, good, config.Get(FtlConfig.SpareFactor))
            .Problem(layout, FtlConfig.HoldUpReserveBlocks(config));
    }

    /// <summary>
    /// The highest raw bit error rate at which the part's ECC leaves a codeword uncorrectable less
    /// than once in 10^13 reads (Poisson: P(X > t) ~ lambda^(t+1) / (t+1)!). Beyond it, data loss
    /// is the physics of the part, not a firmware fault: a 1-bit-per-512-byte SLC part is rated
    /// for about 1e-10, a 40-bit-per-KiB part for far more than the swarm draws.
    /// </summary>
    public static double RatedBitErrorRate(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int t = (int)config.Get(FirmwareConfig.EccCorrectableBits);
        double bits = config.Get(FirmwareConfig.EccCodewordBytes) * 8.0;
        double factorial = 1;
        for (int i = 2; i <= t + 1; i++)
        {
            factorial *= i;
        }

        return Math.Pow(1e-13 * factorial, 1.0 / (t + 1)) / bits;
    }

    private static string Pick(Prng prng, params string[] choices) => choices[prng.NextInt(choices.Length)];
}
