using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Controller.Cli;
using Controller.Firmware.Config;
using Controller.Firmware.Ftl;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;

namespace Controller.Hosting;

/// <summary>
/// Serving a <see cref="ServedController"/> to hosts, the same for <c>ssd-emulator serve</c> and
/// <c>ssd-board</c>: NBD on TCP and Unix sockets (or the sockets systemd hands over), the management
/// endpoint, and a clean stop when asked (write back, flush, checkpoint). The command line is
/// <see cref="ServeCommandLine"/>'s, the signals <see cref="StopSignals"/>'.
/// </summary>
public static class NbdService
{
    /// <summary>
    /// Listens on every socket of <paramref name="options"/>, before any device is opened: a port
    /// in use or a socket path that cannot be made is a <see cref="UsageException"/> naming it, and
    /// nothing (no image, no recording) has been made yet.
    /// </summary>
    public static BoundSockets Bind(ServeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var listeners = new List<Socket>(options.Activated);
        try
        {
            foreach (EndPoint endpoint in options.Listen)
            {
                listeners.Add(Listen(endpoint, "--listen", Describe(endpoint)));
            }

            Socket? control = options.Control is null
                ? null
                : Listen(options.Control, "--control", ManagementEndpoint.Format(options.Control));
            return new BoundSockets(listeners, control);
        }
        catch
        {
            listeners.ForEach(l => l.Dispose());
            throw;
        }
    }

    /// <summary>
    /// Serves <paramref name="controller"/> on <paramref name="sockets"/> until
    /// <paramref name="stopRequested"/> (SIGINT or SIGTERM: <see cref="StopSignals"/>), then shuts it
    /// down cleanly (write back, flush, checkpoint) and returns 0; or until the device fails, then
    /// stops without touching it and returns 1. Messages start with <paramref name="program"/>.
    /// </summary>
    public static int Run(
        ServedController controller,
        ServeOptions options,
        BoundSockets sockets,
        TextWriter output,
        string program,
        CancellationToken stopRequested
    )
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sockets);
        ArgumentNullException.ThrowIfNull(output);
        string name = controller.Name;
        List<Socket> activated = [.. options.Activated];
        IReadOnlyList<EndPoint> endpoints = options.Listen;
        EndPoint? control = options.Control;
        var log = new ManagementLog(Console.Error);
        var connections = new ConcurrentDictionary<Socket, string>();
        controller.Log = log;
        controller.EndConnections = () => EndAll(connections);
        List<Socket> listeners = sockets.Nbd;
        Socket? controlListener = sockets.Control;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopRequested);
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"{program}: serving export '{name}' ({controller.SizeBytes} bytes; {controller.Description}){(controller.IsReadOnly ? ", read-only" : string.Empty)}; {(controller.Mount.Formatted ? "formatted a fresh NAND" : $"recovered ({controller.Mount.RecoveryPageReads} page reads, {controller.Mount.ReplayedUnits} units replayed)")}"
            )
        );
        foreach (Socket socket in activated)
        {
            output.WriteLine(
                $"  listening on the socket handed over by socket activation (LISTEN_FDS), {socket.LocalEndPoint}"
            );
        }

        foreach (EndPoint endpoint in endpoints)
        {
            string uri = Describe(endpoint, name);
            output.WriteLine($"  listening on {uri}{TlsNote(options)}");
            if (options.TlsMode is null)
            {
                output.WriteLine($"    qemu-io -f raw '{uri}' -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k'");
                output.WriteLine($"    nbdinfo '{uri}'");
            }
            else
            {
                string tlsUri = uri.Replace("nbd://", "nbds://", StringComparison.Ordinal)
                    .Replace("nbd+unix://", "nbds+unix://", StringComparison.Ordinal);
                output.WriteLine($"    nbdinfo '{tlsUri}?tls-certificates=CLIENT-DIR'");
                output.WriteLine($"    ssdhost info '{tlsUri}' --tls-certificates CLIENT-DIR");
            }
        }

        if (control is not null)
        {
            output.WriteLine(
                $"  management endpoint on {(options.ControlTls ? ManagementEndpoint.FormatTls(control) : ManagementEndpoint.Format(control))} (channels control, telemetry, log)"
            );
        }

        output.Flush();
        controller.Failed = _ => stop.Cancel();
        var serverOptions = new NbdServerOptions
        {
            Tls = options.TlsMode is { } mode ? new NbdTls(mode, options.Tls!.AuthenticateAsServerAsync) : null,
        };
        var nbd = new NbdClients(controller, serverOptions, options.HandshakeTimeout, log, connections, program);
        var guard = new ManagementGuard(
            options.ControlTls ? options.Tls : null,
            options.ControlToken,
            options.HandshakeTimeout
        );
        var management = new ManagementServer(controller, log, options.TelemetryInterval);
        Task[] accepting =
        [
            .. listeners.Select(l => AcceptAsync(l, (client, token) => nbd.ServeAsync(client, token), stop.Token)),
            .. controlListener is null
                ? []
                : new[]
                {
                    AcceptAsync(
                        controlListener,
                        (client, token) => ServeManagementAsync(management, guard, client, log, program, token),
                        stop.Token
                    ),
                },
        ];
        try
        {
            // The accept loops end once stop is cancelled; waiting on them (not on the token) lets them finish.
            Task.WaitAll(accepting, CancellationToken.None);
        }
        catch (AggregateException) when (stop.IsCancellationRequested) { }

        listeners.ForEach(l => l.Dispose());
        controlListener?.Dispose();
        foreach (EndPoint endpoint in endpoints.Append(control).OfType<UnixDomainSocketEndPoint>())
        {
            File.Delete(endpoint.ToString()!);
        }

        controller.Shutdown();
        // The hash of the session's execution, as the sim computes it: a replay of its recording ends with the same.
        output.WriteLine(
            string.Create(CultureInfo.InvariantCulture, $"{program}: trace-hash={controller.TraceHash:x16}")
        );
        if (controller.Failure is PowerFailedException powerFail)
        {
            output.WriteLine($"{program}: stopped: {powerFail.Message}; the next boot recovers");
            return 1;
        }

        if (controller.Failure is { } failure)
        {
            output.WriteLine(
                $"{program}: stopped: the device failed ({failure.GetType().Name}: {failure.Message}); nothing was checkpointed, the next boot recovers from the NAND"
            );
            return 1;
        }

        output.WriteLine(
            controller.IsReadOnly
                ? $"{program}: read-only: nothing was written to the NAND; stopped"
                : $"{program}: flushed and checkpointed; stopped"
        );
        return 0;
    }

    private static string TlsNote(ServeOptions options) =>
        options.TlsMode switch
        {
            null => string.Empty,
            NbdTlsMode.Allowed =>
                $" (TLS allowed{(options.Tls!.VerifiesPeer ? ", client certificates checked" : string.Empty)})",
            _ => $" (TLS required{(options.Tls!.VerifiesPeer ? ", client certificates checked" : string.Empty)})",
        };

    private static async Task AcceptAsync(
        Socket listener,
        Func<Socket, CancellationToken, Task> serve,
        CancellationToken stop
    )
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ = serve(client, stop);
        }
    }

    /// <summary>
    /// Ends every NBD connection at once (a power cut): the sockets close under them. Returns how many there were.
    /// </summary>
    private static int EndAll(ConcurrentDictionary<Socket, string> connections)
    {
        int ended = 0;
        foreach (Socket socket in connections.Keys)
        {
            if (connections.TryRemove(socket, out _))
            {
                socket.Dispose();
                ended++;
            }
        }

        return ended;
    }

    /// <summary>
    /// The NBD side of the server: one connection per client, each tracked so a power cut can end it.
    /// </summary>
    /// <param name="export">The export served.</param>
    /// <param name="options">The protocol's options.</param>
    /// <param name="handshakeTimeout">How long a client may take over the handshake.</param>
    /// <param name="log">Where ended connections are told.</param>
    /// <param name="connections">The open connections, by socket.</param>
    /// <param name="program">The name log lines start with.</param>
    public sealed class NbdClients(
        INbdExport export,
        NbdServerOptions options,
        TimeSpan handshakeTimeout,
        ManagementLog log,
        ConcurrentDictionary<Socket, string> connections,
        string program
    )
    {
        private int _accepted;

        /// <summary>Serves one client until it leaves, the handshake times out or <paramref name="stop"/>.</summary>
        public async Task ServeAsync(Socket client, CancellationToken stop)
        {
            ArgumentNullException.ThrowIfNull(client);
            string who = client.RemoteEndPoint?.ToString() is { Length: > 0 } remote ? remote : "a local client";
            connections[client] = who;
            using var handshake = new CancellationTokenSource(handshakeTimeout);
            await using var stream = new NetworkStream(client, ownsSocket: true);
            try
            {
                using var connection = new NbdConnection(stream, [export], options)
                {
                    Number = Interlocked.Increment(ref _accepted),
                };
                await connection.RunAsync(handshake.Token, stop).ConfigureAwait(false);
            }
            catch (Exception e)
                when (e
                        is NbdProtocolException
                            or EndOfStreamException
                            or IOException
                            or SocketException
                            or OperationCanceledException
                            or ObjectDisposedException
                            or System.Security.Authentication.AuthenticationException
                )
            {
                if (!stop.IsCancellationRequested && connections.ContainsKey(client))
                {
                    log.Write($"{program}: connection from {who} ended: {e.Message}");
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A fault of the server's own: told, and the other clients go on being served.
                log.Write($"{program}: connection from {who} failed: {e.GetType().Name}: {e.Message}");
            }
            finally
            {
                connections.TryRemove(client, out _);
            }
        }
    }

    private static async Task ServeManagementAsync(
        ManagementServer server,
        ManagementGuard guard,
        Socket client,
        ManagementLog log,
        string program,
        CancellationToken stop
    )
    {
        await using var stream = new NetworkStream(client, ownsSocket: true);
        try
        {
            Stream? admitted = await guard.AdmitAsync(stream, stop).ConfigureAwait(false);
            if (admitted is null)
            {
                log.Write(
                    $"{program}: management connection from {client.RemoteEndPoint} refused: wrong or missing --control-token"
                );
                return;
            }

            await using (admitted.ConfigureAwait(false))
            {
                await server.ServeAsync(admitted, stop).ConfigureAwait(false);
            }
        }
        catch (Exception e)
            when (e
                    is IOException
                        or SocketException
                        or ObjectDisposedException
                        or Nerdbank.Streams.MultiplexingProtocolException
                        or EndOfStreamException
                        or OperationCanceledException
                        or System.Security.Authentication.AuthenticationException
            )
        {
            // A client that hangs up after its answer (ssdhost power-cut, stats) ends the
            // connection normally: only what else went wrong is worth a line.
            if (!stop.IsCancellationRequested && !HungUp(e))
            {
                log.Write($"{program}: management connection ended: {e.Message}");
            }
        }
    }

    private static bool HungUp(Exception e) =>
        e switch
        {
            EndOfStreamException => true,
            SocketException
            {
                SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown
            } => true,
            IOException { InnerException: { } inner } => HungUp(inner),
            _ => false,
        };

    private static Socket Listen(EndPoint endpoint, string option, string uri)
    {
        if (
            endpoint is UnixDomainSocketEndPoint
            && Path.GetDirectoryName(Path.GetFullPath(endpoint.ToString()!)) is { } directory
            && !Directory.Exists(directory)
        )
        {
            throw new UsageException($"{option}: cannot listen on {uri}: the directory {directory} does not exist");
        }

        var socket =
            endpoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint is UnixDomainSocketEndPoint && File.Exists(endpoint.ToString()))
            {
                File.Delete(endpoint.ToString()!);
            }

            socket.Bind(endpoint);
            socket.Listen(64);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string why =
                e.SocketErrorCode == SocketError.AddressAlreadyInUse
                    ? "the address is in use (another server on that port?)"
                    : e.Message;
            throw new UsageException($"{option}: cannot listen on {uri}: {why}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string Describe(EndPoint endpoint, string export = "") =>
        endpoint switch
        {
            UnixDomainSocketEndPoint unix => $"nbd+unix:///{export}?socket={unix}",
            IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"nbd://[{ip.Address}]:{ip.Port}/{export}",
            IPEndPoint ip => $"nbd://{ip.Address}:{ip.Port}/{export}",
            _ => endpoint.ToString() ?? "?",
        };
}

/// <summary>The listening sockets of a server, bound before its device is opened.</summary>
public sealed class BoundSockets(List<Socket> nbd, Socket? control) : IDisposable
{
    /// <summary>The NBD listeners (socket activation's first).</summary>
    public List<Socket> Nbd { get; } = nbd;

    /// <summary>The management endpoint's listener, if any.</summary>
    public Socket? Control { get; } = control;

    /// <summary>Closes every listener.</summary>
    public void Dispose()
    {
        Nbd.ForEach(s => s.Dispose());
        Control?.Dispose();
    }
}
