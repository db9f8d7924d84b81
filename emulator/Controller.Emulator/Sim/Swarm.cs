using System.Globalization;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>What the swarm drew for one seed.</summary>
/// <param name="Config">The resolved configuration.</param>
/// <param name="Profile">The profile the geometry came from.</param>
/// <param name="Overrides">The drawn <c>key=value</c> settings, in the order applied.</param>
/// <param name="Workload">The workload (drawn unless the command line fixed it).</param>
/// <param name="Parameters">The workload's knobs.</param>
public sealed record SwarmDraw(ResolvedConfig Config, string Profile, IReadOnlyList<string> Overrides, string Workload, WorkloadParameters Parameters)
{
    /// <summary>One line: the profile and every drawn setting.</summary>
    public string Describe() => $"profile={Profile} workload={Workload} idle={Parameters.IdleMicroseconds.ToString(CultureInfo.InvariantCulture)}us {string.Join(' ', Overrides)}";
}

/// <summary>
/// Swarm testing (Groce et al., ISSTA'12): each seed draws its own configuration within ranges,
/// so a campaign covers combinations no single configuration would: the geometry among the shipped
/// profiles (scaled down so a seed runs in well under a second), cache and large-page sizes, trim
/// and eviction policies, spare factor, GC policy, checkpoint interval, fault rates (bit errors,
/// program and erase failures that grow bad blocks, factory bad blocks), power-loss protection on
/// or off, and the workload. The draw depends on the seed alone, so <c>--swarm --seed N</c> replays it.
/// </summary>
public static class Swarm
{
    private static readonly string[] s_workloads = ["mixed", "fs", "db", "zipf", "sequential", "uniform-randwrite", "hot-cold", "sequential-trim"];

    /// <summary>
    /// Draws the configuration of <paramref name="seed"/>. <paramref name="load"/> resolves a profile
    /// with overrides; <paramref name="profile"/> (when given) fixes the profile and its geometry;
    /// <paramref name="overrides"/> (the command line's <c>--set</c>) are applied after the draw and win.
    /// </summary>
    public static SwarmDraw Draw(ulong seed, Func<string, IEnumerable<string>, ResolvedConfig> load, string? profile, IReadOnlyList<string> overrides, string? workload, WorkloadParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(overrides);
        ArgumentNullException.ThrowIfNull(parameters);
        var prng = new Prng(seed ^ 0x5357_4152_4D00_0000);
        string chosen = profile ?? Pick(prng, "tiny", "default", "w25n01gv");
        var drawn = new List<string>();
        if (profile is null)
        {
            drawn.AddRange(chosen switch
            {
                "tiny" => [$"nand.blocksPerDie={48 + prng.NextInt(49)}"],
                "default" => [$"nand.blocksPerDie={16 + prng.NextInt(17)}", $"nand.pagesPerBlock={Pick(prng, "16", "32")}"],
                _ => [$"nand.blocksPerDie={160 + prng.NextInt(161)}", $"nand.pagesPerBlock={Pick(prng, "32", "64")}"],
            });
        }

        long largePage = 16L << prng.NextInt(4);
        drawn.Add($"cache.largePageBytes={largePage}k");
        drawn.Add($"cache.bytes={largePage * (4 + prng.NextInt(29))}k");
        drawn.Add($"cache.trimPolicy={Pick(prng, "zero-fill", "split", "migrate", "evict")}");
        drawn.Add($"cache.eviction={Pick(prng, "clock", "lru")}");
        drawn.Add(string.Create(CultureInfo.InvariantCulture, $"ftl.spareFactor={0.07 + (prng.NextInt(29) / 100.0):0.00}"));
        drawn.Add($"ftl.gcPolicy={Pick(prng, "greedy", "cost-benefit")}");
        drawn.Add($"ftl.checkpointIntervalPages={16 << prng.NextInt(6)}");
        drawn.Add($"faults.seed={prng.NextInt(1 << 30)}");
        drawn.Add($"faults.rawBitErrorRate={Pick(prng, "0", "1e-7", "1e-6", "1e-5")}");
        drawn.Add($"faults.programFailProbability={Pick(prng, "0", "0", "1e-5", "1e-4")}");
        drawn.Add($"faults.eraseFailProbability={Pick(prng, "0", "0", "1e-4", "1e-3")}");
        drawn.Add($"faults.factoryBadBlockFraction={Pick(prng, "0", "0.01", "0.03")}");
        bool plp = prng.NextInt(3) == 0;
        drawn.Add($"power.plp={(plp ? "true" : "false")}");
        string chosenWorkload = workload ?? Pick(prng, s_workloads);
        double idle = parameters.IdleMicroseconds >= 0 ? parameters.IdleMicroseconds : double.Parse(Pick(prng, "0", "20", "200"), CultureInfo.InvariantCulture);
        WorkloadParameters drawnParameters = parameters with
        {
            IdleMicroseconds = idle,
            Warmup = parameters.Warmup >= 0 ? parameters.Warmup : 0,
        };

        // The cache must leave the device room: at most an eighth of it, and at least 4 large pages.
        ResolvedConfig config = load(chosen, [.. drawn, .. overrides]);
        long raw = config.Get(FirmwareConfig.Channels) * config.Get(FirmwareConfig.DiesPerChannel) * config.Get(FirmwareConfig.BlocksPerDie)
            * config.Get(FirmwareConfig.PagesPerBlock) * config.Get(FirmwareConfig.PageBytes);
        long cacheBytes = config.Get(CacheConfig.Bytes);
        long largePageBytes = config.Get(CacheConfig.LargePageBytes);
        if (cacheBytes > raw / 8 && !overrides.Any(o => o.StartsWith("cache.bytes=", StringComparison.Ordinal)))
        {
            long fitted = Math.Max(4, raw / 8 / largePageBytes) * largePageBytes;
            drawn[drawn.FindIndex(d => d.StartsWith("cache.bytes=", StringComparison.Ordinal))] = $"cache.bytes={fitted / 1024}k";
        }

        if (plp)
        {
            config = load(chosen, [.. drawn, .. overrides]);
            drawn.Add($"power.plpBudgetPages={CacheConfig.PlpPagesNeeded(config)}");
        }

        config = load(chosen, [.. drawn, .. overrides]);
        return new SwarmDraw(config, chosen, drawn, chosenWorkload, drawnParameters);
    }

    private static string Pick(Prng prng, params string[] choices) => choices[prng.NextInt(choices.Length)];
}
