using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Controller.Cli;
using Controller.Firmware.Config;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host.Nbd;
using Controller.Management;

namespace Controller.Hosting;

/// <summary>
/// Serving a <see cref="ServedController"/> to hosts, the same for <c>ssd-emulator serve</c> and
/// <c>ssd-board</c>: NBD on TCP and Unix sockets (or the sockets systemd hands over), the management
/// endpoint, and a clean stop on SIGINT/SIGTERM (write back, flush, checkpoint).
/// </summary>
public static class NbdService
{
    /// <summary>The serving options, as <c>ssd-emulator serve</c> and <c>ssd-board</c> take them.</summary>
    public static readonly OptionSpec[] Options =
    [
        new("--listen", "URI", "nbd://HOST[:PORT] (default nbd://127.0.0.1:10809) or nbd+unix:///?socket=PATH; repeatable", Repeatable: true),
        new("--export", "NAME", "the export's name (default ssd; the empty name selects it too)"),
        new("--read-only", null, "serve the export read-only (as nbdkit -r, qemu-nbd -r): writes, trims and zeroing get EPERM, and nothing on the NAND changes, not even a checkpoint at shutdown (a blank NAND is refused: nothing to serve)"),
        new("--allow-remote", null, "allow a --listen address other than loopback. Without TLS, NBD has no authentication: anyone who can reach the port can read and write."),
        new("--tls", "off|on|require", "NBD over TLS (NBD_OPT_STARTTLS, TLS 1.2 or later): on lets clients choose, require refuses every option before STARTTLS with NBD_REP_ERR_TLS_REQD (default: require with --tls-certificates, else off)", Choices: ["off", "on", "require"]),
        new("--tls-certificates", "DIR", "ca-cert.pem, server-cert.pem and server-key.pem, the layout of qemu-nbd's and nbdkit's (README: making them with certtool)"),
        new("--tls-verify-peer", null, "clients must present a certificate signed by DIR/ca-cert.pem"),
        new("--handshake-timeout", "S", "seconds a client may take to finish the handshake (default 10)"),
        new("--control", "URI", "the management endpoint, tcp://HOST:PORT, tls://HOST:PORT or unix:PATH: one connection multiplexed into the channels control (JSON-RPC: stats, powerCut, checkpoint, setFaults, powerFail), telemetry (a JSON stats line per interval) and log. Off loopback it must be tls:// with --tls-certificates, and clients are checked by --tls-verify-peer or --control-token"),
        new("--control-token", "FILE", "tls:// clients must send the secret in FILE first (ssdhost --control-token FILE)"),
        new("--telemetry-interval", "S", "seconds between telemetry lines (default 1)"),
    ];

    /// <summary>
    /// The configuration overrides of <paramref name="args"/>: its <c>--set</c>s, and
    /// <c>ftl.readOnly=true</c> for <c>--read-only</c>.
    /// </summary>
    public static IReadOnlyList<string> ConfigSets(CommandArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return [.. args.All("--set"), .. args.Declares("--read-only") && args.Has("--read-only") ? [FtlConfig.ReadOnly.Path + "=true"] : Array.Empty<string>()];
    }

    /// <summary>The note on socket activation, for the --help of <paramref name="command"/> (as a user types it).</summary>
    public static string SocketActivationNote(string command) => $"""
        Socket activation: when started by systemd or by libnbd (nbdinfo -- [ {command} ]), it
        serves the listening sockets it is handed (LISTEN_PID, LISTEN_FDS), and no default port.
        """;

    /// <summary>
    /// Reads the serving options of <paramref name="args"/> (and the sockets handed over by socket
    /// activation), before any device is opened, so a bad option changes nothing. Bad values are a
    /// <see cref="UsageException"/> naming them; warnings start with <paramref name="program"/>.
    /// </summary>
    public static ServeOptions Parse(CommandArgs args, string program)
    {
        ArgumentNullException.ThrowIfNull(args);
        long timeoutSeconds = args.Integer("--handshake-timeout", 10, 1, 3600);
        double telemetrySeconds = args.Number("--telemetry-interval", 1, 0.01, 3600);
        bool allowRemote = args.Has("--allow-remote");
        (NbdTlsMode? tlsMode, TlsCredentials? tls) = ParseTls(args);
        byte[]? token = args.Single("--control-token") is { } tokenFile ? ReadToken(tokenFile) : null;
        IReadOnlyList<string> listen = args.All("--listen");
        List<EndPoint> endpoints = [.. listen.Select(uri => Parse(uri, allowRemote, program, tlsMode == NbdTlsMode.Required))];
        string? controlUri = args.Single("--control");
        EndPoint? control = controlUri is null ? null : ParseControl(controlUri, tls, token);
        if (token is not null && (controlUri is null || !ManagementEndpoint.IsTls(controlUri)))
        {
            throw new UsageException("--control-token: the token is only sent over TLS; give --control tls://HOST:PORT with it");
        }

        List<Socket> activated = ActivatedSockets();
        if (endpoints.Count == 0 && activated.Count == 0)
        {
            endpoints.Add(Parse("nbd://127.0.0.1:10809", allowRemote, program, tlsMode == NbdTlsMode.Required));
        }

        return new ServeOptions(endpoints, activated, control, TimeSpan.FromSeconds(timeoutSeconds), TimeSpan.FromSeconds(telemetrySeconds))
        {
            TlsMode = tlsMode,
            Tls = tls,
            ControlTls = controlUri is not null && ManagementEndpoint.IsTls(controlUri),
            ControlToken = token,
        };
    }

    /// <summary>Reads --tls, --tls-certificates and --tls-verify-peer: the mode (null for off) and the server's credentials.</summary>
    private static (NbdTlsMode? Mode, TlsCredentials? Credentials) ParseTls(CommandArgs args)
    {
        string? mode = args.Single("--tls");
        string? directory = args.Single("--tls-certificates");
        bool verifyPeer = args.Has("--tls-verify-peer");
        NbdTlsMode? parsed = mode switch
        {
            null => directory is null ? null : NbdTlsMode.Required,
            "off" => null,
            "on" => NbdTlsMode.Allowed,
            "require" => NbdTlsMode.Required,
            _ => throw new UsageException($"--tls: '{mode}' is not off, on or require"),
        };
        if (mode == "off" && (directory is not null || verifyPeer))
        {
            throw new UsageException($"--tls off contradicts {(directory is not null ? "--tls-certificates" : "--tls-verify-peer")}; leave one out");
        }

        if (directory is null)
        {
            return parsed is null && !verifyPeer
                ? (null, null)
                : throw new UsageException($"{(verifyPeer ? "--tls-verify-peer" : $"--tls {mode}")} needs --tls-certificates DIR, a directory holding {TlsCredentials.CaFile}, {TlsCredentials.ServerCertificateFile} and {TlsCredentials.ServerKeyFile} (README: TLS)");
        }

        try
        {
            return (parsed, TlsCredentials.ForServer(directory, verifyPeer));
        }
        catch (TlsCredentialsException e)
        {
            throw new UsageException($"--tls-certificates: {e.Message}");
        }
    }

    /// <summary>The secret of --control-token FILE: its text without surrounding white space.</summary>
    private static byte[] ReadToken(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--control-token: cannot read '{file}': {e.Message}");
        }

        return text.Length >= 16
            ? System.Text.Encoding.UTF8.GetBytes(text)
            : throw new UsageException($"--control-token: '{file}' holds {text.Length} characters; a token needs at least 16 (head -c 32 /dev/urandom | base64 > {file})");
    }

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

            Socket? control = options.Control is null ? null : Listen(options.Control, "--control", ManagementEndpoint.Format(options.Control));
            return new BoundSockets(listeners, control);
        }
        catch
        {
            listeners.ForEach(l => l.Dispose());
            throw;
        }
    }

    /// <summary>
    /// Serves <paramref name="controller"/> on <paramref name="sockets"/> until SIGINT or SIGTERM,
    /// then shuts it down cleanly (write back, flush, checkpoint) and returns 0; or until the
    /// device fails, then stops without touching it and returns 1. Messages start with
    /// <paramref name="program"/>.
    /// </summary>
    public static int Run(ServedController controller, ServeOptions options, BoundSockets sockets, TextWriter output, string program)
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
        using var stop = new CancellationTokenSource();
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{program}: serving export '{name}' ({controller.SizeBytes} bytes; {controller.Description}){(controller.IsReadOnly ? ", read-only" : string.Empty)}; {(controller.Mount.Formatted ? "formatted a fresh NAND" : $"recovered ({controller.Mount.RecoveryPageReads} page reads, {controller.Mount.ReplayedUnits} units replayed)")}"));
        foreach (Socket socket in activated)
        {
            output.WriteLine($"  listening on the socket handed over by socket activation (LISTEN_FDS), {socket.LocalEndPoint}");
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
                string tlsUri = uri.Replace("nbd://", "nbds://", StringComparison.Ordinal).Replace("nbd+unix://", "nbds+unix://", StringComparison.Ordinal);
                output.WriteLine($"    nbdinfo '{tlsUri}?tls-certificates=CLIENT-DIR'");
                output.WriteLine($"    ssdhost info '{tlsUri}' --tls-certificates CLIENT-DIR");
            }
        }

        if (control is not null)
        {
            output.WriteLine($"  management endpoint on {(options.ControlTls ? ManagementEndpoint.FormatTls(control) : ManagementEndpoint.Format(control))} (channels control, telemetry, log)");
        }

        output.Flush();
        controller.Failed = _ => stop.Cancel();
        var serverOptions = new NbdServerOptions { Tls = options.TlsMode is { } mode ? new NbdTls(mode, options.Tls!.AuthenticateAsServerAsync) : null };
        var nbd = new NbdClients(controller, serverOptions, options.HandshakeTimeout, log, connections, program);
        var guard = new ManagementGuard(options.ControlTls ? options.Tls : null, options.ControlToken, options.HandshakeTimeout);
        var management = new ManagementServer(controller, log, options.TelemetryInterval);
        Task[] accepting =
        [
            .. listeners.Select(l => AcceptAsync(l, (client, token) => nbd.ServeAsync(client, token), stop.Token)),
            .. controlListener is null ? [] : new[] { AcceptAsync(controlListener, (client, token) => ServeManagementAsync(management, guard, client, log, program, token), stop.Token) },
        ];
        try
        {
            Task.WaitAll(accepting);
        }
        catch (AggregateException) when (stop.IsCancellationRequested)
        {
        }

        listeners.ForEach(l => l.Dispose());
        controlListener?.Dispose();
        foreach (EndPoint endpoint in endpoints.Append(control).OfType<UnixDomainSocketEndPoint>())
        {
            File.Delete(endpoint.ToString()!);
        }

        controller.Shutdown();
        // The hash of the session's execution, as the sim computes it: a replay of its recording ends with the same.
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{program}: trace-hash={controller.TraceHash:x16}"));
        if (controller.Failure is PowerFailedException powerFail)
        {
            output.WriteLine($"{program}: stopped: {powerFail.Message}; the next boot recovers");
            return 1;
        }

        if (controller.Failure is { } failure)
        {
            output.WriteLine($"{program}: stopped: the device failed ({failure.GetType().Name}: {failure.Message}); nothing was checkpointed, the next boot recovers from the NAND");
            return 1;
        }

        output.WriteLine(controller.IsReadOnly ? $"{program}: read-only: nothing was written to the NAND; stopped" : $"{program}: flushed and checkpointed; stopped");
        return 0;

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    private static string TlsNote(ServeOptions options) => options.TlsMode switch
    {
        null => string.Empty,
        NbdTlsMode.Allowed => $" (TLS allowed{(options.Tls!.VerifiesPeer ? ", client certificates checked" : string.Empty)})",
        _ => $" (TLS required{(options.Tls!.VerifiesPeer ? ", client certificates checked" : string.Empty)})",
    };

    private static async Task AcceptAsync(Socket listener, Func<Socket, CancellationToken, Task> serve, CancellationToken stop)
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

    /// <summary>Ends every NBD connection at once (a power cut): the sockets close under them. Returns how many there were.</summary>
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

    /// <summary>The serving options <see cref="Parse(CommandArgs, string)"/> read.</summary>
    /// <param name="Listen">The NBD endpoints to listen on.</param>
    /// <param name="Activated">Listening sockets handed over by socket activation.</param>
    /// <param name="Control">The management endpoint, or null.</param>
    /// <param name="HandshakeTimeout">How long a client may take over the handshake.</param>
    /// <param name="TelemetryInterval">Time between telemetry lines.</param>
    public sealed record ServeOptions(IReadOnlyList<EndPoint> Listen, IReadOnlyList<Socket> Activated, EndPoint? Control, TimeSpan HandshakeTimeout, TimeSpan TelemetryInterval)
    {
        /// <summary>TLS on the NBD port: allowed or required, or null for off.</summary>
        public NbdTlsMode? TlsMode { get; init; }

        /// <summary>The server's TLS credentials, when --tls-certificates was given.</summary>
        public TlsCredentials? Tls { get; init; }

        /// <summary>The management endpoint speaks TLS (tls://).</summary>
        public bool ControlTls { get; init; }

        /// <summary>The secret a management client must send first, or null.</summary>
        public IReadOnlyList<byte>? ControlToken { get; init; }
    }

    /// <summary>The NBD side of the server: one connection per client, each tracked so a power cut can end it.</summary>
    /// <param name="export">The export served.</param>
    /// <param name="options">The protocol's options.</param>
    /// <param name="handshakeTimeout">How long a client may take over the handshake.</param>
    /// <param name="log">Where ended connections are told.</param>
    /// <param name="connections">The open connections, by socket.</param>
    /// <param name="program">The name log lines start with.</param>
    public sealed class NbdClients(INbdExport export, NbdServerOptions options, TimeSpan handshakeTimeout, ManagementLog log, ConcurrentDictionary<Socket, string> connections, string program)
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
                using var connection = new NbdConnection(stream, [export], options) { Number = Interlocked.Increment(ref _accepted) };
                await connection.RunAsync(handshake.Token, stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NbdProtocolException or EndOfStreamException or IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
            {
                if (!stop.IsCancellationRequested && connections.ContainsKey(client))
                {
                    log.Write($"{program}: connection from {who} ended: {e.Message}");
                }
            }
            finally
            {
                connections.TryRemove(client, out _);
            }
        }
    }

    private static async Task ServeManagementAsync(ManagementServer server, ManagementGuard guard, Socket client, ManagementLog log, string program, CancellationToken stop)
    {
        await using var stream = new NetworkStream(client, ownsSocket: true);
        try
        {
            Stream? admitted = await guard.AdmitAsync(stream, stop).ConfigureAwait(false);
            if (admitted is null)
            {
                log.Write($"{program}: management connection from {client.RemoteEndPoint} refused: wrong or missing --control-token");
                return;
            }

            await using (admitted.ConfigureAwait(false))
            {
                await server.ServeAsync(admitted, stop).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or Nerdbank.Streams.MultiplexingProtocolException or EndOfStreamException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            // A client that hangs up after its answer (ssdhost power-cut, stats) ends the
            // connection normally: only what else went wrong is worth a line.
            if (!stop.IsCancellationRequested && !HungUp(e))
            {
                log.Write($"{program}: management connection ended: {e.Message}");
            }
        }
    }

    private static bool HungUp(Exception e) => e switch
    {
        EndOfStreamException => true,
        SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown } => true,
        IOException { InnerException: { } inner } => HungUp(inner),
        _ => false,
    };

    /// <summary>
    /// Parses --control: tcp://HOST:PORT or unix:PATH on loopback, tls://HOST:PORT anywhere but off
    /// loopback only with a check of the client (a certificate, or a token).
    /// </summary>
    internal static EndPoint ParseControl(string uri, TlsCredentials? tls, IReadOnlyList<byte>? token)
    {
        EndPoint endpoint;
        try
        {
            endpoint = ManagementEndpoint.Parse(uri);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--control: {e.Message}");
        }

        if (endpoint is DnsEndPoint dns)
        {
            endpoint = dns.Host == "localhost" ? new IPEndPoint(IPAddress.Loopback, dns.Port) : throw new UsageException($"--control: '{dns.Host}' in '{uri}' is not an IP address (or localhost)");
        }

        bool overTls = ManagementEndpoint.IsTls(uri);
        if (overTls && tls is null)
        {
            throw new UsageException($"--control {uri}: a tls:// endpoint needs --tls-certificates DIR (its server-cert.pem and server-key.pem)");
        }

        if (!ManagementEndpoint.IsLocal(endpoint) && !(overTls && (tls!.VerifiesPeer || token is not null)))
        {
            string address = ManagementEndpoint.Format(endpoint)["tcp://".Length..];
            throw new UsageException(
                $"--control: {address} is not a loopback address, and the management endpoint can cut the power: off loopback it needs TLS and a check of the client. " +
                $"Write --control tls://{address} with --tls-certificates DIR and either --tls-verify-peer (clients present a certificate signed by DIR/ca-cert.pem) or --control-token FILE (clients send its secret)");
        }

        return endpoint;
    }

    /// <summary>
    /// The listening sockets systemd (or libnbd's <c>nbdinfo -- [ CMD ]</c>) hands over: file
    /// descriptors 3 to 3+LISTEN_FDS-1, when LISTEN_PID names this process.
    /// </summary>
    private static List<Socket> ActivatedSockets()
    {
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? count = Environment.GetEnvironmentVariable("LISTEN_FDS");
        if (pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture) || !int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int fds) || fds <= 0)
        {
            return [];
        }

        return [.. Enumerable.Range(3, fds).Select(fd => new Socket(new SafeSocketHandle(fd, ownsHandle: true)))];
    }

    private static Socket Listen(EndPoint endpoint, string option, string uri)
    {
        if (endpoint is UnixDomainSocketEndPoint && Path.GetDirectoryName(Path.GetFullPath(endpoint.ToString()!)) is { } directory && !Directory.Exists(directory))
        {
            throw new UsageException($"{option}: cannot listen on {uri}: the directory {directory} does not exist");
        }

        var socket = endpoint is UnixDomainSocketEndPoint
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
            string why = e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "the address is in use (another server on that port?)" : e.Message;
            throw new UsageException($"{option}: cannot listen on {uri}: {why}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Parses a --listen URI as libnbd and qemu write them.</summary>
    internal static EndPoint Parse(string uri, bool allowRemote, string program, bool tlsRequired = false)
    {
        if (uri.StartsWith("nbd+unix://", StringComparison.Ordinal))
        {
            int query = uri.IndexOf("?socket=", StringComparison.Ordinal);
            string path = query < 0 ? string.Empty : Uri.UnescapeDataString(uri[(query + "?socket=".Length)..]);
            return path.Length > 0 ? new UnixDomainSocketEndPoint(path) : throw new UsageException($"--listen: '{uri}' names no socket; write nbd+unix:///?socket=PATH");
        }

        if (!uri.StartsWith("nbd://", StringComparison.Ordinal) || !Uri.TryCreate(uri, UriKind.Absolute, out Uri? parsed) || parsed.Host.Length == 0)
        {
            throw new UsageException($"--listen: '{uri}' is not nbd://HOST[:PORT] or nbd+unix:///?socket=PATH");
        }

        int port = parsed.IsDefaultPort || parsed.Port < 0 ? NbdProtocol.DefaultPort : parsed.Port;
        string host = parsed.Host.Trim('[', ']');
        IPAddress address = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out IPAddress? ip) ? ip
            : throw new UsageException($"--listen: '{host}' in '{uri}' is not an IP address (or localhost)");
        if (!IPAddress.IsLoopback(address) && !allowRemote)
        {
            throw new UsageException($"--listen: {address} is not a loopback address; serving it to the network needs --allow-remote (and, so that not anyone who can reach it reads and writes, --tls require with --tls-verify-peer)");
        }

        if (!IPAddress.IsLoopback(address) && !tlsRequired)
        {
            Console.Error.WriteLine($"{program}: warning: serving {address}:{port} to the network; NBD has no authentication, anyone who can reach it can read and write the device");
        }

        return new IPEndPoint(address, port);
    }

    private static string Describe(EndPoint endpoint, string export = "") => endpoint switch
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
