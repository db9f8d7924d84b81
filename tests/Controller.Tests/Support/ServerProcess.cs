using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Controller.Tests.Support;

/// <summary>A serve process on a Unix socket in a temporary directory.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _socket;
    private readonly List<Socket> _connections = [];

    private ServerProcess(Process process, string socket, string banner)
    {
        _process = process;
        _socket = socket;
        Banner = banner;
    }

    public string Banner { get; }

    /// <summary>The URI clients connect to, as libnbd and qemu write it.</summary>
    public string Uri => $"nbd+unix:///ssd?socket={_socket}";

    /// <summary>The management endpoint, when started with one.</summary>
    public string Control { get; private init; } = "";

    public static async Task<ServerProcess> StartAsync(TempDirectory temp, string? image = null, string config = "tiny", bool control = false, params string[] extra)
    {
        string socket = temp.File("ssd.sock");
        string controlUri = $"unix:{temp.File("ssd.ctl")}";
        string[] args = ["serve", "--config", config, "--listen", $"nbd+unix:///?socket={socket}", .. image is null ? Array.Empty<string>() : ["--image", image], .. control ? ["--control", controlUri] : Array.Empty<string>(), .. extra];
        Process process = EmulatorProcess.Start(args);
        string banner = string.Empty;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            banner += line + "\n";
            if (line.Contains("listening on", StringComparison.Ordinal))
            {
                return new ServerProcess(process, socket, banner) { Control = control ? controlUri : "" };
            }
        }

        throw new InvalidOperationException($"serve did not start: {banner}{await process.StandardError.ReadToEndAsync()}");
    }

    public async Task<NbdTestClient> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _connections.Add(socket);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socket));
        var client = new NbdTestClient(new NetworkStream(socket, ownsSocket: false));
        await client.GreetAsync();
        await client.GoAsync("ssd", structured: true, allocation: true);
        return client;
    }

    public async Task<(int ExitCode, string Output)> StopAsync(string signal)
    {
        using (Process kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        string rest = await _process.StandardOutput.ReadToEndAsync();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return (_process.ExitCode, rest);
    }

    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        _connections.ForEach(c => c.Dispose());
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
