using System.Security.Cryptography;
using Controller.Hosting.Nbd;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>
/// <c>serve --read-only</c> as a process: the read-only flag advertised, every change refused
/// with EPERM, reads and block status as before, and the image file byte for byte unchanged
/// through a clean stop (no checkpoint).
/// </summary>
[Trait("Category", "Interop")]
public sealed class ReadOnlyTests
{
    [Fact]
    public async Task AReadOnlyExportRefusesEveryChangeServesReadsAndBlockStatusAndLeavesTheImageUnchanged()
    {
        using var temp = new TempDirectory();
        string image = await ImageWithDataAsync(temp);
        byte[] before = SHA256.HashData(File.ReadAllBytes(image));

        using (var server = await ServerProcess.StartAsync(temp, image, extra: ["--read-only"]))
        {
            NbdTestClient client = await server.ConnectAsync();
            NbdTestReply read = await client.RequestAsync(NbdCommand.Read, 0, 65536);
            NbdTestReply status = await client.RequestAsync(NbdCommand.BlockStatus, 0, 1 << 20);
            NbdError write = (await client.RequestAsync(NbdCommand.Write, 0, 4096, new byte[4096])).Error;
            NbdError fuaWrite = (
                await client.RequestAsync(NbdCommand.Write, 0, 4096, new byte[4096], NbdCommandModifiers.Fua)
            ).Error;
            NbdError trim = (await client.RequestAsync(NbdCommand.Trim, 0, 4096)).Error;
            NbdError zero = (await client.RequestAsync(NbdCommand.WriteZeroes, 0, 4096)).Error;
            NbdError zeroNoHole = (
                await client.RequestAsync(NbdCommand.WriteZeroes, 0, 4096, flags: NbdCommandModifiers.NoHole)
            ).Error;
            NbdError flush = (await client.RequestAsync(NbdCommand.Flush, 0, 0)).Error;
            NbdTestReply after = await client.RequestAsync(NbdCommand.Read, 0, 65536);
            (int exitCode, string output) = await server.StopAsync("TERM");

            Assert.Equal(NbdError.None, read.Error);
            Assert.All(read.Data, b => Assert.Equal(0x3c, b));
            Assert.Equal(NbdError.None, status.Error);
            Assert.Equal((65536u, NbdAllocationState.None), status.Extents[0]);
            Assert.Equal(
                [
                    NbdError.NotPermitted,
                    NbdError.NotPermitted,
                    NbdError.NotPermitted,
                    NbdError.NotPermitted,
                    NbdError.NotPermitted,
                ],
                [write, fuaWrite, trim, zero, zeroNoHole]
            );
            Assert.Equal(NbdError.None, flush);
            Assert.Equal(read.Data, after.Data);
            Assert.Equal(0, exitCode);
            Assert.DoesNotContain("checkpointed", output, StringComparison.Ordinal);
        }

        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(image)));
    }

    [Fact]
    public async Task TheReadOnlyCanaryTheSameSessionWritableChangesTheImage()
    {
        // Without --read-only a clean stop alone writes a checkpoint: the byte comparison above can fail.
        using var temp = new TempDirectory();
        string image = await ImageWithDataAsync(temp);
        byte[] before = SHA256.HashData(File.ReadAllBytes(image));

        using (var server = await ServerProcess.StartAsync(temp, image))
        {
            NbdTestClient client = await server.ConnectAsync();
            Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Read, 0, 65536)).Error);
            Assert.Equal(0, (await server.StopAsync("TERM")).ExitCode);
        }

        Assert.NotEqual(before, SHA256.HashData(File.ReadAllBytes(image)));
    }

    [SkippableFact]
    public async Task NbdinfoSeesTheReadOnlyFlagAndQemuIoIsRefused()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        string image = await ImageWithDataAsync(temp);
        using var server = await ServerProcess.StartAsync(temp, image, extra: ["--read-only"]);

        var info = ExternalTool.Run(nbdinfo, server.Uri);
        var write = ExternalTool.Run(qemuIo, "-f", "raw", server.Uri, "-c", "write -P 0x11 0 4k");
        var read = ExternalTool.Run(qemuIo, "-r", "-f", "raw", server.Uri, "-c", "read -P 0x3c 0 64k");

        Assert.True(info.ExitCode == 0, info.Error);
        Assert.Contains("is_read_only: true", info.Output, StringComparison.Ordinal);
        // qemu sees the export's read-only flag and will not open it for writing.
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("Permission denied", write.Output + write.Error, StringComparison.Ordinal);
        Assert.True(read.ExitCode == 0, read.Output + read.Error);
        Assert.DoesNotContain("Pattern verification failed", read.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void ABlankNandIsRefusedReadOnlyAndNoImageIsLeft()
    {
        using var temp = new TempDirectory();

        var (exitCode, _, error) = EmulatorProcess.Run(
            "serve",
            "--config",
            "tiny",
            "--image",
            temp.File("blank.img"),
            "--read-only",
            "--listen",
            $"nbd+unix:///?socket={temp.File("s.sock")}"
        );

        Assert.NotEqual(0, exitCode);
        Assert.Contains("read-only mount cannot format", error, StringComparison.Ordinal);
    }

    /// <summary>An image holding 0x3c in its first 64 KiB, written, flushed and cleanly stopped.</summary>
    private static async Task<string> ImageWithDataAsync(TempDirectory temp)
    {
        string image = temp.File("ssd.img");
        using var server = await ServerProcess.StartAsync(temp, image);
        NbdTestClient client = await server.ConnectAsync();
        Assert.Equal(
            NbdError.None,
            (
                await client.RequestAsync(NbdCommand.Write, 0, 65536, Enumerable.Repeat((byte)0x3c, 65536).ToArray())
            ).Error
        );
        Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Flush, 0, 0)).Error);
        Assert.Equal(0, (await server.StopAsync("TERM")).ExitCode);
        return image;
    }
}
