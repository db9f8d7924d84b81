using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Controller.Tests.Support;

/// <summary>A serving process (ssd-emulator serve, or ssd-board) on a Unix socket in a temporary directory.</summary>
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

    public static async Task<ServerProcess> StartAsync(
        TempDirectory temp,
        string? image = null,
        string config = "tiny",
        bool control = false,
        params string[] extra
    )
    {
        string socket = temp.File("ssd.sock");
        string controlUri = $"unix:{temp.File("ssd.ctl")}";
        string[] args =
        [
            "serve",
            "--config",
            config,
            "--listen",
            $"nbd+unix:///?socket={socket}",
            .. image is null ? Array.Empty<string>() : ["--image", image],
            .. control ? ["--control", controlUri] : Array.Empty<string>(),
            .. extra,
        ];
        return await WaitForBannerAsync(
            EmulatorProcess.Start(args),
            socket,
            control ? controlUri : "",
            TimeSpan.FromMinutes(1)
        );
    }

    /// <summary>
    /// Starts <paramref name="start"/> (told to listen on nbd+unix:///?socket=TEMP/ssd.sock and,
    /// with <paramref name="control"/>, on unix:TEMP/ssd.ctl) and waits up to <paramref name="startup"/> for it to
    /// listen.
    /// </summary>
    public static async Task<ServerProcess> StartCommandAsync(
        TempDirectory temp,
        ProcessStartInfo start,
        bool control,
        TimeSpan startup
    )
    {
        ArgumentNullException.ThrowIfNull(start);
        string socket = temp.File("ssd.sock");
        start.ArgumentList.Add("--listen");
        start.ArgumentList.Add($"nbd+unix:///?socket={socket}");
        if (control)
        {
            start.ArgumentList.Add("--control");
            start.ArgumentList.Add($"unix:{temp.File("ssd.ctl")}");
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        Process process = Process.Start(start)
            ?? throw new InvalidOperationException($"{start.FileName} did not start");
        return await WaitForBannerAsync(process, socket, control ? $"unix:{temp.File("ssd.ctl")}" : "", startup);
    }

    private static async Task<ServerProcess> WaitForBannerAsync(
        Process process,
        string socket,
        string control,
        TimeSpan startup
    )
    {
        using var timeout = new CancellationTokenSource(startup);
        try
        {
            return await ReadBannerAsync(process, socket, control, timeout.Token);
        }
        catch
        {
            // Not serving (timed out, or exited): the process does not outlive the test.
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
            throw;
        }
    }

    private static async Task<ServerProcess> ReadBannerAsync(
        Process process,
        string socket,
        string control,
        CancellationToken timeout
    )
    {
        string banner = string.Empty;
        while (await process.StandardOutput.ReadLineAsync(timeout) is { } line)
        {
            banner += line + "\n";
            if (line.Contains("listening on", StringComparison.Ordinal))
            {
                return new ServerProcess(process, socket, banner) { Control = control };
            }
        }

        throw new InvalidOperationException(
            $"{process.StartInfo.FileName} did not start serving: {banner}{await process.StandardError.ReadToEndAsync(timeout)}"
        );
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
        // Only while it runs: the number of a process that has exited may already be another's.
        if (!_process.HasExited)
        {
            using Process kill = Process.Start(
                "kill",
                ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]
            );
            await kill.WaitForExitAsync();
        }

        string rest = await _process.StandardOutput.ReadToEndAsync();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return (_process.ExitCode, rest);
    }

    /// <summary>What the server wrote on standard error, once it has exited.</summary>
    public Task<string> ErrorsAsync() =>
        _process.HasExited
            ? _process.StandardError.ReadToEndAsync()
            : throw new InvalidOperationException("the server still runs; stop it first");

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
