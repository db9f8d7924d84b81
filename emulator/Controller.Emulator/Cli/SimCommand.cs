using System.Globalization;
using System.Text.Json;
using Controller.Emulator.Sim;
using Controller.Firmware.Config;

namespace Controller.Emulator.Cli;

/// <summary><c>ssd-emulator sim</c>: deterministic runs of the firmware on the emulated NAND, one per seed.</summary>
internal static class SimCommand
{
    public const string Help = """
        Usage: ssd-emulator sim [--config FILE|NAME] [--set KEY=VALUE]... [--seed N | --seeds A..B]
                                [--workload NAME] [--ops N] [--warmup N] [--trim-fraction F]
                                [--hot-fraction F] [--hot-traffic F] [--json FILE]

        Runs the FTL on the emulated NAND in memory, headless and deterministic: one seed gives
        one execution (the trace hash proves it). The device is filled sequentially, a fraction
        trimmed if asked, warmed up with random 4 KiB writes until garbage collection is steady,
        then a measured phase of random writes; finally every sector is read back and checked.
        Prints one line per seed; exits 0 only if every sector read back as written.

          --seed N             one seed (default 1)
          --seeds A..B         every seed from A to B
          --workload NAME      uniform-randwrite (default) or hot-cold (the FTL alone), or
                               db, fs, sequential-trim (host commands through the loop and cache)
          --ops N              random writes measured (default: twice the live sectors);
                               for db, fs and sequential-trim, host commands (default 20000)
          --warmup N           random writes before measuring (default: twice the live sectors)
          --trim-fraction F    trim this fraction of the space after the fill; it is never written again
          --hot-fraction F     hot-cold: fraction of the space that is hot (default 0.2)
          --hot-traffic F      hot-cold: fraction of writes to the hot space (default 0.8)
          --json FILE          write {"runs":[...]} with every figure of each run

        Example: ssd-emulator sim --workload uniform-randwrite --set ftl.spareFactor=0.07 --json waf.json
        """;

    public static int Run(Arguments args, TextWriter output)
    {
        ResolvedConfig config = Profiles.Load(args.Single("--config"), args.All("--set"));
        (ulong first, ulong last) = Seeds(args);
        string workload = args.Single("--workload") ?? "uniform-randwrite";
        if (!SimRunner.Workloads.Contains(workload))
        {
            throw new UsageException($"--workload: unknown workload '{workload}'; workloads are {string.Join(", ", SimRunner.Workloads)}");
        }

        var results = new List<SimResult>();
        for (ulong seed = first; seed <= last; seed++)
        {
            var options = new SimOptions(
                seed,
                workload,
                args.Integer("--ops", 0, 0, long.MaxValue),
                args.Integer("--warmup", -1, -1, long.MaxValue),
                Fraction(args, "--trim-fraction", 0, 0.9),
                Fraction(args, "--hot-fraction", 0.2, 0.99),
                Fraction(args, "--hot-traffic", 0.8, 1));
            SimResult result = SimRunner.Run(config, options, Console.Error);
            results.Add(result);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed={seed} workload={workload} ops={result.HostOps} waf={result.Waf:0.000} trace-hash={result.TraceHash:x16} ops/s={result.HostOpsPerWallSecond:0} violations={result.Violations.Count}"));
            if (result.Cache is { } cache)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  trimPolicy={cache.Policy} dramHeld={cache.MeanBytesHeld / 1048576:0.0}MiB migrated={cache.BytesMigrated} zeroed={cache.BytesZeroed} hitRatio={cache.HitRatio:0.000} trimP50={cache.TrimLatencyMicroseconds.P50:0.0}us trimP99={cache.TrimLatencyMicroseconds.P99:0.0}us nandRead={result.NandPagesRead} nandProgrammed={result.NandPagesProgrammed}"));
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  wafData={result.WafData:0.000} spareFactor={result.SpareFactor:0.0000} modelWaf={result.ModelWaf:0.000} effectiveSpareFactor={result.EffectiveSpareFactor:0.0000} modelWafEffective={result.ModelWafEffective:0.000} wear={result.Wear.MinErases}/{result.Wear.MeanErases:0.0}/{result.Wear.MaxErases}"));
            foreach (string violation in result.Violations.Take(5))
            {
                output.WriteLine($"  violation: {violation} (replay: ssd-emulator sim --seed {seed} --workload {workload})");
            }
        }

        if (args.Single("--json") is { } path)
        {
            SimReport.Write(path, results);
        }

        return results.All(r => r.Violations.Count == 0) ? 0 : 1;
    }

    private static (ulong First, ulong Last) Seeds(Arguments args)
    {
        string? range = args.Single("--seeds");
        if (range is null)
        {
            ulong seed = (ulong)args.Integer("--seed", 1, 0, long.MaxValue);
            return (seed, seed);
        }

        if (args.Single("--seed") is not null)
        {
            throw new UsageException("give --seed or --seeds, not both");
        }

        string[] parts = range.Split("..");
        if (parts.Length != 2
            || !ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong first)
            || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong last)
            || last < first)
        {
            throw new UsageException($"--seeds: '{range}' is not A..B with A <= B, e.g. 1..100");
        }

        return (first, last);
    }

    private static double Fraction(Arguments args, string name, double defaultValue, double max)
    {
        string? text = args.Single(name);
        if (text is null)
        {
            return defaultValue;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < 0 || value > max)
        {
            throw new UsageException($"{name}: '{text}' is not a number from 0 to {max.ToString(CultureInfo.InvariantCulture)}");
        }

        return value;
    }
}

/// <summary>The <c>--json</c> report: <c>{"runs":[RUN,...]}</c> with the fields of DESIGN.md section 6.</summary>
internal static class SimReport
{
    public static void Write(string path, IReadOnlyList<SimResult> results)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartArray("runs");
        foreach (SimResult run in results)
        {
            WriteRun(json, run);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteRun(Utf8JsonWriter json, SimResult run)
    {
        json.WriteStartObject();
        json.WriteNumber("seed", run.Options.Seed);
        json.WriteString("workload", run.Options.Workload);
        json.WritePropertyName("config");
        run.Config.WriteJson(json);
        json.WriteNumber("hostOps", run.HostOps);
        json.WriteNumber("hostBytesWritten", run.HostBytesWritten);
        json.WriteNumber("nandPagesRead", run.NandPagesRead);
        json.WriteNumber("nandPagesProgrammed", run.NandPagesProgrammed);
        json.WriteNumber("nandBlocksErased", run.NandBlocksErased);
        json.WriteNumber("nandPageBytes", run.NandPageBytes);
        json.WriteNumber("nandBytesProgrammed", run.NandBytesProgrammed);
        json.WriteNumber("waf", run.Waf);
        json.WriteNumber("wafData", run.WafData);
        json.WriteNumber("spareFactor", run.SpareFactor);
        json.WriteNumber("modelWaf", run.ModelWaf);
        json.WriteNumber("trimFraction", run.Options.TrimFraction);
        json.WriteNumber("effectiveSpareFactor", run.EffectiveSpareFactor);
        json.WriteNumber("modelWafEffective", run.ModelWafEffective);
        json.WriteNumber("powerCuts", 0);
        json.WriteStartArray("violations");
        foreach (string violation in run.Violations)
        {
            json.WriteStringValue(violation);
        }

        json.WriteEndArray();
        json.WriteString("traceHash", run.TraceHash.ToString("x16", CultureInfo.InvariantCulture));
        json.WriteNumber("wallSeconds", run.WallSeconds);
        json.WriteNumber("hostOpsPerWallSecond", run.HostOpsPerWallSecond);
        json.WriteNumber("virtualSeconds", run.VirtualSeconds);
        json.WriteStartObject("latencyMicroseconds");
        json.WriteNumber("p50", run.LatencyMicroseconds.P50);
        json.WriteNumber("p99", run.LatencyMicroseconds.P99);
        json.WriteNumber("p999", run.LatencyMicroseconds.P999);
        json.WriteEndObject();
        json.WriteStartObject("wear");
        json.WriteNumber("minErases", run.Wear.MinErases);
        json.WriteNumber("meanErases", run.Wear.MeanErases);
        json.WriteNumber("maxErases", run.Wear.MaxErases);
        json.WriteNumber("badBlocks", run.Wear.BadBlocks);
        json.WriteEndObject();
        if (run.Cache is { } cache)
        {
            json.WriteStartObject("cache");
            json.WriteString("trimPolicy", cache.Policy);
            json.WriteNumber("meanBytesHeld", cache.MeanBytesHeld);
            json.WriteNumber("bytesMigrated", cache.BytesMigrated);
            json.WriteNumber("bytesZeroed", cache.BytesZeroed);
            json.WriteNumber("hitRatio", cache.HitRatio);
            json.WriteNumber("trimLatencyP50Microseconds", cache.TrimLatencyMicroseconds.P50);
            json.WriteNumber("trimLatencyP99Microseconds", cache.TrimLatencyMicroseconds.P99);
            json.WriteNumber("sectorsFilled", cache.Statistics.SectorsFilled);
            json.WriteNumber("sectorsWrittenBack", cache.Statistics.SectorsWrittenBack);
            json.WriteNumber("evictions", cache.Statistics.Evictions);
            json.WriteNumber("partialPagePunches", cache.Statistics.PartialPagePunches);
            json.WriteNumber("splitFallbacks", cache.Statistics.SplitFallbacks);
            json.WriteNumber("migrateFallbacks", cache.Statistics.MigrateFallbacks);
            json.WriteNumber("largeFrameFallbacks", cache.Statistics.LargeFrameFallbacks);
            json.WriteEndObject();
        }

        json.WriteStartObject("ftl");
        json.WriteNumber("gcVictims", run.Ftl.GcVictims);
        json.WriteNumber("sectorsRelocated", run.Ftl.SectorsRelocated);
        json.WriteNumber("checkpoints", run.Ftl.Checkpoints);
        json.WriteNumber("wearLevelingMoves", run.Ftl.WearLevelingMoves);
        json.WriteNumber("hostUnitsProgrammed", run.Ftl.HostUnitsProgrammed);
        json.WriteNumber("coldUnitsProgrammed", run.Ftl.ColdUnitsProgrammed);
        json.WriteNumber("hostSectorsWritten", run.Ftl.HostSectorsWritten);
        json.WriteNumber("foregroundGcVictims", run.Ftl.ForegroundGcVictims);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
