using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Controller.Management;

/// <summary>
/// X.509 credentials for TLS on the NBD port and the management endpoint, from a directory laid out
/// as qemu and libnbd lay theirs out: <c>ca-cert.pem</c> (the authority both sides trust),
/// <c>server-cert.pem</c> and <c>server-key.pem</c> (the server's), <c>client-cert.pem</c> and
/// <c>client-key.pem</c> (a client's, when the server checks clients). TLS 1.2 or later, over
/// <see cref="SslStream"/>; a peer's certificate is judged against <c>ca-cert.pem</c> alone, not
/// against the system's store.
/// </summary>
public sealed class TlsCredentials : IDisposable
{
    /// <summary>The authority's certificate.</summary>
    public const string CaFile = "ca-cert.pem";

    /// <summary>The server's certificate.</summary>
    public const string ServerCertificateFile = "server-cert.pem";

    /// <summary>The server's private key.</summary>
    public const string ServerKeyFile = "server-key.pem";

    /// <summary>A client's certificate.</summary>
    public const string ClientCertificateFile = "client-cert.pem";

    /// <summary>A client's private key.</summary>
    public const string ClientKeyFile = "client-key.pem";

    private const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    private readonly X509Certificate2? _authority;
    private readonly X509Certificate2? _own;

    private TlsCredentials(string directory, X509Certificate2? authority, X509Certificate2? own, bool verifyPeer)
    {
        Directory = directory;
        _authority = authority;
        _own = own;
        VerifiesPeer = verifyPeer;
    }

    /// <summary>The directory the credentials came from.</summary>
    public string Directory { get; }

    /// <summary>
    /// A server: clients must present a certificate signed by the authority. A client: always true (the server's is
    /// checked).
    /// </summary>
    public bool VerifiesPeer { get; }

    /// <summary>
    /// A server's credentials: <c>server-cert.pem</c> and <c>server-key.pem</c> in
    /// <paramref name="directory"/>, and <c>ca-cert.pem</c> when <paramref name="verifyPeer"/>
    /// (clients then need a certificate it signed).
    /// </summary>
    /// <exception cref="TlsCredentialsException">A file is missing or unreadable; the message names it.</exception>
    public static TlsCredentials ForServer(string directory, bool verifyPeer)
    {
        ArgumentNullException.ThrowIfNull(directory);
        RequireDirectory(directory);
        X509Certificate2 own = LoadPair(directory, ServerCertificateFile, ServerKeyFile, required: true)!;
        X509Certificate2? authority =
            verifyPeer || File.Exists(Path.Combine(directory, CaFile)) ? LoadAuthority(directory) : null;
        return new TlsCredentials(directory, authority, own, verifyPeer);
    }

    /// <summary>
    /// A client's credentials: <c>ca-cert.pem</c> in <paramref name="directory"/> to check the
    /// server's certificate with, and <c>client-cert.pem</c> with <c>client-key.pem</c> when present.
    /// </summary>
    /// <exception cref="TlsCredentialsException">A file is missing or unreadable; the message names it.</exception>
    public static TlsCredentials ForClient(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        RequireDirectory(directory);
        X509Certificate2 authority = LoadAuthority(directory);
        X509Certificate2? own = LoadPair(directory, ClientCertificateFile, ClientKeyFile, required: false);
        return new TlsCredentials(directory, authority, own, verifyPeer: true);
    }

    /// <summary>
    /// The server's side of the TLS handshake on <paramref name="connection"/>; the returned stream carries everything
    /// after it and owns the connection.
    /// </summary>
    /// <exception cref="AuthenticationException">The handshake failed (no common protocol, a client certificate missing
    /// or not signed by the authority).</exception>
    public async Task<Stream> AuthenticateAsServerAsync(Stream connection, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var tls = new SslStream(connection, leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsServerAsync(
                    new SslServerAuthenticationOptions
                    {
                        ServerCertificate = _own,
                        ClientCertificateRequired = VerifiesPeer,
                        EnabledSslProtocols = Protocols,
                        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                            !VerifiesPeer
                            || (
                                certificate is not null
                                && SignedByAuthority(certificate, errors, checkName: false, ClientAuthentication)
                            ),
                    },
                    cancellation
                )
                .ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The client's side of the TLS handshake with the server <paramref name="host"/> names; the server's certificate
    /// must be the authority's and name that host. The returned stream owns the connection.
    /// </summary>
    /// <exception cref="AuthenticationException">The handshake failed (the server's certificate not signed by the
    /// authority, or for another name).</exception>
    public async Task<Stream> AuthenticateAsClientAsync(Stream connection, string host, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var tls = new SslStream(connection, leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions
                    {
                        TargetHost = host,
                        ClientCertificates = _own is null ? null : [_own],
                        EnabledSslProtocols = Protocols,
                        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                            certificate is not null
                            && SignedByAuthority(certificate, errors, checkName: true, ServerAuthentication),
                    },
                    cancellation
                )
                .ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The name a server at <paramref name="endpoint"/> must carry in its certificate: its address or host name,
    /// localhost for a Unix socket.
    /// </summary>
    public static string HostOf(System.Net.EndPoint endpoint) =>
        endpoint switch
        {
            System.Net.IPEndPoint ip => ip.Address.ToString(),
            System.Net.DnsEndPoint dns => dns.Host,
            _ => "localhost",
        };

    /// <inheritdoc />
    public void Dispose()
    {
        _authority?.Dispose();
        _own?.Dispose();
    }

    // Extended key usages: a client's certificate must be for client authentication, a server's for
    // server authentication, so one side's certificate cannot stand in for the other's.
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// True when <paramref name="certificate"/> chains to the authority alone, is for the use
    /// <paramref name="usage"/> names, and (for a server's) names the host asked for.
    /// </summary>
    private bool SignedByAuthority(X509Certificate certificate, SslPolicyErrors errors, bool checkName, string usage)
    {
        if (_authority is null || (checkName && errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(usage));
        using var presented = new X509Certificate2(certificate);
        return chain.Build(presented);
    }

    private static void RequireDirectory(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new TlsCredentialsException(
                $"the certificate directory '{directory}' does not exist (it holds {CaFile}, {ServerCertificateFile} and {ServerKeyFile}, as for qemu-nbd and nbdkit)"
            );
        }
    }

    private static X509Certificate2 LoadAuthority(string directory)
    {
        string path = Path.Combine(directory, CaFile);
        if (!File.Exists(path))
        {
            throw new TlsCredentialsException(
                $"'{path}' is missing: the certificate of the authority that signs the peer's certificate"
            );
        }

        try
        {
            return X509CertificateLoader.LoadCertificateFromFile(path);
        }
        catch (CryptographicException e)
        {
            throw new TlsCredentialsException($"'{path}' is not a PEM certificate: {e.Message}");
        }
    }

    private static X509Certificate2? LoadPair(string directory, string certificateFile, string keyFile, bool required)
    {
        string certificate = Path.Combine(directory, certificateFile);
        string key = Path.Combine(directory, keyFile);
        if (!File.Exists(certificate) || !File.Exists(key))
        {
            return required
                ? throw new TlsCredentialsException(
                    $"'{(File.Exists(certificate) ? key : certificate)}' is missing: {certificateFile} and {keyFile} are this side's certificate and its private key"
                )
                : null;
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(certificate, key);
        }
        catch (CryptographicException e)
        {
            throw new TlsCredentialsException(
                $"'{certificate}' with '{key}' is not a PEM certificate and its unencrypted private key: {e.Message}"
            );
        }
    }
}

/// <summary>TLS credentials that cannot be used; the message names the file and what it should hold.</summary>
public sealed class TlsCredentialsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TlsCredentialsException() { }

    /// <summary>Creates the exception with a message.</summary>
    public TlsCredentialsException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public TlsCredentialsException(string message, Exception innerException)
        : base(message, innerException) { }
}
