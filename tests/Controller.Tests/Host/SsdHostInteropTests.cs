using System.Diagnostics;
using Controller.Tests.Support;

namespace Controller.Tests.Host;

/// <summary><c>ssdhost</c> beside the standard tools: another NBD server, and nbdinfo's map.</summary>
public sealed class SsdHostInteropTests
{
    [SkippableFact]
    public async Task VerifyWorksAgainstNbdkitMemory()
    {
        string nbdkit = ExternalTool.Require("nbdkit", "nbdkit");
        using var temp = new TempDirectory();
        string socket = temp.File("kit.sock");
        // nbdkit writes its PID file once it listens (the socket file appears before that).
        string pid = temp.File("kit.pid");
        using Process kit = Process.Start(new ProcessStartInfo(nbdkit, ["-f", "-U", socket, "-P", pid, "memory", "16M"]) { RedirectStandardError = true })!;
        try
        {
            for (int i = 0; i < 200 && !(File.Exists(pid) && new FileInfo(pid).Length > 0); i++)
            {
                await Task.Delay(50);
            }

            string uri = $"nbd+unix:///?socket={socket}";
            string ledger = temp.File("kit.ledger");
            var run = await HostRun.RunAsync("verify", uri, "--ledger", ledger, "--ops", "2000");
            var check = await HostRun.RunAsync("verify", uri, "--ledger", ledger, "--check");
            var damage = await HostRun.RunAsync("write", uri, "0", "--length", "16M", "--pattern", "0x5a");
            var recheck = await HostRun.RunAsync("verify", uri, "--ledger", ledger, "--check");

            Assert.True(run.ExitCode == 0, run.Error);
            Assert.True(check.ExitCode == 0, check.Output + check.Error);
            Assert.Contains("0 violate the invariant", check.Output, StringComparison.Ordinal);
            Assert.Equal(0, damage.ExitCode);
            Assert.Equal(1, recheck.ExitCode);
            Assert.Contains("4096 violate the invariant", recheck.Output, StringComparison.Ordinal);
        }
        finally
        {
            kit.Kill();
            await kit.WaitForExitAsync();
        }
    }

    [SkippableFact]
    public async Task MapPrintsWhatNbdinfoMapPrints()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        Assert.Equal(0, (await HostRun.RunAsync("write", server.Uri, "0", "--length", "1M", "--pattern", "7")).ExitCode);
        Assert.Equal(0, (await HostRun.RunAsync("trim", server.Uri, "256k", "128k")).ExitCode);

        var ours = await HostRun.RunAsync("map", server.Uri);
        var theirs = ExternalTool.Run(nbdinfo, "--map", server.Uri);

        Assert.Equal(0, theirs.ExitCode);
        Assert.Equal(theirs.Output.TrimEnd(), ours.Output.TrimEnd());
    }
}
