using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Controller.Tests.Support;

/// <summary>
/// <c>nbdkit memory SIZE</c> on a Unix socket in a temporary directory, ready when a client can
/// connect (its socket file appears before it listens); what it says on stderr is kept, so a test
/// that finds it gone can say why.
/// </summary>
internal sealed class NbdkitProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private NbdkitProcess(Process process, string socket)
    {
        _process = process;
        Socket = socket;
    }

    public string Socket { get; }

    /// <summary>The URI of its one export.</summary>
    public string Uri => $"nbd+unix:///?socket={Socket}";

    public static async Task<NbdkitProcess> StartAsync(TempDirectory temp, string size)
    {
        // nbdkit has been seen to leave during start-up in the full suite (exit 143, then 0, after a
        // normal start): one more try, and the failure says what both runs printed.
        try
        {
            return await StartOnceAsync(temp, size);
        }
        catch (InvalidOperationException first) when (first.Message.StartsWith("nbdkit exited", StringComparison.Ordinal))
        {
            try
            {
                return await StartOnceAsync(temp, size);
            }
            catch (InvalidOperationException second)
            {
                throw new InvalidOperationException($"{second.Message}\n(an earlier start: {first.Message})", second);
            }
        }
    }

    private static async Task<NbdkitProcess> StartOnceAsync(TempDirectory temp, string size)
    {
        string nbdkit = ExternalTool.Require("nbdkit", "nbdkit");
        string socket = temp.File($"kit-{Guid.NewGuid():N}.sock");
        var start = new ProcessStartInfo(nbdkit, ["-f", "-v", "-U", socket, "memory", size]) { RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        Process process = Process.Start(start) ?? throw new InvalidOperationException("nbdkit did not start");
        var kit = new NbdkitProcess(process, socket);
        process.ErrorDataReceived += (_, e) =>
        {
            lock (kit._stderr)
            {
                kit._stderr.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            kit.EnsureRunning();
            try
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await probe.ConnectAsync(new UnixDomainSocketEndPoint(socket));
                return kit;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Throws, with what nbdkit said, if it is no longer running.</summary>
    public void EnsureRunning()
    {
        if (_process.HasExited)
        {
            lock (_stderr)
            {
                throw new InvalidOperationException($"nbdkit exited with {_process.ExitCode}: {_stderr}");
            }
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
