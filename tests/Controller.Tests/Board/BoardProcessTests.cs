using System.Diagnostics;
using Controller.Tests.Support;

namespace Controller.Tests.Board;

/// <summary>
/// The board image as a process with its emulated-SPI profile: on this machine, and published for
/// linux-arm64 (a Raspberry Pi's) and run under qemu-aarch64-static, serving NBD on a Unix socket
/// to qemu-io.
/// </summary>
[Trait("Category", "Interop")]
public sealed class BoardProcessTests
{
    private static readonly string s_profile = Repository.PathOf("hw-config", "boards", "emulated.json");

    [SkippableFact]
    public async Task TheBoardImageServesTheEmulatedChipAndStopsCleanly()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "ssd-board.dll"), "--board", s_profile },
        };
        using ServerProcess board = await ServerProcess.StartCommandAsync(
            temp,
            start,
            control: true,
            TimeSpan.FromMinutes(1)
        );
        Assert.Contains("ssd-board: serving export 'ssd'", board.Banner, StringComparison.Ordinal);
        Assert.Contains("SPI NAND W25N01GV over the driver", board.Banner, StringComparison.Ordinal);

        RoundTrip(qemuIo, board.Uri);
        (int cutCode, string cutOutput, string cutError) = await HostRun.RunAsync(
            "power-cut",
            "--control",
            board.Control
        );
        Assert.True(cutCode == 0, cutError);
        Assert.Contains("recovered", cutOutput, StringComparison.Ordinal);
        // Written with a flush before the cut: still there after recovery.
        var after = ExternalTool.Run(qemuIo, "-f", "raw", board.Uri, "-c", "read -P 0xab 512k 512k");
        Assert.True(
            after.ExitCode == 0 && !after.Output.Contains("Pattern verification failed", StringComparison.Ordinal),
            after.Output + after.Error
        );

        (int code, string output) = await board.StopAsync("TERM");
        Assert.Equal(0, code);
        Assert.Contains("ssd-board: flushed and checkpointed; stopped", output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TheLinuxArm64ImageServesUnderQemuUser()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        string qemu = ExternalTool.Require("qemu-aarch64-static", "qemu-user-static");
        const string Sysroot = "/usr/aarch64-linux-gnu";
        const string CrossPackages = "libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross";
        ExternalTool.RequireFile(Path.Combine(Sysroot, "lib", "ld-linux-aarch64.so.1"), CrossPackages);
        ExternalTool.RequireFile(Path.Combine(Sysroot, "lib", "libstdc++.so.6"), CrossPackages);
        using var temp = new TempDirectory();

        // The README's publish command, with its own artifacts directory so the checkout's obj and
        // bin are left as they are.
        string output = temp.File("ssd-board-linux-arm64");
        var publish = ExternalTool.Run(
            "dotnet",
            "publish",
            Repository.PathOf("firmware", "hosting", "Controller.Board"),
            "-c",
            "Release",
            "-r",
            "linux-arm64",
            "--self-contained",
            "-o",
            output,
            "--artifacts-path",
            temp.File("artifacts"),
            "-nologo"
        );
        Assert.True(publish.ExitCode == 0, publish.Output + publish.Error);
        string image = Path.Combine(output, "ssd-board");
        byte[] header = File.ReadAllBytes(image)[..20];
        Assert.True(
            header[18] == 0xB7 && header[19] == 0,
            $"{image} is not an AArch64 ELF executable (e_machine {header[18]:x2}{header[19]:x2})"
        );

        var start = new ProcessStartInfo(qemu) { ArgumentList = { "-L", Sysroot, image, "--board", s_profile } };
        start.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
        using ServerProcess board = await ServerProcess.StartCommandAsync(
            temp,
            start,
            control: false,
            TimeSpan.FromMinutes(3)
        );
        Assert.Contains("ssd-board: serving export 'ssd'", board.Banner, StringComparison.Ordinal);

        RoundTrip(qemuIo, board.Uri);
        (int code, string rest) = await board.StopAsync("TERM");
        Assert.Equal(0, code);
        Assert.Contains("flushed and checkpointed", rest, StringComparison.Ordinal);
    }

    /// <summary>
    /// qemu-io writes a pattern, discards half, reads zeros there and the pattern in the rest; reading the pattern
    /// where it was discarded fails (the check can fail).
    /// </summary>
    private static void RoundTrip(string qemuIo, string uri)
    {
        var io = ExternalTool.Run(
            qemuIo,
            "-f",
            "raw",
            uri,
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "flush",
            "-c",
            "discard 0 512k",
            "-c",
            "read -P 0 0 512k",
            "-c",
            "read -P 0xab 512k 512k"
        );
        Assert.True(io.ExitCode == 0, io.Output + io.Error);
        Assert.Contains("wrote 1048576/1048576 bytes at offset 0", io.Output, StringComparison.Ordinal);
        Assert.Contains("discard 524288/524288 bytes at offset 0", io.Output, StringComparison.Ordinal);
        Assert.Contains("read 524288/524288 bytes at offset 0", io.Output, StringComparison.Ordinal);
        Assert.Contains("read 524288/524288 bytes at offset 524288", io.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Pattern verification failed", io.Output + io.Error, StringComparison.Ordinal);

        var stale = ExternalTool.Run(qemuIo, "-f", "raw", uri, "-c", "read -P 0xab 0 512k");
        Assert.Contains("Pattern verification failed", stale.Output + stale.Error, StringComparison.Ordinal);
    }
}
