using System.Security.Authentication;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;
using Nerdbank.Streams;

namespace Controller.Tests.Support;

/// <summary>
/// The NBD server on one end of an in-process duplex pipe and a test client on the other, with TLS when asked.
/// </summary>
internal sealed class NbdSession : IAsyncDisposable
{
    private readonly NbdConnection _connection;
    private Stream? _secured;

    private NbdSession(Stream clientSide, NbdConnection connection, Task server)
    {
        ClientSide = clientSide;
        _connection = connection;
        Client = new NbdTestClient(clientSide);
        Server = server;
    }

    /// <summary>The client's end of the pipe.</summary>
    public Stream ClientSide { get; }

    /// <summary>A client on it, in the clear.</summary>
    public NbdTestClient Client { get; }

    /// <summary>
    /// The connection's run: it ends when the client leaves, or throws as the server ends the session.
    /// </summary>
    public Task Server { get; }

    public static NbdSession Start(INbdExport export, NbdTls? tls = null)
    {
        var (serverSide, clientSide) = FullDuplexStream.CreatePair();
        var connection = new NbdConnection(serverSide, [export], new NbdServerOptions { Tls = tls });
        return new NbdSession(
            clientSide,
            connection,
            connection.RunAsync(CancellationToken.None, CancellationToken.None)
        );
    }

    /// <summary>
    /// NBD_OPT_STARTTLS, its ACK, then the client's side of TLS with the credentials in <paramref name="directory"/>.
    /// </summary>
    public async Task<NbdTestClient> StartTlsAsync(string directory)
    {
        await Client.SendOptionAsync(NbdOption.StartTls, []);
        Assert.Equal(NbdOptionReply.Ack, (await Client.ReadOptionReplyAsync(NbdOption.StartTls)).Type);
        _secured = await TlsCredentials
            .ForClient(directory)
            .AuthenticateAsClientAsync(ClientSide, "localhost", CancellationToken.None);
        return new NbdTestClient(_secured);
    }

    public async ValueTask DisposeAsync()
    {
        if (_secured is not null)
        {
            await _secured.DisposeAsync();
        }

        await ClientSide.DisposeAsync();
        try
        {
            await Server.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e)
            when (e
                    is NbdProtocolException
                        or EndOfStreamException
                        or IOException
                        or ObjectDisposedException
                        or AuthenticationException
            ) { }

        _connection.Dispose();
    }
}
