using System.Text.Json;
using System.Text.RegularExpressions;
using Controller.Common;
using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Config;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

[Trait("Category", "Process")]
public sealed partial class SimTests
{
    /// <summary>
    /// GC released a victim on a command's timeline after its relocated copies were complete there,
    /// and a command in flight on an earlier timeline then erased it for reuse before those copies
    /// were complete on the device's clock; a cut in between lost the sectors. A freed block now
    /// carries the instant it was freed, and whoever takes it waits for that instant. Found by the
    /// swarm at queue depth 4 (seed 757); its configuration is spelled out here.
    /// </summary>
    [Fact]
    public void ABlockFreedOnOneTimelineIsNotErasedEarlierOnAnother()
    {
        RunsClean(
            "default",
            [
                "nand.blocksPerDie=26",
                "nand.pagesPerBlock=16",
                "cache.largePageBytes=16k",
                "cache.bytes=96k",
                "cache.trimPolicy=evict",
                "cache.eviction=clock",
                "cache.checkInvariants=true",
                "ftl.spareFactor=0.14",
                "ftl.gcPolicy=greedy",
                "ftl.checkpointIntervalPages=128",
                "faults.seed=76981534",
                "faults.rawBitErrorRate=1E-05",
                "faults.programFailProbability=0",
                "faults.eraseFailProbability=1e-4",
                "faults.factoryBadBlockFraction=0",
                "power.plp=false",
            ],
            new SimOptions(
                757,
                "hot-cold",
                new WorkloadParameters
                {
                    Ops = 1500,
                    Warmup = 0,
                    IdleMicroseconds = 0,
                    QueueDepth = 4,
                },
                PowerCuts: 8
            )
        );
    }

    /// <summary>
    /// A trim let GC erase the block holding a sector's durable copy before the trim's journal
    /// record was durable; a cut then brought back an older copy from another block (a lost
    /// durable write). Found by the 2000-seed swarm at queue depth 32 (seed 1225); its drawn
    /// configuration is spelled out here so that the run stays the same when the swarm changes.
    /// </summary>
    [Fact]
    public void GcKeepsADurableCopyUntilTheTrimThatUnlinkedItIsDurable()
    {
        RunsClean(
            "tiny",
            [
                "nand.blocksPerDie=48",
                "cache.largePageBytes=64k",
                "cache.bytes=768k",
                "cache.trimPolicy=split",
                "cache.eviction=clock",
                "cache.checkInvariants=true",
                "ftl.spareFactor=0.13",
                "ftl.gcPolicy=greedy",
                "ftl.checkpointIntervalPages=512",
                "faults.seed=131763099",
                "faults.rawBitErrorRate=1E-07",
                "faults.programFailProbability=0",
                "faults.eraseFailProbability=1e-4",
                "faults.factoryBadBlockFraction=0",
                "power.plp=false",
            ],
            new SimOptions(
                1225,
                "fs",
                new WorkloadParameters
                {
                    Ops = 1500,
                    Warmup = 0,
                    IdleMicroseconds = 200,
                    QueueDepth = 32,
                },
                PowerCuts: 8
            )
        );
    }

    /// <summary>Runs a pinned configuration: no violation, and every planned cut struck.</summary>
    private static void RunsClean(string profile, string[] overrides, SimOptions options)
    {
        SimResult result = SimRunner.Run(Profiles.Load(profile, overrides), options);

        Assert.True(
            result.Violations.Count == 0,
            result.Violations.Count > 0 ? $"{result.Violations[0]}\n  history: {result.Violations[0].History}" : null
        );
        Assert.True(result.PowerCuts.Total >= options.PowerCuts, $"{result.PowerCuts.Total} cuts");
    }

    [Fact]
    public void OneSeedGivesOneTraceHashInSeparateProcesses()
    {
        string first = TraceHash(EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "7", "--ops", "3000"));
        string second = TraceHash(EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "7", "--ops", "3000"));
        string other = TraceHash(EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "8", "--ops", "3000"));

        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void TheCachesCountersCoverTheWholeRunAcrossPowerCuts()
    {
        // Each boot makes a new cache whose counters start at zero; the run adds them up. The
        // cache counted every sector the host wrote, so its total is the run's written bytes
        // (plus what the writes cut in flight had put in the cache), not only the last boot's.
        ResolvedConfig config = Profiles.Load("tiny", []);
        SimResult result = SimRunner.Run(
            config,
            new SimOptions(3, "sequential", new WorkloadParameters { Ops = 1200, BlockBytes = 64 * 1024 }, PowerCuts: 4)
        );

        Assert.True(result.PowerCuts.Total >= 3, $"{result.PowerCuts.Total} cuts");
        Assert.Empty(result.Violations);
        Assert.InRange(
            result.Cache!.Statistics.SectorsWritten * 4096,
            result.HostBytesWritten,
            result.HostBytesWritten + (result.PowerCuts.Total * 64L * 1024)
        );
    }

    [Fact]
    public void ASwarmSeedWithPowerCutsReplaysExactlyInAnotherProcess()
    {
        string[] args = ["sim", "--swarm", "--seed", "20", "--power-cuts", "6", "--ops", "1500"];
        var first = EmulatorProcess.Run(args);
        var second = EmulatorProcess.Run(args);

        Assert.Equal(TraceHash(first), TraceHash(second));
        Assert.Matches(@"drew: profile=\S+ workload=\S+ idle=\d+us queueDepth=\d+ nand\.", first.Output);
        Assert.Matches(@"power-cuts=[1-9]", first.Output);
        // Everything but the wall-clock rates is the same, line for line.
        Assert.Equal(
            WallClockRates().Replace(first.Output, string.Empty),
            WallClockRates().Replace(second.Output, string.Empty)
        );
    }

    [Fact]
    public void TheTraceFileTellsEveryEventAndHashesToTheSummary()
    {
        using var temp = new TempDirectory();
        string path = temp.File("seed.trace");

        var run = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--seed",
            "3",
            "--ops",
            "500",
            "--power-cuts",
            "2",
            "--trace",
            path
        );
        string hash = TraceHash(run);
        string[] all = File.ReadAllLines(path);
        string[] lines = all[1..];

        // The first line names the columns; the output says where the trace went and its size.
        Assert.Equal(Controller.Hosting.ExecutionTrace.Header, all[0]);
        Assert.Contains(
            $"  trace: {path}, {Controller.Common.ByteUnits.Binary(new FileInfo(path).Length)}",
            run.Output,
            StringComparison.Ordinal
        );
        Assert.Contains(lines, l => l.Contains("program", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("erase", StringComparison.Ordinal));
        Assert.Contains(lines, l =>
            l.Contains("host submit op", StringComparison.Ordinal) && l.Contains("Write", StringComparison.Ordinal)
        );
        Assert.Contains(lines, l => l.Contains("host complete op", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("power cut", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("mount", StringComparison.Ordinal));
        Assert.Equal(
            hash,
            TraceHash(
                EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "3", "--ops", "500", "--power-cuts", "2")
            )
        );
    }

    [Fact]
    public void TheJsonReportCarriesEveryFieldOfTheDesign()
    {
        using var temp = new TempDirectory();
        string path = temp.File("report.json");

        var (exitCode, output, error) = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--seeds",
            "1..2",
            "--ops",
            "2000",
            "--memcpy-floor",
            "--json",
            path
        );

        Assert.True(exitCode == 0, output + error);
        using JsonDocument report = JsonDocument.Parse(File.ReadAllText(path));
        JsonElement[] runs = [.. report.RootElement.GetProperty("runs").EnumerateArray()];
        Assert.Equal(2, runs.Length);
        string[] fields =
        [
            "seed",
            "workload",
            "config",
            "hostOps",
            "hostBytesWritten",
            "nandPagesRead",
            "nandPagesProgrammed",
            "nandBlocksErased",
            "nandPageBytes",
            "nandBytesProgrammed",
            "waf",
            "wafData",
            "spareFactor",
            "modelWaf",
            "powerCuts",
            "violations",
            "traceHash",
            "wallSeconds",
            "hostOpsPerWallSecond",
            "virtualSeconds",
            "latencyMicroseconds",
            "bytesCopied",
            "nandPageOpsPerWallSecond",
            "memcpyFloorSeconds",
        ];
        foreach (JsonElement run in runs)
        {
            Assert.All(fields, field => Assert.True(run.TryGetProperty(field, out _), $"the run has no {field}"));
            Assert.Equal(
                run.GetProperty("nandBytesProgrammed").GetDouble() / run.GetProperty("hostBytesWritten").GetDouble(),
                run.GetProperty("waf").GetDouble(),
                9
            );
            Assert.Equal(
                WriteAmplificationModel.Greedy(run.GetProperty("spareFactor").GetDouble()),
                run.GetProperty("modelWaf").GetDouble(),
                9
            );
            Assert.Equal(0, run.GetProperty("violations").GetArrayLength());
            Assert.Equal(2000, run.GetProperty("hostOps").GetInt64());
            Assert.True(run.GetProperty("memcpyFloorSeconds").GetDouble() > 0, "--memcpy-floor measures the floor");
            Assert.Equal(
                run.GetProperty("wallSeconds").GetDouble() / run.GetProperty("memcpyFloorSeconds").GetDouble(),
                run.GetProperty("wallOverMemcpyFloor").GetDouble(),
                9
            );
            Assert.True(
                run.GetProperty("latencyMicroseconds").GetProperty("p999").GetDouble()
                    >= run.GetProperty("latencyMicroseconds").GetProperty("p50").GetDouble()
            );
        }

        Assert.Equal([1, 2], runs.Select(r => r.GetProperty("seed").GetInt32()));
        Assert.Matches(SummaryLine(), output);
    }

    [Theory]
    [InlineData(0.07, 7.32)]
    [InlineData(0.10, 5.18)]
    [InlineData(0.15, 3.52)]
    [InlineData(0.20, 2.69)]
    [InlineData(0.28, 1.99)]
    [InlineData(0.50, 1.26)]
    public void TheModelGivesTheDesignsTable(double spareFactor, double writeAmplification)
    {
        Assert.Equal(writeAmplification, WriteAmplificationModel.Greedy(spareFactor), 2);
    }

    [Fact]
    public void GreedyWriteAmplificationTracksTheModelAndFallsWhenSpaceIsTrimmed()
    {
        // A quarter of the default device on two dies: 256 blocks of 256 sectors. The full-size figures,
        // within 10% of the model, are in docs/PERFORMANCE.md; this keeps CI honest about them.
        // The cache is kept small (1 MiB) so that it absorbs almost no overwrites: the model is the FTL's.
        ResolvedConfig config = ConfigLoader.Load(
            EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "emulated", "default.json"),
            [
                "nand.channels=1",
                "nand.diesPerChannel=2",
                "nand.blocksPerDie=128",
                "ftl.spareFactor=0.10",
                "faults.factoryBadBlockFraction=0",
                "cache.bytes=1M",
            ]
        );

        SimResult uniform = SimRunner.Run(config, new SimOptions(1, "uniform-randwrite", new WorkloadParameters()));
        SimResult trimmed = SimRunner.Run(
            config,
            new SimOptions(1, "uniform-randwrite", new WorkloadParameters { TrimFraction = 0.25 })
        );

        Assert.Empty(uniform.Violations);
        Assert.Empty(trimmed.Violations);
        Assert.InRange(uniform.WafData, uniform.ModelWaf * 0.9, uniform.ModelWaf * 1.15);
        Assert.True(
            trimmed.WafData < uniform.WafData * 0.6,
            $"trimming a quarter of the space: WAF {trimmed.WafData:0.00}, untrimmed {uniform.WafData:0.00}"
        );
        Assert.InRange(trimmed.WafData, trimmed.ModelWafEffective * 0.9, trimmed.ModelWafEffective * 1.15);
    }

    [Fact]
    public void TheReadBackCheckCatchesDataTheNandCouldNotKeep()
    {
        // The canary of the sim's oracle: a NAND whose ECC corrects nothing at a high bit error
        // rate loses data, and the run must say so and fail. The cache is small so that the data
        // goes to the NAND and is read back from it; the FTL loses sectors it cannot relocate, so
        // the check finds zeros where durable data was.
        var (exitCode, output, _) = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--ops",
            "1000",
            "--set",
            "cache.bytes=256K",
            "--set",
            "faults.rawBitErrorRate=1e-4",
            "--set",
            "nand.eccCorrectableBits=0"
        );

        Assert.Equal(1, exitCode);
        Assert.Matches(@"violations=[1-9]", output);
        Assert.Matches(
            @"media: the NAND could not return \d+ host reads intact, and [1-9]\d* sectors were unreadable when relocated",
            output
        );
        Assert.Contains("VIOLATION lost-durable-write at sector", output, StringComparison.Ordinal);
        Assert.Contains("replay: ssd-emulator sim --seed 1", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ASeedWhoseDeviceCannotFormatFailsWithoutStoppingTheCampaign()
    {
        // Half the blocks factory-bad leaves too little spare for the open blocks and GC: the
        // firmware refuses to format, which is that seed's dead device, and the next seed runs.
        var (exitCode, output, _) = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--seeds",
            "1..2",
            "--ops",
            "50",
            "--set",
            "faults.factoryBadBlockFraction=0.5",
            "--set",
            "ftl.spareFactor=0.12"
        );

        Assert.Equal(1, exitCode);
        Assert.Contains(
            "seed=1 workload=uniform-randwrite FAILED dead-device: the firmware did not come up on a fresh array",
            output,
            StringComparison.Ordinal
        );
        Assert.Contains("seed=2 workload=uniform-randwrite FAILED dead-device", output, StringComparison.Ordinal);
        Assert.Contains("replay: ssd-emulator sim --seed 2 --config tiny", output, StringComparison.Ordinal);
        Assert.Contains("campaign: seeds=2 failed=2 ", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ADeviceWhoseGrownBadBlocksUseUpTheSpareIsAtTheEndOfItsLife()
    {
        // Programs failing at 3 in 1000 retire blocks until the spare is gone: writes then fail
        // with no space, which the run reports as the end of life rather than as a dead device.
        var (_, output, _) = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--ops",
            "3000",
            "--set",
            "faults.programFailProbability=3e-3",
            "--set",
            "cache.bytes=256k"
        );

        Assert.Matches(
            @"end of life \(not a violation; [^)]*\): op \d+ \(Write \d+\+\d+\) failed with no space: \d+ bad blocks \(\d+ grown since power-on\) have used up the spare",
            output
        );
        Assert.DoesNotContain("dead-device", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--seeds 5..2", "--seeds: '5..2' is not A..B")]
    [InlineData("--workload zipfian", "unknown workload 'zipfian'")]
    [InlineData("--trim-fraction 2", "--trim-fraction: '2' is not a number from 0 to 0.9")]
    [InlineData("--seed 1 --seeds 1..2", "give --seed or --seeds, not both")]
    [InlineData("--seeds 1..9 --shard 4/4", "--shard: '4/4' is not K/N with 0 <= K < N")]
    [InlineData("--seeds 1..9 --shard half", "--shard: 'half' is not K/N")]
    [InlineData("--shard 0/2", "--shard splits a --seeds range")]
    [InlineData("--power-cuts -1", "--power-cuts")]
    public void BadArgumentsAreNamed(string arguments, string expected)
    {
        var (exitCode, _, error) = EmulatorProcess.Run(["sim", "--config", "tiny", .. arguments.Split(' ')]);

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    private static string TraceHash((int ExitCode, string Output, string Error) run)
    {
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        return TraceHashPattern().Match(run.Output).Groups[1].Value;
    }

    [GeneratedRegex(@"ops/s=\d+|(?m)^  speed: .*$")]
    private static partial Regex WallClockRates();

    [GeneratedRegex("trace-hash=([0-9a-f]{16})")]
    private static partial Regex TraceHashPattern();

    [GeneratedRegex(
        @"seed=1 workload=uniform-randwrite ops=2000 waf=\d+\.\d{3} trace-hash=[0-9a-f]{16} ops/s=\d+ violations=0"
    )]
    private static partial Regex SummaryLine();
}
