using System.Text.Json;
using Controller.Tests.Support;

namespace Controller.Tests.Cli;

[Trait("Category", "Process")]
public sealed class EmulatorCommandLineTests
{
    [Fact]
    public void InfoPrintsTheResolvedConfigurationAndCapacities()
    {
        var (exitCode, output, error) = EmulatorProcess.Run(
            "info",
            "--config",
            "tiny",
            "--set",
            "nand.blocksPerDie=32",
            "--set",
            "ftl.spareFactor=0.25"
        );

        Assert.True(exitCode == 0, error);
        Assert.Contains(
            "nand.blocksPerDie                 32  (--set nand.blocksPerDie=32)",
            output,
            StringComparison.Ordinal
        );
        Assert.Contains("blocks          64 (32 per die)", output, StringComparison.Ordinal);
        Assert.Contains("raw data        4194304 B (4 MiB)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void InfoJsonIsAProfileShapedObjectWithDerivedCapacities()
    {
        var (exitCode, output, error) = EmulatorProcess.Run("info", "--json");

        Assert.True(exitCode == 0, error);
        using JsonDocument json = JsonDocument.Parse(output);
        Assert.Equal(4, json.RootElement.GetProperty("config").GetProperty("nand").GetProperty("channels").GetInt32());
        Assert.Equal(1024, json.RootElement.GetProperty("derived").GetProperty("blocks").GetInt32());
        Assert.Equal(1L << 30, json.RootElement.GetProperty("derived").GetProperty("rawDataBytes").GetInt64());
    }

    [Theory]
    [InlineData("nand.pageBytes=3000", "hw-config/emulated/default.json: nand.pageBytes: 3000 is not a power of two")]
    [InlineData("nand.channels=0", "hw-config/emulated/default.json: nand.channels: '0' is out of range")]
    [InlineData("nand.chanels=2", "nand.chanels: unknown key; did you mean nand.channels?")]
    public void ABadOverrideIsOneLineOnStandardErrorAndExitCodeTwo(string assignment, string expected)
    {
        var (exitCode, output, error) = EmulatorProcess.Run("info", "--set", assignment);

        Assert.Equal(2, exitCode);
        Assert.Empty(output);
        Assert.StartsWith("ssd-emulator info: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData("frobnicate", "unknown verb 'frobnicate'")]
    [InlineData("info --verbose", "unknown option '--verbose'")]
    [InlineData("info --config", "Required argument missing for option: '--config'")]
    [InlineData("info --config /nonexistent.json", "/nonexistent.json: no such file")]
    [InlineData("nandtest --passes many", "--passes 'many' is not a whole number")]
    [InlineData("nandtest --check", "--check needs --image FILE")]
    public void CommandLineMistakesAreNamed(string commandLine, string expected)
    {
        var (exitCode, _, error) = EmulatorProcess.Run(commandLine.Split(' '));

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryVerbHasHelpWithAnExample()
    {
        foreach (string verb in new[] { "serve", "info", "nandtest", "sim", "crashtest" })
        {
            var (exitCode, output, _) = EmulatorProcess.Run(verb, "--help");

            Assert.Equal(0, exitCode);
            Assert.Contains($"Usage:\n  ssd-emulator {verb} ", output, StringComparison.Ordinal);
            Assert.Contains("Example", output, StringComparison.Ordinal);
            Assert.Contains(
                "\n  ssd-emulator " + verb + " ",
                output[output.IndexOf("Example", StringComparison.Ordinal)..],
                StringComparison.Ordinal
            );
        }
    }
}
