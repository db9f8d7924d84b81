using System.Text.Json;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

/// <summary>
/// The crash test as CI runs it, as a process: every sequence of up to two commands over every
/// policy with and without PLP, and a seeded sample of sequences of three. Each must find no
/// violation (the canary that shows the same run can fail is in <see cref="CrashTestTests"/>).
/// </summary>
[Trait("Category", "Campaign")]
public sealed class CrashTestCampaignTests
{
    [Fact]
    public void EverySequenceOfUpToTwoCommandsCutAtEveryPointHoldsTheInvariant()
    {
        using var temp = new TempDirectory();
        string json = temp.File("k2.json");

        var (exitCode, output, error) = EmulatorProcess.Run(
            TimeSpan.FromMinutes(15),
            "crashtest",
            "--length",
            "2",
            "--json",
            json
        );

        Assert.True(exitCode == 0, output + error);
        using JsonDocument report = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = report.RootElement;
        Assert.Equal(8 * 3 * (57 + (57 * 57)), root.GetProperty("sequences").GetInt64());
        Assert.True(root.GetProperty("cutPoints").GetInt64() > 5 * root.GetProperty("sequences").GetInt64(), output);
        Assert.Equal(0, root.GetProperty("violations").GetArrayLength());
        Assert.All(root.GetProperty("devices").EnumerateArray(), d =>
            Assert.Equal(3 * (57 + (57 * 57)), d.GetProperty("sequences").GetInt64())
        );
    }

    [Fact]
    public void ASeededSampleOfThreeCommandSequencesHoldsTheInvariant()
    {
        var (exitCode, output, error) = EmulatorProcess.Run(
            TimeSpan.FromMinutes(10),
            "crashtest",
            "--length",
            "3",
            "--sample",
            "6000",
            "--seed",
            "2026"
        );

        Assert.True(exitCode == 0, output + error);
        Assert.Contains("6000 sequences", output, StringComparison.Ordinal);
        Assert.Contains(" 0 violations", output, StringComparison.Ordinal);
    }
}
