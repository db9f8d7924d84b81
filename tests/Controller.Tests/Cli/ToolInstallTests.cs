using Controller.Tests.Support;

namespace Controller.Tests.Cli;

/// <summary>The three programs packed as .NET tools and installed by name, as the README has users do.</summary>
[Trait("Category", "Process")]
public sealed class ToolInstallTests
{
    [Fact]
    public void ThePackedToolsInstallAndRunByTheirNames()
    {
        using var temp = new TempDirectory();
        string feed = temp.File("feed");
        string tools = temp.File("tools");
        string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal)
            ? "Release"
            : "Debug";
        foreach (
            string project in new[]
            {
                "emulator/Controller.Emulator",
                "host/Controller.Host",
                "firmware/hosting/Controller.Board",
            }
        )
        {
            var pack = ExternalTool.Run(
                "dotnet",
                "pack",
                Repository.PathOf(project),
                "--no-build",
                "-c",
                configuration,
                "-o",
                feed
            );
            Assert.True(pack.ExitCode == 0, pack.Output + pack.Error);
        }

        foreach (string tool in new[] { "ssd-emulator", "ssdhost", "ssd-board" })
        {
            var install = ExternalTool.Run(
                "dotnet",
                "tool",
                "install",
                "--tool-path",
                tools,
                "--add-source",
                feed,
                tool
            );
            Assert.True(install.ExitCode == 0, install.Output + install.Error);
            var version = ExternalTool.Run(Path.Combine(tools, tool), "--version");
            Assert.True(version.ExitCode == 0, version.Output + version.Error);
            Assert.Matches(@"^\d+\.\d+\.\d+", version.Output);
        }

        // The installed emulator finds its shipped profiles from anywhere.
        var info = ExternalTool.Run(Path.Combine(tools, "ssd-emulator"), "info", "--config", "tiny");
        Assert.True(info.ExitCode == 0, info.Output + info.Error);
        Assert.Contains("profile", info.Output, StringComparison.Ordinal);
    }
}
