using System.Collections.Concurrent;
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

    /// <summary>
    /// nbdkit asks the kernel for SIGTERM when the thread that started it exits
    /// (PR_SET_PDEATHSIG), and test code runs on pool threads that come and go: a test once lost
    /// its nbdkit that way milliseconds after starting it. So every nbdkit is started from one
    /// thread that lives as long as the test process.
    /// </summary>
    private static readonly BlockingCollection<(
        ProcessStartInfo Start,
        TaskCompletionSource<Process> Started
    )> s_starts = StartLauncher();

    public static async Task<NbdkitProcess> StartAsync(TempDirectory temp, string size)
    {
        string nbdkit = ExternalTool.Require("nbdkit", "nbdkit");
        string socket = temp.File($"kit-{Guid.NewGuid():N}.sock");
        var start = new ProcessStartInfo(nbdkit, ["-f", "-v", "-U", socket, "memory", size])
        {
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        s_starts.Add((start, started));
        Process process = await started.Task;
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
                // Ready when it greets: the kernel accepts a connection into the backlog of an
                // nbdkit that is already leaving (seen: stopped before its first accept).
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await probe.ConnectAsync(new UnixDomainSocketEndPoint(socket));
                byte[] magic = new byte[8];
                int read = await probe
                    .ReceiveAsync(magic.AsMemory(), SocketFlags.None)
                    .AsTask()
                    .WaitAsync(TimeSpan.FromSeconds(10));
                if (read == 8 && magic.AsSpan().SequenceEqual("NBDMAGIC"u8))
                {
                    return kit;
                }

                await Task.Delay(50);
            }
            catch (Exception e)
                when (e is SocketException or TimeoutException && deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(50);
            }
        }
    }

    private static BlockingCollection<(ProcessStartInfo, TaskCompletionSource<Process>)> StartLauncher()
    {
        var starts = new BlockingCollection<(ProcessStartInfo, TaskCompletionSource<Process>)>();
        var launcher = new Thread(() =>
        {
            foreach ((ProcessStartInfo start, TaskCompletionSource<Process> started) in starts.GetConsumingEnumerable())
            {
                try
                {
                    started.SetResult(
                        Process.Start(start) ?? throw new InvalidOperationException("nbdkit did not start")
                    );
                }
                catch (Exception e)
                {
                    started.SetException(e);
                }
            }
        })
        {
            IsBackground = true,
            Name = "nbdkit launcher",
        };
        launcher.Start();
        return starts;
    }

    /// <summary>Throws, with what nbdkit said, if it is no longer running.</summary>
    public void EnsureRunning()
    {
        if (_process.HasExited)
        {
            lock (_stderr)
            {
                throw new InvalidOperationException(
                    $"nbdkit (pid {_process.Id}) exited with {_process.ExitCode}: {_stderr}"
                );
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
