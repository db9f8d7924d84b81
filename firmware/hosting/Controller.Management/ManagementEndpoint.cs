using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Controller.Management;

/// <summary>Where a management endpoint listens: written <c>tcp://HOST:PORT</c> or <c>unix:PATH</c>.</summary>
public static class ManagementEndpoint
{
    /// <summary>Parses <paramref name="uri"/>; a <see cref="FormatException"/> names what is wrong with it.</summary>
    public static EndPoint Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (uri.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = uri["unix:".Length..];
            return path.Length > 0
                ? new UnixDomainSocketEndPoint(path)
                : throw new FormatException($"'{uri}' names no socket; write unix:PATH");
        }

        if (uri.StartsWith("tcp://", StringComparison.Ordinal) || IsTls(uri))
        {
            string rest = uri[(uri.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/');
            int colon = rest.LastIndexOf(':');
            if (
                colon <= 0
                || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port)
                || port is < 1 or > 65535
            )
            {
                throw new FormatException(
                    $"'{uri}' needs a host and a port from 1 to 65535; write {uri[..uri.IndexOf("://", StringComparison.Ordinal)]}://HOST:PORT"
                );
            }

            string host = rest[..colon].Trim('[', ']');
            return IPAddress.TryParse(host, out IPAddress? address)
                ? new IPEndPoint(address, port)
                : new DnsEndPoint(host, port);
        }

        throw new FormatException(
            $"'{uri}' is not a management endpoint; write tcp://HOST:PORT, tls://HOST:PORT or unix:PATH"
        );
    }

    /// <summary>True for a tls://HOST:PORT endpoint: TCP with TLS over it.</summary>
    public static bool IsTls(string uri) =>
        uri?.StartsWith("tls://", StringComparison.Ordinal) ?? throw new ArgumentNullException(nameof(uri));

    /// <summary>A TCP endpoint written back as a tls:// URI.</summary>
    public static string FormatTls(EndPoint endpoint) => "tls://" + Format(endpoint)["tcp://".Length..];

    /// <summary>The endpoint written back as a URI.</summary>
    public static string Format(EndPoint endpoint) =>
        endpoint switch
        {
            UnixDomainSocketEndPoint unix => $"unix:{unix}",
            IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"tcp://[{ip.Address}]:{ip.Port}",
            IPEndPoint ip => $"tcp://{ip.Address}:{ip.Port}",
            DnsEndPoint dns => $"tcp://{dns.Host}:{dns.Port}",
            _ => endpoint?.ToString() ?? "",
        };

    /// <summary>True for an address only this machine can reach.</summary>
    public static bool IsLocal(EndPoint endpoint) =>
        endpoint switch
        {
            UnixDomainSocketEndPoint => true,
            IPEndPoint ip => IPAddress.IsLoopback(ip.Address),
            DnsEndPoint dns => dns.Host is "localhost",
            _ => false,
        };

    /// <summary>Opens a connection to <paramref name="endpoint"/>.</summary>
    public static async Task<Stream> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket =
            endpoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            if (socket.ProtocolType == ProtocolType.Tcp)
            {
                socket.NoDelay = true;
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
