using Controller.Tests.Support;

namespace Controller.Tests.Cli;

/// <summary>The emulator as one self-contained file, as the campaign image carries it (emulator/Dockerfile).</summary>
[Trait("Category", "Process")]
public sealed class SingleFileTests
{
    [Fact]
    public void ThePublishedFileAloneRunsACampaignInAnEmptyFolder()
    {
        using var temp = new TempDirectory();
        string output = temp.File("publish");
        var publish = ExternalTool.Run(
            "dotnet",
            "publish",
            Repository.PathOf("emulator", "Controller.Emulator"),
            "-c",
            "Release",
            "-r",
            "linux-x64",
            "--self-contained",
            "-p:PublishSingleFile=true",
            "-o",
            output,
            "--artifacts-path",
            temp.File("artifacts"),
            "-nologo"
        );
        Assert.True(publish.ExitCode == 0, publish.Output + publish.Error);
        string empty = temp.File("campaign");
        Directory.CreateDirectory(empty);
        string file = Path.Combine(empty, "ssd-emulator");
        File.Copy(Path.Combine(output, "ssd-emulator"), file);

        var run = ExternalTool.RunIn(
            empty,
            file,
            "sim",
            "--config",
            "tiny",
            "--seeds",
            "1..2",
            "--ops",
            "300",
            "--power-cuts",
            "1",
            "--json",
            "shard.json"
        );

        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Contains("campaign: seeds=2 failed=0", run.Output, StringComparison.Ordinal);
        Assert.Equal(
            ["shard.json", "ssd-emulator"],
            Directory.GetFiles(empty).Select(Path.GetFileName).Order(StringComparer.Ordinal)
        );
    }
}
