using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Controller.Cli;
using Controller.Firmware.Ftl;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;

namespace Controller.Hosting;

/// <summary>
/// The serving options of <c>ssd-emulator serve</c> and <c>ssd-board</c> on the command line:
/// their specs and help, and their reading into a <see cref="ServeOptions"/>, with every bad value
/// named before any device is opened.
/// </summary>
public static class ServeCommandLine
{
    /// <summary>The serving options, as <c>ssd-emulator serve</c> and <c>ssd-board</c> take them.</summary>
    public static readonly OptionSpec[] Options =
    [
        new(
            "--listen",
            "URI",
            "nbd://HOST[:PORT] (default nbd://127.0.0.1:10809) or nbd+unix:///?socket=PATH; repeatable",
            Repeatable: true
        ),
        new("--export", "NAME", "the export's name (default ssd; the empty name selects it too)"),
        new(
            "--read-only",
            null,
            "serve the export read-only (as nbdkit -r, qemu-nbd -r): writes, trims and zeroing get EPERM, and nothing on the NAND changes, not even a checkpoint at shutdown (a blank NAND is refused: nothing to serve)"
        ),
        new(
            "--allow-remote",
            null,
            "allow a --listen address other than loopback. Without TLS, NBD has no authentication: anyone who can reach the port can read and write."
        ),
        new(
            "--tls",
            "off|on|require",
            "NBD over TLS (NBD_OPT_STARTTLS, TLS 1.2 or later): on lets clients choose, require refuses every option before STARTTLS with NBD_REP_ERR_TLS_REQD (default: require with --tls-certificates, else off)",
            Choices: ["off", "on", "require"]
        ),
        new(
            "--tls-certificates",
            "DIR",
            "ca-cert.pem, server-cert.pem and server-key.pem, the layout of qemu-nbd's and nbdkit's (README: making them with certtool)"
        ),
        new("--tls-verify-peer", null, "clients must present a certificate signed by DIR/ca-cert.pem"),
        new("--handshake-timeout", "S", "seconds a client may take to finish the handshake (default 10)"),
        new(
            "--control",
            "URI",
            "the management endpoint, tcp://HOST:PORT, tls://HOST:PORT or unix:PATH: one connection multiplexed into the channels control (JSON-RPC: stats, powerCut, checkpoint, setFaults, powerFail), telemetry (a JSON stats line per interval) and log. Off loopback it must be tls:// with --tls-certificates, and clients are checked by --tls-verify-peer or --control-token"
        ),
        new(
            "--control-token",
            "FILE",
            "tls:// clients must send the secret in FILE first (ssdhost --control-token FILE)"
        ),
        new("--telemetry-interval", "S", "seconds between telemetry lines (default 1)"),
    ];

    /// <summary>
    /// The configuration overrides of <paramref name="args"/>: its <c>--set</c>s, and
    /// <c>ftl.readOnly=true</c> for <c>--read-only</c>.
    /// </summary>
    public static IReadOnlyList<string> ConfigSets(CommandArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return
        [
            .. args.All("--set"),
            .. args.Has("--read-only") ? [FtlConfig.ReadOnly.Path + "=true"] : Array.Empty<string>(),
        ];
    }

    /// <summary>
    /// The note on socket activation, for the --help of <paramref name="command"/> (as a user types it).
    /// </summary>
    public static string SocketActivationNote(string command) =>
        $"""
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
        byte[]? token = ReadToken(args);
        IReadOnlyList<string> listen = args.All("--listen");
        List<EndPoint> endpoints =
        [
            .. listen.Select(uri => Parse(uri, allowRemote, program, tlsMode == NbdTlsMode.Required)),
        ];
        string? controlUri = args.Single("--control");
        EndPoint? control = controlUri is null ? null : ParseControl(controlUri, tls, token);
        if (token is not null && (controlUri is null || !ManagementEndpoint.IsTls(controlUri)))
        {
            throw new UsageException(
                "--control-token: the token is only sent over TLS; give --control tls://HOST:PORT with it"
            );
        }

        List<Socket> activated = ActivatedSockets();
        if (endpoints.Count == 0 && activated.Count == 0)
        {
            endpoints.Add(Parse("nbd://127.0.0.1:10809", allowRemote, program, tlsMode == NbdTlsMode.Required));
        }

        return new ServeOptions(
            endpoints,
            activated,
            control,
            TimeSpan.FromSeconds(timeoutSeconds),
            TimeSpan.FromSeconds(telemetrySeconds)
        )
        {
            TlsMode = tlsMode,
            Tls = tls,
            ControlTls = controlUri is not null && ManagementEndpoint.IsTls(controlUri),
            ControlToken = token,
        };
    }

    /// <summary>
    /// Reads --tls, --tls-certificates and --tls-verify-peer: the mode (null for off) and the server's credentials.
    /// </summary>
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
            throw new UsageException(
                $"--tls off contradicts {(directory is not null ? "--tls-certificates" : "--tls-verify-peer")}; leave one out"
            );
        }

        if (directory is null)
        {
            return parsed is null && !verifyPeer
                ? (null, null)
                : throw new UsageException(
                    $"{(verifyPeer ? "--tls-verify-peer" : $"--tls {mode}")} needs --tls-certificates DIR, a directory holding {TlsCredentials.CaFile}, {TlsCredentials.ServerCertificateFile} and {TlsCredentials.ServerKeyFile} (README: TLS)"
                );
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

    /// <summary>
    /// The secret of --control-token FILE: its text without surrounding white space, at least 16 characters.
    /// </summary>
    private static byte[]? ReadToken(CommandArgs args) =>
        args.FileText("--control-token") switch
        {
            null => null,
            { Length: >= 16 } text => System.Text.Encoding.UTF8.GetBytes(text),
            var text => throw new UsageException(
                $"--control-token: '{args.Single("--control-token")}' holds {text.Length} characters; a token needs at least 16 (head -c 32 /dev/urandom | base64 > {args.Single("--control-token")})"
            ),
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
            endpoint =
                dns.Host == "localhost"
                    ? new IPEndPoint(IPAddress.Loopback, dns.Port)
                    : throw new UsageException(
                        $"--control: '{dns.Host}' in '{uri}' is not an IP address (or localhost)"
                    );
        }

        bool overTls = ManagementEndpoint.IsTls(uri);
        if (overTls && tls is null)
        {
            throw new UsageException(
                $"--control {uri}: a tls:// endpoint needs --tls-certificates DIR (its server-cert.pem and server-key.pem)"
            );
        }

        if (!ManagementEndpoint.IsLocal(endpoint) && !(overTls && (tls!.VerifiesPeer || token is not null)))
        {
            string address = ManagementEndpoint.Format(endpoint)["tcp://".Length..];
            throw new UsageException(
                $"--control: {address} is not a loopback address, and the management endpoint can cut the power: off loopback it needs TLS and a check of the client. "
                    + $"Write --control tls://{address} with --tls-certificates DIR and either --tls-verify-peer (clients present a certificate signed by DIR/ca-cert.pem) or --control-token FILE (clients send its secret)"
            );
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
        if (
            pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture)
            || !int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int fds)
            || fds <= 0
        )
        {
            return [];
        }

        return [.. Enumerable.Range(3, fds).Select(fd => new Socket(new SafeSocketHandle(fd, ownsHandle: true)))];
    }

    /// <summary>Parses a --listen URI as libnbd and qemu write them.</summary>
    internal static EndPoint Parse(string uri, bool allowRemote, string program, bool tlsRequired = false)
    {
        if (uri.StartsWith("nbd+unix://", StringComparison.Ordinal))
        {
            int query = uri.IndexOf("?socket=", StringComparison.Ordinal);
            string path = query < 0 ? string.Empty : Uri.UnescapeDataString(uri[(query + "?socket=".Length)..]);
            return path.Length > 0
                ? new UnixDomainSocketEndPoint(path)
                : throw new UsageException($"--listen: '{uri}' names no socket; write nbd+unix:///?socket=PATH");
        }

        if (
            !uri.StartsWith("nbd://", StringComparison.Ordinal)
            || !Uri.TryCreate(uri, UriKind.Absolute, out Uri? parsed)
            || parsed.Host.Length == 0
        )
        {
            throw new UsageException($"--listen: '{uri}' is not nbd://HOST[:PORT] or nbd+unix:///?socket=PATH");
        }

        int port = parsed.IsDefaultPort || parsed.Port < 0 ? NbdProtocol.DefaultPort : parsed.Port;
        string host = parsed.Host.Trim('[', ']');
        IPAddress address =
            host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out IPAddress? ip) ? ip
            : throw new UsageException($"--listen: '{host}' in '{uri}' is not an IP address (or localhost)");
        if (!IPAddress.IsLoopback(address) && !allowRemote)
        {
            throw new UsageException(
                $"--listen: {address} is not a loopback address; serving it to the network needs --allow-remote (and, so that not anyone who can reach it reads and writes, --tls require with --tls-verify-peer)"
            );
        }

        if (!IPAddress.IsLoopback(address) && !tlsRequired)
        {
            Console.Error.WriteLine(
                $"{program}: warning: serving {address}:{port} to the network; NBD has no authentication, anyone who can reach it can read and write the device"
            );
        }

        return new IPEndPoint(address, port);
    }
}

/// <summary>The serving options <see cref="ServeCommandLine.Parse(CommandArgs, string)"/> read.</summary>
/// <param name="Listen">The NBD endpoints to listen on.</param>
/// <param name="Activated">Listening sockets handed over by socket activation.</param>
/// <param name="Control">The management endpoint, or null.</param>
/// <param name="HandshakeTimeout">How long a client may take over the handshake.</param>
/// <param name="TelemetryInterval">Time between telemetry lines.</param>
public sealed record ServeOptions(
    IReadOnlyList<EndPoint> Listen,
    IReadOnlyList<Socket> Activated,
    EndPoint? Control,
    TimeSpan HandshakeTimeout,
    TimeSpan TelemetryInterval
)
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
