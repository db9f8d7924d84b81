using System.Security.Authentication;
using Controller.Common;
using Controller.Firmware.Host;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>Certificates shared by the TLS tests of one class (RSA keys take a moment to make).</summary>
public sealed class CertificatesFixture : IDisposable
{
    internal TestCertificates Certificates { get; } = TestCertificates.Create();

    /// <inheritdoc />
    public void Dispose() => Certificates.Dispose();
}

/// <summary>
/// NBD_OPT_STARTTLS as doc/proto.md ("TLS support") sets it out, over an in-process pipe: FORCEDTLS
/// (--tls require), SELECTIVETLS with no TLS-only export (--tls on), NOTLS (no certificates), and
/// the client certificate check.
/// </summary>
[Trait("Category", "Unit")]
public sealed class NbdTlsTests(CertificatesFixture fixture) : IClassFixture<CertificatesFixture>
{
    private const long Size = 1 << 20;

    private TestCertificates Certificates => fixture.Certificates;

    /// <summary>Every option the protocol defines but STARTTLS, ABORT and EXPORT_NAME, and one it does not.</summary>
    public static TheoryData<NbdOption> OptionsBeforeTls { get; } =
    [
        NbdOption.List,
        NbdOption.Info,
        NbdOption.Go,
        NbdOption.StructuredReply,
        NbdOption.ListMetaContext,
        NbdOption.SetMetaContext,
        (NbdOption)4,
        (NbdOption)99,
    ];

    [Theory]
    [MemberData(nameof(OptionsBeforeTls))]
    public async Task ATlsRequiredServerAnswersEveryOptionBeforeStartTlsWithTlsRequiredAndGoesOn(NbdOption option)
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Required, verifyPeer: false));
        await session.Client.GreetAsync();

        await session.Client.SendOptionAsync(option, OptionData(option));
        (NbdOptionReply reply, _) = await session.Client.ReadOptionReplyAsync(option);
        await session.Client.SendOptionAsync(NbdOption.Abort, []);
        (NbdOptionReply abort, _) = await session.Client.ReadOptionReplyAsync(NbdOption.Abort);

        Assert.Equal(NbdOptionReply.ErrorTlsRequired, reply);
        Assert.Equal(NbdOptionReply.Ack, abort);
        Assert.Empty(export.Executed);
    }

    [Fact]
    public async Task ExportNameBeforeStartTlsOnATlsRequiredServerEndsTheSession()
    {
        // NBD_OPT_EXPORT_NAME has no error reply: the server must end the session.
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Required, verifyPeer: false));
        await session.Client.GreetAsync();

        await session.Client.SendOptionAsync(NbdOption.ExportName, "ssd"u8.ToArray());

        await Assert.ThrowsAsync<NbdProtocolException>(() => session.Server.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AfterStartTlsTheSessionGoesOverTlsAndASecondStartTlsIsInvalid()
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Required, verifyPeer: true));
        await session.Client.GreetAsync();

        NbdTestClient secured = await session.StartTlsAsync(Certificates.Client);
        await secured.SendOptionAsync(NbdOption.StartTls, []);
        (NbdOptionReply again, _) = await secured.ReadOptionReplyAsync(NbdOption.StartTls);
        await secured.GoAsync("ssd");
        byte[] data = [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 13))];
        NbdTestReply write = await secured.RequestAsync(NbdCommand.Write, 8192, 4096, data);
        NbdTestReply read = await secured.RequestAsync(NbdCommand.Read, 8192, 4096);

        Assert.Equal(NbdOptionReply.ErrorInvalid, again);
        Assert.Equal(NbdError.None, write.Error);
        Assert.Equal(data, read.Data);
        Assert.Contains((HostOpcode.Write, HostCommandOptions.None, 8192L, 4096L), export.Executed);
    }

    [Fact]
    public async Task StartTlsWithDataIsInvalidAndTheSessionGoesOnInTheClear()
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Allowed, verifyPeer: false));
        await session.Client.GreetAsync();

        await session.Client.SendOptionAsync(NbdOption.StartTls, [1, 2, 3]);
        (NbdOptionReply reply, _) = await session.Client.ReadOptionReplyAsync(NbdOption.StartTls);
        (long size, _, _) = await session.Client.GoAsync("ssd");

        Assert.Equal(NbdOptionReply.ErrorInvalid, reply);
        Assert.Equal(Size, size);
    }

    [Fact]
    public async Task WithTlsAllowedAClientMayStayInTheClearOrStartTls()
    {
        var export = new MemoryExport(Size);
        await using var clear = NbdSession.Start(export, Tls(NbdTlsMode.Allowed, verifyPeer: false));
        await using var secured = NbdSession.Start(export, Tls(NbdTlsMode.Allowed, verifyPeer: false));
        await clear.Client.GreetAsync();
        await secured.Client.GreetAsync();

        (long clearSize, _, _) = await clear.Client.GoAsync("ssd");
        NbdTestClient tls = await secured.StartTlsAsync(Certificates.AuthorityOnly);
        (long tlsSize, _, _) = await tls.GoAsync("ssd");

        Assert.Equal(Size, clearSize);
        Assert.Equal(Size, tlsSize);
    }

    [Fact]
    public async Task WithoutTlsStartTlsIsRefusedByPolicyAndTheSessionGoesOn()
    {
        await using var session = NbdSession.Start(new MemoryExport(Size), tls: null);
        await session.Client.GreetAsync();

        await session.Client.SendOptionAsync(NbdOption.StartTls, []);
        (NbdOptionReply reply, byte[] message) = await session.Client.ReadOptionReplyAsync(NbdOption.StartTls);
        (long size, _, _) = await session.Client.GoAsync("ssd");

        Assert.Equal(NbdOptionReply.ErrorPolicy, reply);
        Assert.Contains("--tls", System.Text.Encoding.UTF8.GetString(message), StringComparison.Ordinal);
        Assert.Equal(Size, size);
    }

    [Fact]
    public async Task ATlsRequiredServerEndsASessionWithoutFixedNewstyle()
    {
        await using var session = NbdSession.Start(new MemoryExport(Size), Tls(NbdTlsMode.Required, verifyPeer: false));

        await session.Client.GreetAsync(NbdClientFeatures.NoZeroes);

        NbdProtocolException e = await Assert.ThrowsAsync<NbdProtocolException>(() =>
            session.Server.WaitAsync(TimeSpan.FromSeconds(10))
        );
        Assert.Contains("fixed newstyle", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BytesSentAfterStartTlsBeforeItsReplyEndTheSession()
    {
        await using var session = NbdSession.Start(new MemoryExport(Size), Tls(NbdTlsMode.Required, verifyPeer: false));
        await session.Client.GreetAsync();

        // The option and a request header in one write: the server has read past the option.
        await session.Client.SendOptionAsync(NbdOption.StartTls, []);
        await session.ClientSide.WriteAsync(new byte[28]);
        await session.ClientSide.FlushAsync();

        await Assert.ThrowsAsync<NbdProtocolException>(() => session.Server.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData("foreign")]
    [InlineData("none")]
    public async Task WithPeerVerificationAClientCertificateFromAnotherAuthorityOrNoneIsRefused(string client)
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Required, verifyPeer: true));
        await session.Client.GreetAsync();

        Exception clientSide = await Record.ExceptionAsync(async () =>
        {
            NbdTestClient tls = await session.StartTlsAsync(
                client == "foreign" ? Certificates.Foreign : Certificates.AuthorityOnly
            );
            await tls.GoAsync("ssd");
        });

        Assert.NotNull(clientSide);
        await Assert.ThrowsAsync<AuthenticationException>(() => session.Server.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Empty(export.Executed);
    }

    [Fact]
    public async Task WithPeerVerificationTheServersOwnCertificateIsNoClientCertificate()
    {
        // Signed by the right authority, but for server authentication only.
        using var serverAsClient = new TempDirectory();
        File.Copy(Path.Combine(Certificates.Server, TlsCredentials.CaFile), serverAsClient.File(TlsCredentials.CaFile));
        File.Copy(
            Path.Combine(Certificates.Server, TlsCredentials.ServerCertificateFile),
            serverAsClient.File(TlsCredentials.ClientCertificateFile)
        );
        File.Copy(
            Path.Combine(Certificates.Server, TlsCredentials.ServerKeyFile),
            serverAsClient.File(TlsCredentials.ClientKeyFile)
        );
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export, Tls(NbdTlsMode.Required, verifyPeer: true));
        await session.Client.GreetAsync();

        Exception? clientSide = await Record.ExceptionAsync(async () =>
            await (await session.StartTlsAsync(serverAsClient.Path)).GoAsync("ssd")
        );

        Assert.NotNull(clientSide);
        await Assert.ThrowsAsync<AuthenticationException>(() => session.Server.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AServerCertificateFromAnotherAuthorityIsRefusedByTheClient()
    {
        // The client trusts the foreign authority only: the server's certificate does not chain to it.
        using var wrongTrust = new TempDirectory();
        File.Copy(
            Path.Combine(Certificates.Foreign, TlsCredentials.ClientCertificateFile),
            wrongTrust.File(TlsCredentials.CaFile)
        );
        await using var session = NbdSession.Start(new MemoryExport(Size), Tls(NbdTlsMode.Required, verifyPeer: false));
        await session.Client.GreetAsync();

        await Assert.ThrowsAsync<AuthenticationException>(() => session.StartTlsAsync(wrongTrust.Path));
    }

    /// <summary>
    /// Seeded random and mutated streams at a TLS-required server, the STARTTLS exchange included:
    /// none executes a command (nothing passes before TLS, and no scripted bytes complete a TLS
    /// handshake), and the server ends each with a protocol or TLS error, never another.
    /// </summary>
    [Fact]
    public async Task FuzzedStreamsAtATlsRequiredServerExecuteNothing()
    {
        var export = new MemoryExport(Size);

        int ended = await Fuzz(export, Tls(NbdTlsMode.Required, verifyPeer: false), 1500);

        Assert.Empty(export.Executed);
        Assert.True(ended > 0);
    }

    [Fact]
    public async Task TheTlsFuzzCanaryTheSameStreamsExecuteCommandsWhenTlsIsOnlyAllowed()
    {
        var export = new MemoryExport(Size);

        await Fuzz(export, Tls(NbdTlsMode.Allowed, verifyPeer: false), 1500);

        Assert.Contains(export.Executed, e => e.Opcode == HostOpcode.Write);
    }

    private static async Task<int> Fuzz(MemoryExport export, NbdTls tls, int cases)
    {
        byte[] clear = SessionBytes(startTls: false);
        byte[] withTls = SessionBytes(startTls: true);
        var prng = new Controller.Common.Prng(20261207);
        int ended = 0;
        for (int i = 0; i < cases; i++)
        {
            byte[] valid = i % 2 == 0 ? clear : withTls;
            byte[] input = (i % 6) switch
            {
                0 or 1 => valid,
                2 or 3 => FuzzBytes.Mutate(prng, valid, 1 + prng.NextInt(6)),
                4 => valid[..prng.NextInt(valid.Length)],
                _ => [.. valid[..prng.NextInt(valid.Length)], .. FuzzBytes.Noise(prng, prng.NextInt(300))],
            };
            using var stream = new ScriptedStream(input);
            using var connection = new NbdConnection(stream, [export], new NbdServerOptions { Tls = tls });
            try
            {
                await connection.RunAsync(CancellationToken.None, CancellationToken.None);
            }
            catch (Exception e)
                when (e is NbdProtocolException or EndOfStreamException or AuthenticationException or IOException)
            {
                ended++;
            }
        }

        return ended;
    }

    /// <summary>
    /// What a client sends: flags, (STARTTLS and a TLS record's worth of bytes,) structured replies, GO, then a write.
    /// </summary>
    private static byte[] SessionBytes(bool startTls)
    {
        using var bytes = new MemoryStream();
        var client = new NbdTestClient(bytes);
        bytes.Write([0, 0, 0, 3]);
        if (startTls)
        {
            client.SendOptionAsync(NbdOption.StartTls, []).GetAwaiter().GetResult();
            // A TLS handshake record header and some of a ClientHello.
            bytes.Write([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03]);
            bytes.Write(new byte[61]);
        }

        client.SendOptionAsync(NbdOption.StructuredReply, []).GetAwaiter().GetResult();
        client.SendOptionAsync(NbdOption.Go, NbdTestClient.InfoData("ssd")).GetAwaiter().GetResult();
        client
            .SendRequestAsync(NbdCommand.Write, NbdCommandModifiers.Fua, 4096, 512, new byte[512])
            .GetAwaiter()
            .GetResult();
        client.SendRequestAsync(NbdCommand.Disconnect, NbdCommandModifiers.None, 0, 0).GetAwaiter().GetResult();
        return bytes.ToArray();
    }

    private static byte[] OptionData(NbdOption option) =>
        option switch
        {
            NbdOption.Info or NbdOption.Go => NbdTestClient.InfoData("ssd"),
            NbdOption.ListMetaContext or NbdOption.SetMetaContext => NbdTestClient.MetaContextData(
                "ssd",
                NbdProtocol.BaseAllocation
            ),
            _ => [],
        };

    private NbdTls Tls(NbdTlsMode mode, bool verifyPeer)
    {
        TlsCredentials credentials = TlsCredentials.ForServer(Certificates.Server, verifyPeer);
        return new NbdTls(mode, credentials.AuthenticateAsServerAsync);
    }
}
