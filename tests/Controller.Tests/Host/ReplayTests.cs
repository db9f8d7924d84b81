using System.Text.Json;
using Controller.Tests.Support;
using Controller.Tests.Traces;
using Controller.Traces;

namespace Controller.Tests.Host;

/// <summary>
/// <c>ssdhost replay</c>: one trace file against the emulator and against another NBD server, judged by a ledger.
/// </summary>
[Trait("Category", "Interop")]
public sealed class ReplayTests
{
    [SkippableFact]
    public async Task OneTraceDrivesServeAndNbdkitAndTheLedgerJudgesBoth()
    {
        string trace = TraceReaderTests.Sample("blkparse.txt");
        TraceSummary summary = TraceSummary.Scan(TraceReader.Open(trace, TraceFormat.Blkparse));
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, temp.File("ssd.img"), control: true);
        using var kit = await NbdkitProcess.StartAsync(temp, "16M");

        var onServe = await HostRun.RunAsync(
            "replay",
            server.Uri,
            trace,
            "--format",
            "blkparse",
            "--speed",
            "0",
            "--iodepth",
            "8",
            "--ledger",
            temp.File("ssd.ledger"),
            "--json"
        );
        kit.EnsureRunning();
        var onKit = await HostRun.RunAsync(
            "replay",
            kit.Uri,
            trace,
            "--format",
            "blkparse",
            "--speed",
            "0",
            "--iodepth",
            "8",
            "--ledger",
            temp.File("kit.ledger"),
            "--json"
        );
        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var checkServe = await HostRun.RunAsync("verify", server.Uri, "--ledger", temp.File("ssd.ledger"), "--check");
        var checkKit = await HostRun.RunAsync("verify", kit.Uri, "--ledger", temp.File("kit.ledger"), "--check");
        // The canary: data the ledger did not write is found.
        var damage = await HostRun.RunAsync("write", kit.Uri, "1M", "--length", "64k", "--pattern", "0x5a");
        var recheck = await HostRun.RunAsync("verify", kit.Uri, "--ledger", temp.File("kit.ledger"), "--check");

        foreach (var run in new[] { onServe, onKit })
        {
            Assert.True(run.ExitCode == 0, run.Error);
            using var json = JsonDocument.Parse(run.Output);
            Assert.Equal(summary.Commands, json.RootElement.GetProperty("commands").GetInt64());
            Assert.Equal(0, json.RootElement.GetProperty("failures").GetInt64());
            var counts = json
                .RootElement.GetProperty("operations")
                .EnumerateArray()
                .ToDictionary(o => o.GetProperty("operation").GetString()!, o => o.GetProperty("count").GetInt64());
            Assert.Equal(summary.Reads, counts["read"]);
            Assert.Equal(summary.Trims, counts["trim"]);
            Assert.Equal(summary.Flushes, counts["flush"]);
            Assert.Contains(
                "the trace reaches 1072709632 bytes, beyond the device's",
                run.Error,
                StringComparison.Ordinal
            );
        }

        Assert.Equal(0, cut.ExitCode);
        Assert.True(checkServe.ExitCode == 0, checkServe.Output + checkServe.Error);
        Assert.True(checkKit.ExitCode == 0, checkKit.Output + checkKit.Error);
        Assert.Equal(0, damage.ExitCode);
        Assert.Equal(1, recheck.ExitCode);
        Assert.Contains("16 violate the invariant", recheck.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AtRecordedTimesTheReplayTakesAsLongAsTheTraceAndReportsEachOperation()
    {
        string trace = TraceReaderTests.Sample("spc.csv");
        double duration = TraceSummary.Scan(TraceReader.Open(trace, TraceFormat.Spc)).DurationNanoseconds / 1e9;
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        var timed = await HostRun.RunAsync("replay", server.Uri, trace, "--format", "spc");

        Assert.True(timed.ExitCode == 0, timed.Error);
        double seconds = double.Parse(
            timed.Output.Split(" commands in ")[1].Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture
        );
        Assert.True(seconds >= duration * 0.95, $"{seconds} s for a trace of {duration} s");
        Assert.StartsWith("replay spc.csv: 400 commands in ", timed.Output, StringComparison.Ordinal);
        Assert.Contains("  read   n=", timed.Output, StringComparison.Ordinal);
        Assert.Contains("  write  n=", timed.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CtrlCStopsAReplayWithTheSummaryOfWhatRan()
    {
        string trace = TraceReaderTests.Sample("spc.csv");
        double duration = TraceSummary.Scan(TraceReader.Open(trace, TraceFormat.Spc)).DurationNanoseconds / 1e9;
        Assert.True(duration > 0.2, $"the sample trace lasts {duration} s: too short to stop in the middle");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        // A tenth of the recorded speed: the trace takes ten times as long, and Ctrl-C comes a third of the way in.
        var stopped = await HostRun.RunAsync(
            TimeSpan.FromSeconds(duration * 10 / 3),
            "replay",
            server.Uri,
            trace,
            "--format",
            "spc",
            "--speed",
            "0.1"
        );

        Assert.Equal(130, stopped.ExitCode);
        Assert.Matches(@"^replay spc\.csv: \d+ commands in ", stopped.Output);
        int ran = int.Parse(
            stopped.Output.Split(": ")[1].Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture
        );
        Assert.InRange(ran, 1, 399);
        Assert.Contains(
            $"replay: interrupted (Ctrl-C) after {ran} of 400 commands",
            stopped.Error,
            StringComparison.Ordinal
        );
    }

    [Theory]
    [InlineData("replay|URI|TRACE", "replay: --format F is required: blkparse, fio, mqsim, msr, spc")]
    [InlineData(
        "replay|URI|TRACE|--format|csv",
        "replay: --format 'csv' is not a trace format; formats are blkparse, fio, mqsim, msr, spc"
    )]
    [InlineData("replay|URI|nowhere.trace|--format|mqsim", "replay: the trace file 'nowhere.trace' does not exist")]
    [InlineData("replay|URI|TRACE|--format|mqsim|--speed|fast", "replay: --speed 'fast' is not a factor")]
    [InlineData("replay|URI|TRACE|--format|mqsim|--fit|fold", "replay: --fit 'fold' is neither wrap nor scale")]
    [InlineData("replay|URI|TRACE|--format|mqsim|--seed|4", "replay: --seed is the seed of the --ledger's stamps")]
    [InlineData(
        "replay|URI|TRACE|--format|blkparse",
        "replay: TRACE: not a single blkparse request in it; is the file in another format?"
    )]
    [InlineData(
        "replay|URI|TRACE|--format|msr",
        "replay: TRACE:1: '938513000 4 264719034 16 0' is not 'Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime'"
    )]
    public async Task BadInputIsRefusedWithTheValueNamed(string line, string expected)
    {
        string trace = TraceReaderTests.Sample("mqsim_tpcc-small.trace");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        var (exitCode, _, error) = await HostRun.RunAsync([
            .. line.Split('|')
                .Select(a =>
                    a switch
                    {
                        "URI" => server.Uri,
                        "TRACE" => trace,
                        _ => a,
                    }
                ),
        ]);

        Assert.Equal(2, exitCode);
        Assert.Contains(expected.Replace("TRACE", trace, StringComparison.Ordinal), error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }
}
