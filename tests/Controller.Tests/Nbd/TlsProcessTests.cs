using System.Net;
using System.Net.Sockets;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>
/// <c>ssd-emulator serve --tls require --tls-verify-peer</c> as a process, against the standard
/// clients over TLS (nbdinfo, qemu-io, nbdcopy) and ssdhost; clients in the clear or with a
/// certificate from another authority are refused. The management endpoint off loopback.
/// </summary>
[Trait("Category", "Interop")]
public sealed class TlsProcessTests(CertificatesFixture fixture) : IClassFixture<CertificatesFixture>
{
    private TestCertificates Certificates => fixture.Certificates;

    [SkippableFact]
    public async Task NbdinfoQemuIoAndNbdcopyMoveDataOverTlsAndAClientInTheClearIsRefused()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        string nbdcopy = ExternalTool.Require("nbdcopy", "libnbd-bin");
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        int port = FreePort();
        using var server = await StartAsync(temp, port, verifyPeer: true);
        string uri = $"nbds://localhost:{port}/ssd?tls-certificates={Certificates.Client}";
        byte[] data = [.. Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 31 + (i >> 12)))];
        File.WriteAllBytes(temp.File("in.bin"), data);

        var info = ExternalTool.Run(nbdinfo, uri);
        var qemu = ExternalTool.Run(
            qemuIo,
            "--object",
            $"tls-creds-x509,id=tls0,endpoint=client,dir={Certificates.Client}",
            "--image-opts",
            $"driver=nbd,server.type=inet,server.host=localhost,server.port={port},export=ssd,tls-creds=tls0",
            "-c",
            "write -P 0xab 2M 64k",
            "-c",
            "read -P 0xab 2M 64k"
        );
        var copyIn = ExternalTool.Run(nbdcopy, temp.File("in.bin"), uri);
        var copyOut = ExternalTool.Run(nbdcopy, uri, temp.File("out.bin"));
        var clear = ExternalTool.Run(nbdinfo, $"nbd://localhost:{port}/ssd");

        Assert.True(info.ExitCode == 0, info.Output + info.Error);
        Assert.Contains("newstyle-fixed with TLS", info.Output, StringComparison.Ordinal);
        Assert.True(qemu.ExitCode == 0, qemu.Output + qemu.Error);
        Assert.DoesNotContain("Pattern verification failed", qemu.Output, StringComparison.Ordinal);
        Assert.Contains("read 65536/65536 bytes", qemu.Output, StringComparison.Ordinal);
        Assert.True(copyIn.ExitCode == 0, copyIn.Output + copyIn.Error);
        Assert.True(copyOut.ExitCode == 0, copyOut.Output + copyOut.Error);
        Assert.Equal(data, File.ReadAllBytes(temp.File("out.bin"))[..data.Length]);
        Assert.NotEqual(0, clear.ExitCode);
    }

    [SkippableFact]
    public async Task AClientCertificateFromAnotherAuthorityOrNoneIsRefusedWithPeerVerification()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        using var temp = new TempDirectory();
        int port = FreePort();
        using var server = await StartAsync(temp, port, verifyPeer: true);

        var foreign = ExternalTool.Run(nbdinfo, $"nbds://localhost:{port}/ssd?tls-certificates={Certificates.Foreign}");
        var none = ExternalTool.Run(
            nbdinfo,
            $"nbds://localhost:{port}/ssd?tls-certificates={Certificates.AuthorityOnly}"
        );
        var host = await HostRun.RunAsync(
            "info",
            $"nbds://localhost:{port}/ssd",
            "--tls-certificates",
            Certificates.Foreign
        );
        var good = ExternalTool.Run(nbdinfo, $"nbds://localhost:{port}/ssd?tls-certificates={Certificates.Client}");

        Assert.NotEqual(0, foreign.ExitCode);
        Assert.NotEqual(0, none.ExitCode);
        Assert.Equal(2, host.ExitCode);
        Assert.Contains("client-cert.pem", host.Error, StringComparison.Ordinal);
        Assert.True(good.ExitCode == 0, good.Output + good.Error);
    }

    [Fact]
    public async Task SsdhostWritesAndReadsOverTlsAndRefusesToFallBackToTheClear()
    {
        using var temp = new TempDirectory();
        int port = FreePort();
        using var tlsServer = await StartAsync(temp, port, verifyPeer: false);
        using var clearTemp = new TempDirectory();
        int clearPort = FreePort();
        using var clearServer = await ServerProcess.StartAsync(
            clearTemp,
            extra: ["--listen", $"nbd://127.0.0.1:{clearPort}"]
        );
        string uri = $"nbds://127.0.0.1:{port}/ssd";

        var write = await HostRun.RunAsync(
            "write",
            uri,
            "64k",
            "--length",
            "128k",
            "--pattern",
            "0x5c",
            "--tls-certificates",
            Certificates.AuthorityOnly
        );
        var read = await HostRun.RunAsync(
            "read",
            uri,
            "64k",
            "128k",
            "--expect-pattern",
            "0x5c",
            "--tls-certificates",
            Certificates.AuthorityOnly
        );
        var unix = await HostRun.RunAsync(
            "read",
            tlsServer.Uri.Replace("nbd+unix", "nbds+unix", StringComparison.Ordinal),
            "64k",
            "4k",
            "--expect-pattern",
            "0x5c",
            "--tls-certificates",
            Certificates.AuthorityOnly
        );
        var noCertificates = await HostRun.RunAsync("info", uri);
        var refused = await HostRun.RunAsync(
            "info",
            $"nbds://127.0.0.1:{clearPort}/ssd",
            "--tls-certificates",
            Certificates.AuthorityOnly
        );

        Assert.True(write.ExitCode == 0, write.Error);
        Assert.True(read.ExitCode == 0, read.Error);
        Assert.True(unix.ExitCode == 0, unix.Error);
        Assert.Equal(2, noCertificates.ExitCode);
        Assert.Contains("--tls-certificates", noCertificates.Error, StringComparison.Ordinal);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("refused TLS", refused.Error, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TheCertificatesTheReadmeHasUsersMakeServeTlsWithPeerVerification()
    {
        string certtool = ExternalTool.Require("certtool", "gnutls-bin");
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        Assert.NotEmpty(certtool);
        using var temp = new TempDirectory();
        string certificates = temp.File("tls");
        var made = ExternalTool.Run(
            "/bin/sh",
            Repository.PathOf("hw-config", "raspberrypi", "make-tls-certificates.sh"),
            "localhost",
            certificates,
            "test-pc"
        );
        Assert.True(made.ExitCode == 0, made.Output + made.Error);
        int port = FreePort();
        using var server = await ServerProcess.StartAsync(
            temp,
            extra:
            [
                "--listen",
                $"nbd://127.0.0.1:{port}",
                "--tls",
                "require",
                "--tls-certificates",
                Path.Combine(certificates, "server"),
                "--tls-verify-peer",
            ]
        );

        var info = ExternalTool.Run(
            nbdinfo,
            $"nbds://localhost:{port}/ssd?tls-certificates={Path.Combine(certificates, "client")}"
        );
        var host = await HostRun.RunAsync(
            "write",
            $"nbds://127.0.0.1:{port}/ssd",
            "0",
            "--length",
            "64k",
            "--pattern",
            "0x42",
            "--tls-certificates",
            Path.Combine(certificates, "client")
        );

        Assert.True(info.ExitCode == 0, info.Output + info.Error);
        Assert.Contains("with TLS", info.Output, StringComparison.Ordinal);
        Assert.True(host.ExitCode == 0, host.Error);
        Assert.False(
            File.Exists(Path.Combine(certificates, "server", "ca-key.pem")),
            "the authority's key stays off the board"
        );
    }

    [Theory]
    [InlineData("--tls", "maybe", "'maybe' is not off, on or require")]
    [InlineData("--tls", "require", "needs --tls-certificates DIR")]
    [InlineData("--tls-verify-peer", null, "needs --tls-certificates DIR")]
    [InlineData("--tls-certificates", "/nonexistent/certs", "'/nonexistent/certs' does not exist")]
    [InlineData("--control", "tcp://0.0.0.0:10999", "Write --control tls://0.0.0.0:10999")]
    [InlineData("--control", "tls://127.0.0.1:10999", "needs --tls-certificates DIR")]
    public void BadTlsAndControlOptionsAreRefusedNamingTheValueBeforeAnythingIsServed(
        string option,
        string? value,
        string message
    )
    {
        var (exitCode, _, error) = EmulatorProcess.Run([
            "serve",
            "--config",
            "tiny",
            "--listen",
            "nbd://127.0.0.1:1",
            option,
            .. value is null ? Array.Empty<string>() : [value],
        ]);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void AManagementEndpointOffLoopbackOverTlsWithoutAClientCheckIsRefused()
    {
        var (exitCode, _, error) = EmulatorProcess.Run(
            "serve",
            "--config",
            "tiny",
            "--listen",
            "nbd://127.0.0.1:1",
            "--control",
            "tls://0.0.0.0:10999",
            "--tls-certificates",
            Certificates.Server
        );

        Assert.Equal(2, exitCode);
        Assert.Contains("--tls-verify-peer", error, StringComparison.Ordinal);
        Assert.Contains("--control-token", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheManagementEndpointOverTlsTakesTheRightTokenOrClientCertificateOnly()
    {
        using var temp = new TempDirectory();
        string token = temp.File("token");
        File.WriteAllText(token, "s3cret-token-of-enough-length\n");
        File.WriteAllText(temp.File("wrong"), "not-the-secret-token-at-all");
        int port = FreePort();
        using var server = await ServerProcess.StartAsync(
            temp,
            extra:
            [
                "--control",
                $"tls://127.0.0.1:{port}",
                "--tls",
                "on",
                "--tls-certificates",
                Certificates.Server,
                "--control-token",
                token,
            ]
        );
        int certifiedPort = FreePort();
        using var certifiedTemp = new TempDirectory();
        using var certified = await ServerProcess.StartAsync(
            certifiedTemp,
            extra:
            [
                "--control",
                $"tls://127.0.0.1:{certifiedPort}",
                "--tls-certificates",
                Certificates.Server,
                "--tls-verify-peer",
            ]
        );

        var withToken = await HostRun.RunAsync(
            "stats",
            "--control",
            $"tls://127.0.0.1:{port}",
            "--tls-certificates",
            Certificates.AuthorityOnly,
            "--control-token",
            token,
            "--json"
        );
        var wrongToken = await HostRun.RunAsync(
            "stats",
            "--control",
            $"tls://127.0.0.1:{port}",
            "--tls-certificates",
            Certificates.AuthorityOnly,
            "--control-token",
            temp.File("wrong"),
            "--json"
        );
        var inTheClear = await HostRun.RunAsync("stats", "--control", $"tcp://127.0.0.1:{port}", "--json");
        var withCertificate = await HostRun.RunAsync(
            "stats",
            "--control",
            $"tls://127.0.0.1:{certifiedPort}",
            "--tls-certificates",
            Certificates.Client,
            "--json"
        );
        var foreignCertificate = await HostRun.RunAsync(
            "stats",
            "--control",
            $"tls://127.0.0.1:{certifiedPort}",
            "--tls-certificates",
            Certificates.Foreign,
            "--json"
        );

        Assert.True(withToken.ExitCode == 0, withToken.Error);
        Assert.Contains("\"capacityBytes\"", withToken.Output, StringComparison.Ordinal);
        Assert.NotEqual(0, wrongToken.ExitCode);
        Assert.NotEqual(0, inTheClear.ExitCode);
        Assert.True(withCertificate.ExitCode == 0, withCertificate.Error);
        Assert.NotEqual(0, foreignCertificate.ExitCode);
    }

    private async Task<ServerProcess> StartAsync(TempDirectory temp, int port, bool verifyPeer) =>
        await ServerProcess.StartAsync(
            temp,
            extra:
            [
                "--listen",
                $"nbd://127.0.0.1:{port}",
                "--tls",
                "require",
                "--tls-certificates",
                Certificates.Server,
                .. verifyPeer ? ["--tls-verify-peer"] : Array.Empty<string>(),
            ]
        );

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
