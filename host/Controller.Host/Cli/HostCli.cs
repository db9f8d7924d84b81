using System.Net.Sockets;
using Controller.Cli;
using Controller.Host.Commands;
using Controller.Host.Nbd;
using StreamJsonRpc;

namespace Controller.Host.Cli;

/// <summary>One verb of <c>ssdhost</c>: as <see cref="VerbSpec"/>, run against a <see cref="HostConsole"/>.</summary>
internal sealed record Verb(
    string Name,
    string Summary,
    string Description,
    OptionSpec[] Options,
    Func<CommandArgs, HostConsole, CancellationToken, Task<int>> Run
)
{
    /// <summary>Positional arguments, in order.</summary>
    public ArgumentSpec[] Arguments { get; init; } = [];

    /// <summary>Examples and notes after the options.</summary>
    public string? Epilogue { get; init; }

    /// <summary>
    /// The verb writing to <paramref name="console"/>; every verb takes --tls-certificates for nbds:// and tls:// URIs.
    /// </summary>
    public VerbSpec Bind(HostConsole console) =>
        new(
            Name,
            Summary,
            Description,
            [
                .. Options,
                .. Options.Any(o => o.Name == "--tls-certificates")
                    ? []
                    : new[] { CommonOptions.ClientTlsCertificates },
            ],
            (args, cancellation) => Run(args, console, cancellation)
        )
        {
            Arguments = Arguments,
            Epilogue = Epilogue,
        };
}

/// <summary>The options and positionals several verbs of <c>ssdhost</c> share.</summary>
internal static class HostOptions
{
    public static readonly ArgumentSpec Uri = new(
        "URI",
        "nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH; nbds:// and nbds+unix:// for TLS"
    );

    public static readonly ArgumentSpec Offset = new("OFFSET", "where the range starts, in bytes (k, M, G)");

    public static readonly ArgumentSpec Length = new("LENGTH", "bytes in the range (k, M, G)");

    public static readonly OptionSpec Json = new("--json", null, "one JSON object instead of text");

    public static OptionSpec Fua(string what) => new("--fua", null, $"Forced Unit Access: {what}");
}

/// <summary>
/// The command line of <c>ssdhost</c>: verbs, help, and the exit codes (0 done, 1 the device failed or the check found
/// violations, 2 bad input).
/// </summary>
public static class HostCli
{
    private static readonly Verb[] s_verbs =
    [
        BasicCommands.Info,
        BasicCommands.Write,
        BasicCommands.Read,
        BasicCommands.Trim,
        BasicCommands.Zero,
        BasicCommands.Flush,
        BasicCommands.Map,
        VerifyCommand.Verb,
        BenchCommand.Verb,
        ReplayCommand.Verb,
        ControlCommands.Stats,
        ControlCommands.PowerCut,
        ControlCommands.PowerFail,
    ];

    /// <summary>The program, its verbs writing to <paramref name="console"/>.</summary>
    public static ProgramSpec Spec(HostConsole console) =>
        new(
            "ssdhost",
            "The host tool of the SSD controller: an NBD client that sends write, read, TRIM and flush commands, and a client of the management endpoint. URIs as libnbd and qemu write them: nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH, and nbds:// or nbds+unix:// for TLS with --tls-certificates DIR (ca-cert.pem, and client-cert.pem with client-key.pem when the server checks clients; the layout of libnbd's and qemu's). Sizes take k, M, G (x1024).",
            [.. s_verbs.Select(v => v.Bind(console))]
        )
        {
            Epilogue = """
                Exit codes: 0 done; 1 the device failed a command or the check found violations; 2 bad input
                (a malformed URI, no server there, an offset past the end, a size not in whole blocks).

                Example:
                  ssdhost write nbd://127.0.0.1:10809/ssd 0 --length 1M --pattern 0xab
                """,
            ExitCodeOf = e =>
                e switch
                {
                    NbdCommandException command => command.Error
                        is Controller.Nbd.NbdError.Invalid
                            or Controller.Nbd.NbdError.Overflow
                        ? ExitCodes.Usage
                        : ExitCodes.Failure,
                    NbdClientException
                    or IOException
                    or SocketException
                    or EndOfStreamException
                    or RemoteInvocationException
                    or ConnectionLostException
                    or UnauthorizedAccessException
                    or System.Security.Authentication.AuthenticationException => ExitCodes.Failure,
                    _ => null,
                },
        };

    /// <summary>Runs the command line <paramref name="args"/>; returns the exit code.</summary>
    public static Task<int> RunAsync(string[] args, HostConsole console, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        return CliRunner.RunAsync(Spec(console), args, console.Out, console.Error, cancellation);
    }
}
