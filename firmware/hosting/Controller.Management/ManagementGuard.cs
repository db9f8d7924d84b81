using System.Security.Cryptography;

namespace Controller.Management;

/// <summary>
/// Who may use the management endpoint: on a tls:// endpoint, the TLS handshake (with a client
/// certificate when the credentials verify peers), then the token when one is set, sent by the
/// client as its first line. Loopback and Unix sockets pass as they are.
/// </summary>
/// <param name="tls">The server's credentials for a tls:// endpoint, or null for none.</param>
/// <param name="token">The secret a client must send first, or null.</param>
/// <param name="timeout">How long a client may take over the handshake and the token.</param>
public sealed class ManagementGuard(TlsCredentials? tls, IReadOnlyList<byte>? token, TimeSpan timeout)
{
    private const int MaximumTokenBytes = 4096;

    /// <summary>
    /// Admits the client on <paramref name="connection"/>: returns the stream to serve it on (over
    /// TLS when the endpoint is), or null when its token is wrong or missing.
    /// </summary>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The TLS handshake failed (for instance
    /// no client certificate, or one from another authority).</exception>
    /// <exception cref="OperationCanceledException">The client took longer than the timeout.</exception>
    public async Task<Stream?> AdmitAsync(Stream connection, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (tls is null)
        {
            return connection;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(timeout);
        Stream secured = await tls.AuthenticateAsServerAsync(connection, deadline.Token).ConfigureAwait(false);
        if (token is null || await TokenMatchesAsync(secured, deadline.Token).ConfigureAwait(false))
        {
            return secured;
        }

        await secured.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Reads the client's first line byte by byte (nothing past it is consumed) and compares it in constant time.
    /// </summary>
    private async Task<bool> TokenMatchesAsync(Stream stream, CancellationToken cancellation)
    {
        byte[] line = new byte[MaximumTokenBytes];
        int length = 0;
        while (true)
        {
            if (await stream.ReadAsync(line.AsMemory(length, 1), cancellation).ConfigureAwait(false) == 0)
            {
                return false;
            }

            if (line[length] == (byte)'\n')
            {
                break;
            }

            if (++length == line.Length)
            {
                return false;
            }
        }

        return CryptographicOperations.FixedTimeEquals(
            line.AsSpan(0, length).TrimEnd((byte)'\r'),
            token is byte[] bytes ? bytes : [.. token!]
        );
    }
}
