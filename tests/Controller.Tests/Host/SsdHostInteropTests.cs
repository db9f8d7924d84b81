using Controller.Tests.Support;

namespace Controller.Tests.Host;

/// <summary><c>ssdhost</c> beside the standard tools: another NBD server, and nbdinfo's map.</summary>
[Trait("Category", "Interop")]
public sealed class SsdHostInteropTests
{
    [SkippableFact]
    public async Task VerifyWorksAgainstNbdkitMemory()
    {
        using var temp = new TempDirectory();
        using var kit = await NbdkitProcess.StartAsync(temp, "16M");
        string ledger = temp.File("kit.ledger");

        var run = await HostRun.RunAsync("verify", kit.Uri, "--ledger", ledger, "--ops", "2000");
        var check = await HostRun.RunAsync("verify", kit.Uri, "--ledger", ledger, "--check");
        var damage = await HostRun.RunAsync("write", kit.Uri, "0", "--length", "16M", "--pattern", "0x5a");
        var recheck = await HostRun.RunAsync("verify", kit.Uri, "--ledger", ledger, "--check");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains("0 violate the invariant", check.Output, StringComparison.Ordinal);
        Assert.Equal(0, damage.ExitCode);
        Assert.Equal(1, recheck.ExitCode);
        Assert.Contains("4096 violate the invariant", recheck.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task MapPrintsWhatNbdinfoMapPrints()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        Assert.Equal(
            0,
            (await HostRun.RunAsync("write", server.Uri, "0", "--length", "1M", "--pattern", "7")).ExitCode
        );
        Assert.Equal(0, (await HostRun.RunAsync("trim", server.Uri, "256k", "128k")).ExitCode);

        var ours = await HostRun.RunAsync("map", server.Uri);
        var theirs = ExternalTool.Run(nbdinfo, "--map", server.Uri);

        Assert.Equal(0, theirs.ExitCode);
        Assert.Equal(theirs.Output.TrimEnd(), ours.Output.TrimEnd());
    }
}
