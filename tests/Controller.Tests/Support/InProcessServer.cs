using System.Collections.Concurrent;
using System.Net.Sockets;
using Controller.Hosting;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;

namespace Controller.Tests.Support;

/// <summary>
/// An export served in this process on a Unix socket in a temporary directory, as
/// <c>ssd-emulator serve</c> serves it, so a test can put a decorator (a canary) between the
/// server and the controller, or reach the controller's management calls directly.
/// </summary>
internal sealed class InProcessServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public InProcessServer(TempDirectory temp, INbdExport export)
    {
        ArgumentNullException.ThrowIfNull(temp);
        string socketPath = temp.File("in-process.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(8);
        var clients = new NbdService.NbdClients(
            export,
            new NbdServerOptions(),
            TimeSpan.FromSeconds(10),
            new ManagementLog(null),
            new ConcurrentDictionary<Socket, string>(),
            "ssd-emulator"
        );
        _accepting = AcceptAsync(clients, _stop.Token);
        Uri = $"nbd+unix:///{export.Name}?socket={socketPath}";
    }

    /// <summary>The URI clients connect to.</summary>
    public string Uri { get; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _accepting;
        _listener.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync(NbdService.NbdClients clients, CancellationToken stop)
    {
        var served = new List<Task>();
        try
        {
            while (true)
            {
                Socket client = await _listener.AcceptAsync(stop);
                served.Add(clients.ServeAsync(client, stop));
            }
        }
        catch (OperationCanceledException) { }

        await Task.WhenAll(served);
    }
}
