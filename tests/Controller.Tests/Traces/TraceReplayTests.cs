using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Config;
using Controller.Traces;

namespace Controller.Tests.Traces;

/// <summary>
/// Block traces replayed in the sim: every shipped format with its trims and flushes, checked by
/// the oracle through power cuts, deterministic, paced by the trace's times, and with an oracle
/// that still catches a broken firmware under a trace.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TraceReplayTests
{
    private static readonly string[] FlushClasses = ["lost-durable-write", "resurrected-trim"];

    [Theory]
    [InlineData("blkparse.txt", TraceFormat.Blkparse)]
    [InlineData("fio-trimwrite.iolog", TraceFormat.FioIolog)]
    [InlineData("mqsim_tpcc-small.trace", TraceFormat.MqSim)]
    [InlineData("msr.csv", TraceFormat.Msr)]
    [InlineData("spc.csv", TraceFormat.Spc)]
    public void EachFormatReplaysCleanThroughPowerCuts(string file, TraceFormat format)
    {
        var source = new TraceSource(TraceReaderTests.Sample(file), format);
        TraceSummary summary = TraceSummary.Scan(TraceReader.Open(source.Path, format));

        SimResult result = Replay(source, seed: 3, powerCuts: 4);

        Assert.True(
            result.Violations.Count == 0,
            result.Violations.Count > 0 ? $"{result.Violations[0]}\n  history: {result.Violations[0].History}" : null
        );
        Assert.True(result.PowerCuts.Total >= 4, $"{result.PowerCuts.Total} cuts");
        Assert.True(
            result.HostOps <= summary.Commands && result.HostOps > 0,
            $"{result.HostOps} of {summary.Commands} commands"
        );
        Assert.Contains(result.Notes, n => n.Contains(summary.Describe(), StringComparison.Ordinal));
        Assert.Equal(summary.Trims > 0, result.Operations.Any(o => o.Operation == "trim"));
    }

    [Fact]
    public void AReplayWithoutCutsRunsEveryCommandOnce()
    {
        var source = new TraceSource(TraceReaderTests.Sample("blkparse.txt"), TraceFormat.Blkparse);
        TraceSummary summary = TraceSummary.Scan(TraceReader.Open(source.Path, source.Format));

        SimResult result = Replay(source, seed: 1, powerCuts: 0);

        Assert.Equal(summary.Commands, result.HostOps);
        Assert.Equal(summary.Reads, result.Operations.Single(o => o.Operation == "read").Count);
        Assert.Equal(summary.Trims, result.Operations.Single(o => o.Operation == "trim").Count);
        Assert.Equal(summary.Flushes + 1, result.Operations.Single(o => o.Operation == "flush").Count);
    }

    [Fact]
    public void OneTraceGivesOneExecutionAndItsTimesMatter()
    {
        var timed = new TraceSource(TraceReaderTests.Sample("spc.csv"), TraceFormat.Spc);

        SimResult first = Replay(timed, 1, 0);
        SimResult second = Replay(timed, 1, 0);
        SimResult faster = Replay(timed with { Speed = 4 }, 1, 0);
        SimResult untimed = Replay(timed with { Speed = 0 }, 1, 0);

        Assert.Equal(first.TraceHash, second.TraceHash);
        Assert.NotEqual(first.TraceHash, faster.TraceHash);
        Assert.NotEqual(first.TraceHash, untimed.TraceHash);
        // At recorded times the replay lasts as long as the trace (0.4 s: 400 requests 0.05 to 2 ms
        // apart), a quarter of it at speed 4, and far less as fast as the device allows.
        double duration = TraceSummary.Scan(TraceReader.Open(timed.Path, timed.Format)).DurationNanoseconds / 1e9;
        Assert.InRange(first.MeasuredVirtualSeconds, duration, duration + 0.5);
        Assert.InRange(faster.MeasuredVirtualSeconds, duration / 4, (duration / 4) + 0.5);
        Assert.Equal(64, first.QueueDepth);
        Assert.Equal(1, untimed.QueueDepth);
    }

    /// <summary>
    /// The canary: a firmware that acknowledges flushes before the data is durable is caught replaying a trace with
    /// flushes and FUA writes.
    /// </summary>
    [Fact]
    public void AFlushThatReturnsEarlyIsCaughtUnderATrace()
    {
        var source = new TraceSource(TraceReaderTests.Sample("blkparse.txt"), TraceFormat.Blkparse);
        var broken = new SimHooks(Nand: (nand, _) => Support.Sabotage.EarlyAcknowledgingNand(nand));
        for (ulong seed = 1; seed <= 24; seed++)
        {
            SimResult result = SimRunner.Run(Config(), Options(source, seed, 8) with { Hooks = broken });
            if (result.Violations.Count > 0)
            {
                Assert.Contains(result.Violations[0].ClassName, FlushClasses);
                Assert.Empty(Replay(source, seed, 8).Violations);
                return;
            }
        }

        Assert.Fail("the flush-before-durable canary survived 24 seeds of the blkparse trace with power cuts");
    }

    private static SimResult Replay(TraceSource source, ulong seed, int powerCuts) =>
        SimRunner.Run(Config(), Options(source, seed, powerCuts));

    private static SimOptions Options(TraceSource source, ulong seed, int powerCuts) =>
        new(seed, "trace", new WorkloadParameters { Trace = source }, powerCuts);

    // A cache of 16 pages: write-back reaches the NAND often, so the cuts armed through the trace strike.
    private static ResolvedConfig Config() =>
        Profiles.Load("tiny", ["cache.bytes=256k", "cache.largePageBytes=16k", "cache.checkInvariants=true"]);
}
