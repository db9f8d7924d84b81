using System.Net.Sockets;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>
/// <c>ssd-emulator serve</c> as a child process: clean shutdown, a SIGKILL as a power cut, and its refusals.
/// </summary>
[Trait("Category", "Process")]
public sealed class ServeProcessTests
{
    [Fact]
    public async Task SigtermFlushesAndCheckpointsAndARestartFindsEverything()
    {
        using var temp = new TempDirectory();
        string image = temp.File("ssd.img");
        byte[] data = Pattern(0x5A, 256 << 10);
        using (var server = await ServerProcess.StartAsync(temp, image))
        {
            NbdTestClient client = await server.ConnectAsync();
            Assert.Equal(
                NbdError.None,
                (await client.RequestAsync(NbdCommand.Write, 0, (uint)data.Length, data)).Error
            );

            (int exitCode, string output) = await server.StopAsync("TERM");

            Assert.Equal(0, exitCode);
            Assert.Contains("flushed and checkpointed; stopped", output, StringComparison.Ordinal);
        }

        using var restarted = await ServerProcess.StartAsync(temp, image);
        NbdTestClient again = await restarted.ConnectAsync();
        NbdTestReply read = await again.RequestAsync(NbdCommand.Read, 0, (uint)data.Length);

        Assert.Contains("recovered (", restarted.Banner, StringComparison.Ordinal);
        Assert.Contains(", 0 units replayed)", restarted.Banner, StringComparison.Ordinal);
        Assert.Equal(data, read.Data);
    }

    [Fact]
    public async Task ASigkillIsAPowerCutAndEveryFlushedWriteSurvivesIt()
    {
        using var temp = new TempDirectory();
        string image = temp.File("ssd.img");
        byte[] flushed = Pattern(0x11, 128 << 10);
        byte[] unflushed = Pattern(0x22, 64 << 10);
        using (var server = await ServerProcess.StartAsync(temp, image))
        {
            NbdTestClient client = await server.ConnectAsync();
            Assert.Equal(
                NbdError.None,
                (await client.RequestAsync(NbdCommand.Write, 0, (uint)flushed.Length, flushed)).Error
            );
            Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Flush, 0, 0)).Error);
            Assert.Equal(
                NbdError.None,
                (await client.RequestAsync(NbdCommand.Write, 1 << 20, (uint)unflushed.Length, unflushed)).Error
            );

            server.Kill();
        }

        using var restarted = await ServerProcess.StartAsync(temp, image);
        NbdTestClient again = await restarted.ConnectAsync();
        NbdTestReply read = await again.RequestAsync(NbdCommand.Read, 0, (uint)flushed.Length);

        Assert.Contains("recovered (", restarted.Banner, StringComparison.Ordinal);
        Assert.Equal(flushed, read.Data);
    }

    [Fact]
    public async Task BlockStatusShowsDataWhereWrittenAndHolesWhereTrimmedOrNeverWritten()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, temp.File("ssd.img"));
        NbdTestClient client = await server.ConnectAsync();
        Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Write, 0, 65536, Pattern(1, 65536))).Error);
        Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Trim, 16384, 16384)).Error);
        Assert.Equal(
            NbdError.None,
            (await client.RequestAsync(NbdCommand.WriteZeroes, 32768, 8192, flags: NbdCommandModifiers.NoHole)).Error
        );
        Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Read, 65536, 16384)).Error);

        NbdTestReply status = await client.RequestAsync(NbdCommand.BlockStatus, 0, 131072);

        const NbdAllocationState Hole = NbdAllocationState.Hole | NbdAllocationState.Zero;
        Assert.Equal(
            [(16384u, NbdAllocationState.None), (16384u, Hole), (32768u, NbdAllocationState.None), (65536u, Hole)],
            status.Extents
        );
    }

    [Theory]
    [InlineData(
        "nbd://0.0.0.0:10899",
        "0.0.0.0 is not a loopback address; serving it to the network needs --allow-remote (and, so that not anyone who can reach it reads and writes, --tls require with --tls-verify-peer)"
    )]
    [InlineData(
        "http://127.0.0.1:10899",
        "--listen: 'http://127.0.0.1:10899' is not nbd://HOST[:PORT] or nbd+unix:///?socket=PATH"
    )]
    [InlineData("nbd+unix:///ssd", "names no socket")]
    public void ABadListenAddressIsRefusedByName(string uri, string expected)
    {
        var (exitCode, _, error) = EmulatorProcess.Run("serve", "--config", "tiny", "--listen", uri);

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APowerCutOverTheManagementEndpointEndsConnectionsAndFlushedWritesSurvive()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, temp.File("ssd.img"), control: true);
        byte[] flushed = Pattern(0x33, 128 << 10);
        NbdTestClient client = await server.ConnectAsync();
        Assert.Equal(
            NbdError.None,
            (await client.RequestAsync(NbdCommand.Write, 0, (uint)flushed.Length, flushed)).Error
        );
        Assert.Equal(NbdError.None, (await client.RequestAsync(NbdCommand.Flush, 0, 0)).Error);
        Assert.Equal(
            NbdError.None,
            (await client.RequestAsync(NbdCommand.Write, 1 << 20, 65536, Pattern(0x44, 65536))).Error
        );
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await using ManagementClient management = await ManagementClient.ConnectAsync(server.Control, timeout.Token);

        PowerCutResult cut = await management.Control.PowerCutAsync(timeout.Token);

        Assert.Equal(1, cut.ConnectionsEnded);
        await Assert.ThrowsAnyAsync<Exception>(() => client.RequestAsync(NbdCommand.Read, 0, 4096));
        NbdTestClient again = await server.ConnectAsync();
        Assert.Equal(flushed, (await again.RequestAsync(NbdCommand.Read, 0, (uint)flushed.Length)).Data);
        TelemetrySample sample = await management.TelemetryAsync(timeout.Token).FirstAsync(timeout.Token);
        Assert.Equal(1, sample.Stats.PowerCuts);
        Assert.Equal(1, sample.Stats.Host.Reads);
    }

    [Fact]
    public async Task AClientStalledInTheHandshakeIsCutOffAndOthersAreServed()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, extra: ["--handshake-timeout", "1"]);
        using var stalled = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await stalled.ConnectAsync(new UnixDomainSocketEndPoint(temp.File("ssd.sock")));
        byte[] greeting = new byte[18];
        Assert.Equal(18, await stalled.ReceiveAsync(greeting));

        NbdTestClient other = await server.ConnectAsync();
        Assert.Equal(NbdError.None, (await other.RequestAsync(NbdCommand.Write, 0, 4096, Pattern(9, 4096))).Error);

        // Nothing more is sent: within the 1 s timeout (with slack, but well under the default 10 s)
        // the server closes the connection.
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(6));
        int received = await stalled.ReceiveAsync(new byte[16], SocketFlags.None, wait.Token);
        Assert.Equal(0, received);
        Assert.Equal(Pattern(9, 4096), (await other.RequestAsync(NbdCommand.Read, 0, 4096)).Data);
    }

    [Theory]
    [InlineData(
        "tcp://0.0.0.0:10898",
        "--control: 0.0.0.0:10898 is not a loopback address, and the management endpoint can cut the power: off loopback it needs TLS and a check of the client. Write --control tls://0.0.0.0:10898"
    )]
    [InlineData("tcp://127.0.0.1", "--control: 'tcp://127.0.0.1' needs a host and a port from 1 to 65535")]
    [InlineData(
        "http://x",
        "--control: 'http://x' is not a management endpoint; write tcp://HOST:PORT, tls://HOST:PORT or unix:PATH"
    )]
    [InlineData("unix:", "names no socket")]
    public void ABadControlAddressIsRefusedByName(string uri, string expected)
    {
        var (exitCode, _, error) = EmulatorProcess.Run(
            "serve",
            "--config",
            "tiny",
            "--listen",
            "nbd://127.0.0.1:10897",
            "--control",
            uri
        );

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APortInUseIsRefusedBeforeAnImageIsMade()
    {
        using var temp = new TempDirectory();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen();
        int port = ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port;
        string image = temp.File("new.img");

        var (exitCode, output, error) = await Task.Run(() =>
            EmulatorProcess.Run("serve", "--config", "tiny", "--image", image, "--listen", $"nbd://127.0.0.1:{port}")
        );

        Assert.Equal(2, exitCode);
        Assert.Contains(
            $"--listen: cannot listen on nbd://127.0.0.1:{port}/: the address is in use",
            error,
            StringComparison.Ordinal
        );
        Assert.Empty(output);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void AnImageInADirectoryThatIsNotThereIsNamedNotItsTemporaryFile()
    {
        using var temp = new TempDirectory();
        string image = temp.File("missing/ssd.img");

        var (exitCode, _, error) = EmulatorProcess.Run(
            "serve",
            "--config",
            "tiny",
            "--image",
            image,
            "--listen",
            "nbd://127.0.0.1:10896"
        );

        Assert.Equal(2, exitCode);
        Assert.Contains(
            $"{image}: cannot be created: the directory {temp.File("missing")} does not exist",
            error,
            StringComparison.Ordinal
        );
        Assert.DoesNotContain(".creating", error, StringComparison.Ordinal);
    }

    private static byte[] Pattern(byte seed, int length) =>
        [.. Enumerable.Range(0, length).Select(i => (byte)(seed + (i * 13)))];
}
