using System.Diagnostics;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>
/// FUA on TRIM and WRITE ZEROES as a user meets it: nbdsh (libnbd) sends them to a server with an
/// image, the server is killed with SIGKILL (a power cut) with no flush after them, and a restart
/// from the image must read zeros where they were acknowledged. On <c>ssd-emulator serve</c> and
/// on the board image with its emulated chip.
/// </summary>
[Trait("Category", "Interop")]
public sealed class FuaProcessTests
{
    /// <summary>
    /// libnbd takes the count before the offset. 1 MiB of 0xab is flushed; then a FUA trim of
    /// [0, 64k), a FUA zeroing of [64k, 128k) that may punch, a FUA zeroing with NO_HOLE of
    /// [128k, 192k), and a FUA trim of a partial sector (1 KiB at 196k); nothing after them.
    /// </summary>
    private const string Before = """
        h.pwrite(b'\xab' * 1048576, 0)
        h.flush()
        h.trim(65536, 0, nbd.CMD_FLAG_FUA)
        h.zero(65536, 65536, nbd.CMD_FLAG_FUA)
        h.zero(65536, 131072, nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE)
        h.trim(1024, 200704, nbd.CMD_FLAG_FUA)
        print('sent')
        """;

    private const string After = """
        assert h.pread(196608, 0) == bytes(196608), 'a FUA trim or zeroing came back'
        assert h.pread(4096, 196608) == b'\xab' * 4096
        assert h.pread(1024, 200704) == bytes(1024), 'the FUA trim of a partial sector came back'
        assert h.pread(1048576 - 201728, 201728) == b'\xab' * (1048576 - 201728)
        print('zeros where acknowledged')
        """;

    [SkippableFact]
    public async Task FuaTrimsAndZeroesSurviveASigkillOfServe()
    {
        string nbdsh = ExternalTool.Require("nbdsh", "python3-libnbd");
        using var temp = new TempDirectory();
        string image = temp.File("ssd.img");

        await SendThenKillAsync(nbdsh, () => ServerProcess.StartAsync(temp, image));

        using ServerProcess restarted = await ServerProcess.StartAsync(temp, image);
        Assert.Contains("recovered (", restarted.Banner, StringComparison.Ordinal);
        AssertZerosWhereAcknowledged(nbdsh, restarted.Uri);
    }

    [SkippableFact]
    public async Task FuaTrimsAndZeroesSurviveASigkillOfTheBoardImage()
    {
        string nbdsh = ExternalTool.Require("nbdsh", "python3-libnbd");
        using var temp = new TempDirectory();
        string image = temp.File("chip.img");
        Task<ServerProcess> StartBoard()
        {
            var start = new ProcessStartInfo("dotnet")
            {
                ArgumentList =
                {
                    Path.Combine(AppContext.BaseDirectory, "ssd-board.dll"),
                    "--board",
                    Repository.PathOf("hw-config", "boards", "emulated.json"),
                    "--image",
                    image,
                },
            };
            return ServerProcess.StartCommandAsync(temp, start, control: false, TimeSpan.FromMinutes(1));
        }

        await SendThenKillAsync(nbdsh, StartBoard);

        using ServerProcess restarted = await StartBoard();
        AssertZerosWhereAcknowledged(nbdsh, restarted.Uri);
    }

    private static async Task SendThenKillAsync(string nbdsh, Func<Task<ServerProcess>> start)
    {
        using ServerProcess server = await start();
        var sent = ExternalTool.Run(nbdsh, "-u", server.Uri, "-c", Before);
        Assert.True(
            sent.ExitCode == 0 && sent.Output.Contains("sent", StringComparison.Ordinal),
            sent.Output + sent.Error
        );
        server.Kill();
    }

    private static void AssertZerosWhereAcknowledged(string nbdsh, string uri)
    {
        var read = ExternalTool.Run(nbdsh, "-u", uri, "-c", After);
        Assert.True(read.ExitCode == 0, read.Output + read.Error);
        Assert.Contains("zeros where acknowledged", read.Output, StringComparison.Ordinal);
    }
}
