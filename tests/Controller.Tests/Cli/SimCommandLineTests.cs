using System.Diagnostics;
using System.Text.Json;
using Controller.Cli;
using Controller.Emulator.Cli;
using Controller.Tests.Support;

namespace Controller.Tests.Cli;

/// <summary>
/// <c>ssd-emulator sim</c> as a user meets it: progress, Ctrl-C with a partial report, and its refusals.
/// </summary>
[Trait("Category", "Process")]
public sealed class SimCommandLineTests
{
    [Fact]
    public void AnInterruptStopsAtTheNextSeedAndWritesWhatRanAndHowToResume()
    {
        using var temp = new TempDirectory();
        string json = temp.File("partial.json");
        using var interrupt = new CancellationTokenSource();
        // Ctrl-C as the first seed's summary is printed.
        using var output = new CallbackWriter(line =>
        {
            if (line.StartsWith("seed=2 ", StringComparison.Ordinal))
            {
                interrupt.Cancel();
            }
        });
        using var progress = new StringWriter();
        CommandArgs args = CommandArgs.Parse(
            SimCommand.Verb(TextWriter.Null),
            ["--config", "tiny", "--seeds", "2..7", "--shard", "0/2", "--ops", "300", "--jobs", "1", "--json", json]
        );

        int exitCode = SimCommand.Run(args, output, progress, terminal: false, interrupt.Token);

        Assert.Equal(ExitCodes.Interrupted, exitCode);
        string resume = "ssd-emulator sim --seeds 4..6 --shard 0/2 --config tiny --ops 300 --jobs 1 --json " + json;
        Assert.Contains(
            $"interrupted (Ctrl-C): 1 of 3 seeds ran; to run the rest: {resume}",
            output.Text,
            StringComparison.Ordinal
        );
        using JsonDocument report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(2UL, report.RootElement.GetProperty("runs")[0].GetProperty("seed").GetUInt64());
        Assert.Equal(1, report.RootElement.GetProperty("runs").GetArrayLength());
        Assert.Equal(resume, report.RootElement.GetProperty("interruptedResume").GetString());
        Assert.Empty(CliRunner.ParseErrors(Controller.Emulator.Program.Spec(TextWriter.Null), resume.Split(' ')[1..]));
    }

    [Fact]
    public void CtrlCOnACampaignExits130WithTheRunsThatFinished()
    {
        using var temp = new TempDirectory();
        string json = temp.File("campaign.json");
        using Process sim = EmulatorProcess.Start(
            "sim",
            "--config",
            "tiny",
            "--seeds",
            "1..1000",
            "--ops",
            "300",
            "--json",
            json
        );
        string? line;
        while (
            (line = sim.StandardOutput.ReadLine()) is not null && !line.StartsWith("seed=1 ", StringComparison.Ordinal)
        ) { }

        Assert.NotNull(line);
        using (
            Process kill = Process.Start(
                "kill",
                ["-INT", sim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]
            )
        )
        {
            kill.WaitForExit();
        }

        string rest = sim.StandardOutput.ReadToEnd();
        Assert.True(sim.WaitForExit(TimeSpan.FromMinutes(1)));

        Assert.Equal(ExitCodes.Interrupted, sim.ExitCode);
        Assert.Matches(
            @"interrupted \(Ctrl-C\): (\d+) of 1000 seeds ran; to run the rest: ssd-emulator sim --seeds \d+\.\.1000 ",
            rest
        );
        using JsonDocument report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.InRange(report.RootElement.GetProperty("runs").GetArrayLength(), 1, 999);
    }

    [Fact]
    public void ARedirectedRunSaysWhichPhaseItIsInAndHowLongEachTook()
    {
        var (exitCode, output, error) = EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "1", "--ops", "300");

        Assert.True(exitCode == 0, error);
        Assert.Matches(@"seed 1: fill 0% \(0/\d+ commands\)", error);
        Assert.Matches(@"seed 1: warm-up 0% \(0/\d+ commands\)", error);
        Assert.Matches(@"seed 1: measure 0% \(0/300 commands\)", error);
        Assert.Matches(@"speed: wall=\d+\.\d+s \(measured phase; fill \d+\.\ds, warm-up \d+\.\ds before it\)", output);
    }

    [Theory]
    [InlineData("--ops 0", "--ops 0 is out of range; expected 1 to")]
    [InlineData("--ops -5", "--ops -5 is out of range")]
    public void ANonsenseCountIsRefusedNotReplacedByTheDefault(string options, string expected)
    {
        var (exitCode, _, error) = EmulatorProcess.Run(["sim", "--config", "tiny", .. options.Split(' ')]);

        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheModelWafIsPrintedOnlyForTheWorkloadItModels()
    {
        var uniform = EmulatorProcess.Run("sim", "--config", "tiny", "--seed", "1", "--ops", "300");
        var mixed = EmulatorProcess.Run(
            "sim",
            "--config",
            "tiny",
            "--seed",
            "1",
            "--ops",
            "300",
            "--workload",
            "mixed"
        );

        Assert.Contains(" modelWaf=", uniform.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(" modelWaf=", mixed.Output, StringComparison.Ordinal);
        Assert.Contains("(the WAF model is for uniform-randwrite)", mixed.Output, StringComparison.Ordinal);
        Assert.Matches(@"migrated=\d+\.\dMiB zeroed=\d+\.\dMiB", mixed.Output);
    }

    [Fact]
    public void ShardsMergedAndSeedsOnSeveralCoresGiveWhatOneMachineOnOneCoreGives()
    {
        using var temp = new TempDirectory();
        string[] campaign = ["--config", "tiny", "--seeds", "1..4", "--ops", "300", "--power-cuts", "1"];
        var (oneCode, oneOutput) = Sim([.. campaign, "--jobs", "1", "--json", temp.File("one.json")]);
        var (twoCode, twoOutput) = Sim([.. campaign, "--jobs", "2", "--json", temp.File("two.json")]);
        Assert.Equal((0, 0), (oneCode, twoCode));
        Assert.Equal(Summaries(oneOutput), Summaries(twoOutput));
        Assert.Equal(4, Summaries(oneOutput).Count);
        Assert.Equal(0, Sim([.. campaign, "--shard", "0/2", "--json", temp.File("shard-0.json")]).ExitCode);
        Assert.Equal(0, Sim([.. campaign, "--shard", "1/2", "--json", temp.File("shard-1.json")]).ExitCode);

        var (mergeCode, mergeOutput, _) = Merge(
            temp.File("shard-1.json"),
            temp.File("shard-0.json"),
            "--json",
            temp.File("merged.json"),
            "--report",
            temp.File("campaign.html")
        );

        Assert.Equal(0, mergeCode);
        Assert.Contains(
            "campaign: seeds=4 (--seeds 1..4, 2 shards) failed=0 power-cuts=",
            mergeOutput,
            StringComparison.Ordinal
        );
        Assert.Contains($"report: {temp.File("campaign.html")} (2 charts)", mergeOutput, StringComparison.Ordinal);
        Assert.Equal(4, File.ReadAllText(temp.File("campaign.html")).Split("<td>uniform-randwrite</td>").Length - 1);
        string one = Runs(temp.File("one.json"));
        Assert.Equal(one, Runs(temp.File("two.json")));
        Assert.Equal(one, Runs(temp.File("merged.json")));
        Assert.Contains("\"traceHash\"", one, StringComparison.Ordinal);

        // The canaries: a missing shard, one given twice, one of another campaign.
        Assert.Contains(
            "shard 1/2 of --seeds 1..4 is missing",
            Merge(temp.File("shard-0.json"), "--json", temp.File("m.json")).Error,
            StringComparison.Ordinal
        );
        Assert.Contains(
            "shard 0/2 is given twice",
            Merge(
                temp.File("shard-0.json"),
                temp.File("shard-0.json"),
                temp.File("shard-1.json"),
                "--json",
                temp.File("m.json")
            ).Error,
            StringComparison.Ordinal
        );
        Assert.Equal(
            0,
            Sim([
                .. campaign[..^2],
                "--power-cuts",
                "2",
                "--shard",
                "1/2",
                "--json",
                temp.File("other-1.json"),
            ]).ExitCode
        );
        var (otherCode, _, otherError) = Merge(
            temp.File("shard-0.json"),
            temp.File("other-1.json"),
            "--json",
            temp.File("m.json")
        );
        Assert.Equal(ExitCodes.Usage, otherCode);
        Assert.Contains("is of another campaign than", otherError, StringComparison.Ordinal);
    }

    private static (int ExitCode, string Output) Sim(string[] args)
    {
        using var output = new StringWriter();
        int exitCode = SimCommand.Run(
            CommandArgs.Parse(SimCommand.Verb(TextWriter.Null), args),
            output,
            TextWriter.Null,
            terminal: false,
            CancellationToken.None
        );
        return (exitCode, output.ToString());
    }

    private static (int ExitCode, string Output, string Error) Merge(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = CliRunner
            .RunAsync(
                Controller.Emulator.Program.Spec(output),
                ["sim", "merge", .. args],
                output,
                error,
                CancellationToken.None
            )
            .GetAwaiter()
            .GetResult();
        return (exitCode, output.ToString(), error.ToString());
    }

    /// <summary>Each seed's summary line (the wall-clock rate left out).</summary>
    private static List<string> Summaries(string output) =>
        [
            .. output
                .Split('\n')
                .Where(l => l.StartsWith("seed=", StringComparison.Ordinal))
                .Select(l => System.Text.RegularExpressions.Regex.Replace(l, @" ops/s=\d+", string.Empty)),
        ];

    /// <summary>A report's runs without the figures that depend on the wall clock.</summary>
    private static string Runs(string path)
    {
        var runs = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!["runs"]!.AsArray();
        foreach (var run in runs)
        {
            var fields = run!.AsObject();
            foreach (
                string name in fields
                    .Select(f => f.Key)
                    .Where(k =>
                        k.Contains("wall", StringComparison.OrdinalIgnoreCase)
                        || k.Contains("memcpy", StringComparison.OrdinalIgnoreCase)
                    )
                    .ToList()
            )
            {
                fields.Remove(name);
            }
        }

        return runs.ToJsonString();
    }

    /// <summary>A writer that hands each finished line to a callback, and keeps them all.</summary>
    private sealed class CallbackWriter(Action<string> onLine) : StringWriter
    {
        public string Text => ToString();

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            onLine(value ?? string.Empty);
        }
    }
}
