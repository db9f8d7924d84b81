using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Controller.Management;

namespace Controller.Tests.Support;

/// <summary>
/// Certificates made for a test, in the directory layout of qemu and libnbd: an authority; a server
/// directory (ca-cert.pem, server-cert.pem, server-key.pem) for localhost and 127.0.0.1; a client
/// directory with a certificate the authority signed; a foreign client directory whose certificate
/// another authority signed (it still trusts the right authority, so only the server can refuse
/// it); and a directory with the authority alone (a client without a certificate).
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private readonly TempDirectory _root = new();

    private TestCertificates() { }

    /// <summary>ca-cert.pem, server-cert.pem, server-key.pem.</summary>
    public string Server => _root.File("server");

    /// <summary>ca-cert.pem, client-cert.pem, client-key.pem, signed by the authority.</summary>
    public string Client => _root.File("client");

    /// <summary>ca-cert.pem (the right one), client-cert.pem and client-key.pem signed by another authority.</summary>
    public string Foreign => _root.File("foreign");

    /// <summary>ca-cert.pem alone.</summary>
    public string AuthorityOnly => _root.File("ca-only");

    /// <summary>Makes the authorities, the certificates and the directories.</summary>
    public static TestCertificates Create()
    {
        var made = new TestCertificates();
        using RSA caKey = RSA.Create(2048);
        using X509Certificate2 ca = Authority("CN=Controller test CA", caKey);
        using RSA otherKey = RSA.Create(2048);
        using X509Certificate2 other = Authority("CN=Another CA", otherKey);

        using RSA serverKey = RSA.Create(2048);
        Directory.CreateDirectory(made.Server);
        WriteAuthority(made.Server, ca);
        Write(
            made.Server,
            TlsCredentials.ServerCertificateFile,
            TlsCredentials.ServerKeyFile,
            Leaf("CN=localhost", serverKey, ca, caKey, server: true, serial: 2),
            serverKey
        );

        using RSA clientKey = RSA.Create(2048);
        Directory.CreateDirectory(made.Client);
        WriteAuthority(made.Client, ca);
        Write(
            made.Client,
            TlsCredentials.ClientCertificateFile,
            TlsCredentials.ClientKeyFile,
            Leaf("CN=client", clientKey, ca, caKey, server: false, serial: 3),
            clientKey
        );

        using RSA foreignKey = RSA.Create(2048);
        Directory.CreateDirectory(made.Foreign);
        WriteAuthority(made.Foreign, ca);
        Write(
            made.Foreign,
            TlsCredentials.ClientCertificateFile,
            TlsCredentials.ClientKeyFile,
            Leaf("CN=intruder", foreignKey, other, otherKey, server: false, serial: 4),
            foreignKey
        );

        Directory.CreateDirectory(made.AuthorityOnly);
        WriteAuthority(made.AuthorityOnly, ca);
        return made;
    }

    public void Dispose() => _root.Dispose();

    private static X509Certificate2 Authority(string name, RSA key)
    {
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(
            new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true)
        );
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 Leaf(
        string name,
        RSA key,
        X509Certificate2 issuer,
        RSA issuerKey,
        bool server,
        byte serial
    )
    {
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(
            new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true)
        );
        request.CertificateExtensions.Add(
            new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false)
        );
        request.CertificateExtensions.Add(
            X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false)
        );
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }

        using X509Certificate2 signed = request.Create(
            issuer.SubjectName,
            X509SignatureGenerator.CreateForRSA(issuerKey, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UtcNow.AddDays(-1),
            DateTimeOffset.UtcNow.AddDays(29),
            [serial]
        );
        return X509CertificateLoader.LoadCertificate(signed.RawData);
    }

    private static void WriteAuthority(string directory, X509Certificate2 ca) =>
        File.WriteAllText(Path.Combine(directory, TlsCredentials.CaFile), ca.ExportCertificatePem());

    private static void Write(
        string directory,
        string certificateFile,
        string keyFile,
        X509Certificate2 certificate,
        RSA key
    )
    {
        using (certificate)
        {
            File.WriteAllText(Path.Combine(directory, certificateFile), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(directory, keyFile), key.ExportPkcs8PrivateKeyPem());
        }
    }
}
