using Controller.Cli;
using Controller.Emulator.Cli;
using Controller.Reports;
using Controller.Tests.Support;

namespace Controller.Tests.Reports;

/// <summary>The HTML reports as a browser shows them: every chart drawn where its box is, none blank.</summary>
[Trait("Category", "Interop")]
public sealed class ReportRenderTests
{
    [Fact]
    public void ASimReportShowsEachOfItsChartsInHeadlessChromium()
    {
        using var temp = new TempDirectory();
        string html = temp.File("sim.html");
        using var output = new StringWriter();
        int exitCode = SimCommand.Run(
            CommandArgs.Parse(
                SimCommand.Verb(TextWriter.Null),
                [
                    "--config",
                    "tiny",
                    "--workload",
                    "mixed",
                    "--seed",
                    "3",
                    "--ops",
                    "3000",
                    "--power-cuts",
                    "2",
                    "--report",
                    html,
                ]
            ),
            output,
            TextWriter.Null,
            terminal: false,
            CancellationToken.None
        );

        Assert.True(exitCode == 0, output.ToString());
        Assert.Contains($"report: {html} (6 charts)", output.ToString(), StringComparison.Ordinal);
        AssertChartsDrawn(temp, html, 6);
    }

    [Fact]
    public void ACampaignReportShowsItsViolationsByClassAndItsFirstSeed()
    {
        using var temp = new TempDirectory();
        string html = temp.File("campaign.html");
        using var output = new StringWriter();
        int exitCode = SimCommand.Run(
            CommandArgs.Parse(
                SimCommand.Verb(TextWriter.Null),
                ["--config", "tiny", "--seeds", "1..3", "--ops", "500", "--power-cuts", "1", "--report", html]
            ),
            output,
            TextWriter.Null,
            terminal: false,
            CancellationToken.None
        );

        Assert.True(exitCode == 0, output.ToString());
        string page = File.ReadAllText(html);
        Assert.Contains("alt=\"Violations by class\"", page, StringComparison.Ordinal);
        Assert.Contains("alt=\"Power cuts by what the firmware was doing\"", page, StringComparison.Ordinal);
        // A row per seed in the campaign table, and the first seed's own figures.
        Assert.Equal(4, page.Split("<td>uniform-randwrite</td>").Length - 1);
        // A campaign that held has no violation of any class: that chart's bars are all zero-length.
        AssertChartsDrawn(temp, html, 9, allZero: [0]);
    }

    [Fact]
    public async Task ABenchReportShowsItsChartsInHeadlessChromium()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        string html = temp.File("bench.html");

        var (exitCode, _, error) = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "randrw",
            "--iodepth",
            "4",
            "--duration",
            "3s",
            "--report",
            html
        );

        Assert.True(exitCode == 0, error);
        Assert.Contains($"report: {html} (3 charts)", error, StringComparison.Ordinal);
        AssertChartsDrawn(temp, html, 3);
    }

    [Fact]
    public void ACrashtestReportShowsItsChartsInHeadlessChromium()
    {
        using var temp = new TempDirectory();
        string html = temp.File("crashtest.html");
        using var output = new StringWriter();
        int exitCode = CrashTestCommand.Run(
            CommandArgs.Parse(
                CrashTestCommand.Verb(TextWriter.Null),
                ["--length", "1", "--shard", "0/8", "--report", html]
            ),
            output,
            TextWriter.Null,
            Controller.Emulator.Sim.SimHooks.None
        );

        Assert.True(exitCode == 0, output.ToString());
        Assert.Contains($"report: {html} (2 charts)", output.ToString(), StringComparison.Ordinal);
        // No violation of any class in a run that held: that chart's bars are all zero-length.
        AssertChartsDrawn(temp, html, 2, allZero: [0]);
    }

    [Fact]
    public void TheEraseHistogramSpansTheLeastToTheMostErasedInAtMost40Bars()
    {
        Assert.Equal([("3", 2.0), ("4", 0.0), ("5", 1.0)], SimHtmlReport.EraseHistogram([3, 5, 3]));
        var wide = SimHtmlReport.EraseHistogram([.. Enumerable.Range(100, 1000).Select(i => (uint)i)]);
        Assert.InRange(wide.Count, 20, 40);
        Assert.StartsWith("100-", wide[0].Label, StringComparison.Ordinal);
        Assert.Equal(1000, wide.Sum(b => b.Value));
    }

    /// <summary>The canary: a chart with nothing plotted is found to be blank.</summary>
    [Fact]
    public void AnEmptyChartIsFoundBlank()
    {
        using var temp = new TempDirectory();
        string html = temp.File("empty.html");
        var report = new HtmlReport("empty");
        report.Chart(new OxyPlot.PlotModel { Background = OxyPlot.OxyColors.White }, "nothing");
        report.Write(html);

        var boxes = Browser.ImageBoxes(html, temp.File("empty-boxes.png"), 800);
        Png shot = Browser.Screenshot(html, temp.File("empty.png"), 800);

        Assert.Single(boxes);
        Assert.True(Browser.Ink(shot, boxes[0]) < 0.001);
        Assert.False(Browser.HasColour(shot, boxes[0]));
    }

    private static void AssertChartsDrawn(TempDirectory temp, string html, int charts, int[]? allZero = null)
    {
        int height = 600 + (charts * 480);
        var boxes = Browser.ImageBoxes(html, temp.File("boxes.png"), height);
        Png shot = Browser.Screenshot(html, temp.File("page.png"), height);

        Assert.Equal(charts, boxes.Count);
        foreach ((var box, int index) in boxes.Select((b, i) => (b, i)))
        {
            Assert.Equal(
                (HtmlReport.ChartWidth, HtmlReport.ChartHeight),
                (box.Right - box.Left + 1, box.Bottom - box.Top + 1)
            );
            double ink = Browser.Ink(shot, box);
            Assert.True(ink > 0.01, $"the chart at y={box.Top} is nearly blank ({ink:P2} ink)");
            Assert.True(
                Browser.HasColour(shot, box) != (allZero ?? []).Contains(index),
                $"the chart at y={box.Top} plots {(Browser.HasColour(shot, box) ? "something" : "nothing")} in colour"
            );
        }
    }
}
