namespace Controller.Hosting.Nbd;

/// <summary>Block sizes the server advertises, and the largest request it takes.</summary>
public sealed record NbdServerOptions
{
    /// <summary>NBD_INFO_BLOCK_SIZE minimum: the logical block.</summary>
    public int MinimumBlockBytes { get; init; } = 512;

    /// <summary>NBD_INFO_BLOCK_SIZE preferred: the FTL's sector.</summary>
    public int PreferredBlockBytes { get; init; } = 4096;

    /// <summary>
    /// NBD_INFO_BLOCK_SIZE maximum: the largest READ or WRITE taken (clients such as nbdcopy and fio do not split).
    /// </summary>
    public int MaximumBlockBytes { get; init; } = 32 << 20;

    /// <summary>The largest option data read in the handshake; a client sending more is cut off.</summary>
    public int MaximumOptionBytes { get; init; } = 64 << 10;

    /// <summary>Requests of one connection executing at once; the next waits to be read until one completes.</summary>
    public int MaximumRequestsInFlight { get; init; } = 16;

    /// <summary>
    /// TLS (NBD_OPT_STARTTLS), or null for none: NBD_OPT_STARTTLS is then refused with NBD_REP_ERR_POLICY.
    /// </summary>
    public NbdTls? Tls { get; init; }
}

/// <summary>How a server treats TLS, in the NBD specification's terms.</summary>
public enum NbdTlsMode
{
    /// <summary>TLS at the client's choice (SELECTIVETLS with no TLS-only export).</summary>
    Allowed,

    /// <summary>
    /// TLS before anything else (FORCEDTLS): every option but NBD_OPT_STARTTLS and NBD_OPT_ABORT gets
    /// NBD_REP_ERR_TLS_REQD.
    /// </summary>
    Required,
}

/// <summary>
/// TLS on an NBD connection: the mode, and the server's side of the TLS handshake, which takes the
/// connection's stream after the NBD_REP_ACK to NBD_OPT_STARTTLS and returns the stream that carries
/// the rest of the session. The handshake itself lives outside the firmware (the host's TLS library).
/// </summary>
/// <param name="Mode">Allowed or required.</param>
/// <param name="StartAsync">The server's side of the TLS handshake; throws when it fails.</param>
public sealed record NbdTls(NbdTlsMode Mode, Func<Stream, CancellationToken, Task<Stream>> StartAsync);

/// <summary>The client broke a rule of the protocol that leaves no way to answer: the connection ends.</summary>
public sealed class NbdProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NbdProtocolException() { }

    /// <summary>Creates the exception with a message.</summary>
    public NbdProtocolException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public NbdProtocolException(string message, Exception innerException)
        : base(message, innerException) { }
}
