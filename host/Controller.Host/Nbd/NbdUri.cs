using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Controller.Nbd;

namespace Controller.Host.Nbd;

/// <summary>
/// An NBD URI as libnbd and qemu write them: <c>nbd://HOST[:PORT][/EXPORT]</c> or
/// <c>nbd+unix:///[EXPORT]?socket=PATH</c>.
/// </summary>
public sealed record NbdUri(EndPoint EndPoint, string Export, string Text)
{
    /// <summary>
    /// nbds:// or nbds+unix://: the session goes over TLS (NBD_OPT_STARTTLS first), and a server that refuses it is
    /// left.
    /// </summary>
    public bool Tls { get; init; }

    /// <summary>
    /// The host name the server's certificate must carry: the URI's host, or localhost for a Unix socket.
    /// </summary>
    public string TlsHost => Controller.Management.TlsCredentials.HostOf(EndPoint);

    /// <summary>Parses <paramref name="text"/>; a <see cref="FormatException"/> says what is wrong with it.</summary>
    public static NbdUri Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (
            text.StartsWith("nbds://", StringComparison.Ordinal)
            || text.StartsWith("nbds+unix://", StringComparison.Ordinal)
        )
        {
            // The same URI without the s, for the parts; the text as given.
            string clear = string.Concat("nbd", text.AsSpan(4));
            try
            {
                return Parse(clear) with { Text = text, Tls = true };
            }
            catch (FormatException e)
            {
                throw new FormatException(e.Message.Replace($"'{clear}'", $"'{text}'", StringComparison.Ordinal), e);
            }
        }

        if (text.StartsWith("nbd+unix://", StringComparison.Ordinal))
        {
            string rest = text["nbd+unix://".Length..];
            int query = rest.IndexOf('?', StringComparison.Ordinal);
            string path = query < 0 ? rest : rest[..query];
            string socket = "";
            if (query >= 0)
            {
                foreach (string pair in rest[(query + 1)..].Split('&'))
                {
                    if (pair.StartsWith("socket=", StringComparison.Ordinal))
                    {
                        socket = Uri.UnescapeDataString(pair["socket=".Length..]);
                    }
                }
            }

            if (socket.Length == 0)
            {
                throw new FormatException($"'{text}' names no socket; write nbd+unix:///EXPORT?socket=PATH");
            }

            return new NbdUri(new UnixDomainSocketEndPoint(socket), Uri.UnescapeDataString(path.TrimStart('/')), text);
        }

        if (text.StartsWith("nbd://", StringComparison.Ordinal))
        {
            string rest = text["nbd://".Length..];
            int slash = rest.IndexOf('/', StringComparison.Ordinal);
            string authority = slash < 0 ? rest : rest[..slash];
            string export = slash < 0 ? "" : Uri.UnescapeDataString(rest[(slash + 1)..]);
            string host = authority;
            int port = NbdProtocol.DefaultPort;
            int colon = authority.LastIndexOf(':');
            if (colon >= 0 && !authority.EndsWith(']'))
            {
                host = authority[..colon];
                if (
                    !int.TryParse(authority[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port)
                    || port is < 1 or > 65535
                )
                {
                    throw new FormatException(
                        $"'{text}': the port '{authority[(colon + 1)..]}' is not a number from 1 to 65535"
                    );
                }
            }

            host = host.Trim('[', ']');
            if (host.Length == 0)
            {
                throw new FormatException($"'{text}' names no host; write nbd://HOST[:PORT]/EXPORT");
            }

            EndPoint endpoint = IPAddress.TryParse(host, out IPAddress? address)
                ? new IPEndPoint(address, port)
                : new DnsEndPoint(host, port);
            return new NbdUri(endpoint, export, text);
        }

        throw new FormatException(
            $"'{text}' is not an NBD URI; write nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH (nbds:// and nbds+unix:// for TLS)"
        );
    }

    /// <inheritdoc />
    public override string ToString() => Text;
}
