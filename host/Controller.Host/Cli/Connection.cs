using System.Net.Sockets;
using Controller.Cli;
using Controller.Host.Nbd;
using Controller.Management;

namespace Controller.Host.Cli;

/// <summary>Opening the NBD and management connections a verb names, with errors a user can act on.</summary>
internal static class Connection
{
    /// <summary>Parses the URI at positional 0 and connects to it.</summary>
    public static async Task<NbdClient> OpenAsync(CommandArgs args, CancellationToken cancellation)
    {
        NbdUri uri = ParseUri(
            args,
            args.Positional(0, "the NBD URI (nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)")
        );
        try
        {
            return await NbdClient.ConnectAsync(uri, Tls(args), cancellation).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new UsageException($"no NBD server at {uri}: {e.Message}");
        }
        catch (EndOfStreamException e) when (uri.Tls)
        {
            // Under TLS 1.3 a server judges the client's certificate after the client finished its side of the
            // handshake.
            throw new UsageException(
                $"{uri}: the server closed the connection during the TLS session ({e.Message}); if it checks clients (--tls-verify-peer), --tls-certificates needs a client-cert.pem signed by its ca-cert.pem"
            );
        }
        catch (Exception e) when (e is NbdClientException or EndOfStreamException or IOException)
        {
            throw new UsageException($"{uri}: {e.Message}");
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            throw new UsageException(
                $"{uri}: the TLS handshake failed ({e.Message}{(e.InnerException is { } inner ? ": " + inner.Message : string.Empty)}); check that --tls-certificates holds the server's ca-cert.pem, and a client certificate it signed if the server checks clients"
            );
        }
    }

    /// <summary>The client's TLS credentials of --tls-certificates DIR, or null without it.</summary>
    public static TlsCredentials? Tls(CommandArgs args)
    {
        if (args.Value("--tls-certificates") is not { } directory)
        {
            return null;
        }

        try
        {
            return TlsCredentials.ForClient(directory);
        }
        catch (TlsCredentialsException e)
        {
            throw new UsageException($"--tls-certificates: {e.Message}");
        }
    }

    /// <summary>Parses an NBD URI, naming the verb in the error.</summary>
    public static NbdUri ParseUri(CommandArgs args, string text)
    {
        try
        {
            return NbdUri.Parse(text);
        }
        catch (FormatException e)
        {
            throw new UsageException($"{e.Message}");
        }
    }

    /// <summary>Connects to the management endpoint --control names.</summary>
    public static async Task<ManagementClient> OpenControlAsync(CommandArgs args, CancellationToken cancellation)
    {
        string uri = args.Value("--control")
            ?? throw new UsageException(
                $"--control URI is required (tcp://HOST:PORT, tls://HOST:PORT or unix:PATH, as given to serve --control)"
            );
        string? token = args.FileText("--control-token");

        try
        {
            return await ManagementClient.ConnectAsync(uri, Tls(args), token, cancellation).ConfigureAwait(false);
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            throw new UsageException(
                $"{uri}: the TLS handshake failed ({e.Message}); --tls-certificates must hold the server's ca-cert.pem, and a client certificate it signed when the server checks clients"
            );
        }
        catch (FormatException e)
        {
            throw new UsageException($"--control: {e.Message}");
        }
        catch (SocketException e)
        {
            throw new UsageException($"no management endpoint at {uri}: {Why(uri, e)}");
        }
    }

    /// <summary>
    /// Why nothing answered at a management URI, in words: a Unix socket that is not there is the common case.
    /// </summary>
    private static string Why(string uri, SocketException e)
    {
        if (uri.StartsWith("unix:", StringComparison.Ordinal) && uri[5..] is { Length: > 0 } path && !File.Exists(path))
        {
            return Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path)))
                ? $"no socket {path} (is a server running with --control unix:{path}?)"
                : $"the directory of {path} does not exist";
        }

        return e.SocketErrorCode == SocketError.ConnectionRefused
            ? "connection refused (is a server running with that --control?)"
            : e.Message;
    }

    /// <summary>Refuses a range outside the device or not in whole blocks of the server's minimum size.</summary>
    public static void CheckRange(CommandArgs args, NbdClient client, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > client.Size || length > client.Size - offset)
        {
            throw new UsageException(
                $"offset {offset} + length {length} is past the end of the device ({client.Size} bytes)"
            );
        }

        long block = Math.Max(1, client.BlockSizes.Minimum);
        if (offset % block != 0 || length % block != 0)
        {
            throw new UsageException(
                $"offset {offset} and length {length} must be multiples of the block size, {block} bytes"
            );
        }
    }
}
