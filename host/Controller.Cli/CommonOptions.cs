namespace Controller.Cli;

/// <summary>
/// The options several verbs share, defined once so that they read and complete the same
/// everywhere: the configuration (<c>--config</c>, <c>--set</c>), the management endpoint
/// (<c>--control</c>, <c>--control-token</c>) and TLS credentials (<c>--tls-certificates</c>).
/// </summary>
public static class CommonOptions
{
    /// <summary><c>--set KEY=VALUE</c>, repeatable.</summary>
    public static readonly OptionSpec Set = new(
        "--set",
        "KEY=VALUE",
        "override one configuration key; repeatable (e.g. --set nand.channels=8; ssd-emulator info lists the keys)",
        Repeatable: true
    );

    /// <summary><c>--control URI</c> as a client gives it.</summary>
    public static readonly OptionSpec Control = new(
        "--control",
        "URI",
        "the server's management endpoint: unix:PATH, tcp://HOST:PORT or tls://HOST:PORT (as the server's --control)"
    );

    /// <summary><c>--control-token FILE</c> as a client gives it.</summary>
    public static readonly OptionSpec ControlToken = new(
        "--control-token",
        "FILE",
        "send the secret in FILE first (a server with --control-token off loopback asks for it)"
    );

    /// <summary><c>--tls-certificates DIR</c> as a client gives it.</summary>
    public static readonly OptionSpec ClientTlsCertificates = new(
        "--tls-certificates",
        "DIR",
        "ca-cert.pem, and client-cert.pem with client-key.pem when the server checks clients (libnbd's and qemu's layout); for nbds://, nbds+unix:// and tls://"
    );

    /// <summary><c>--config FILE|NAME</c>: a profile file or one shipped under <paramref name="profiles"/>.</summary>
    public static OptionSpec Config(IEnumerable<string> profiles) =>
        new(
            "--config",
            "FILE|NAME",
            $"a profile file, or a shipped profile by name: {string.Join(", ", profiles)} (default: the default emulated device)",
            Choices: [.. profiles]
        );
}
