using System.Net.Sockets;
using Controller.Host.Commands;
using Controller.Host.Nbd;
using StreamJsonRpc;

namespace Controller.Host.Cli;

/// <summary>One verb of <c>ssdhost</c>: its help (with an example), its options and what it does.</summary>
internal sealed record Verb(string Name, string Summary, string Help, string[] Valued, string[] Flags, Func<HostArgs, HostConsole, CancellationToken, Task<int>> Run);

/// <summary>The command line of <c>ssdhost</c>: verbs, help, and the exit codes (0 done, 1 the device failed or the check found violations, 2 bad input).</summary>
public static class HostCli
{
    private static readonly Verb[] s_verbs =
    [
        BasicCommands.Info, BasicCommands.Write, BasicCommands.Read, BasicCommands.Trim, BasicCommands.Zero,
        BasicCommands.Flush, BasicCommands.Map, VerifyCommand.Verb, BenchCommand.Verb, ReplayCommand.Verb, ControlCommands.Stats, ControlCommands.PowerCut, ControlCommands.PowerFail,
    ];

    /// <summary>The usage of the tool as a whole.</summary>
    public static string Usage =>
        "Usage: ssdhost VERB [URI] [options]     (ssdhost VERB --help for one verb)\n\n" +
        "The host tool of the SSD controller: an NBD client that sends write, read, TRIM and flush\n" +
        "commands, and a client of the management endpoint. URIs as libnbd and qemu write them:\n" +
        "nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH, and nbds:// or nbds+unix:// for\n" +
        "TLS with --tls-certificates DIR (ca-cert.pem, and client-cert.pem with client-key.pem when\n" +
        "the server checks clients; the layout of libnbd's and qemu's). Sizes take k, M, G (x1024).\n\n" +
        "Verbs:\n" + string.Join('\n', s_verbs.Select(v => $"  {v.Name,-10} {v.Summary}")) + "\n\n" +
        "Exit codes: 0 done; 1 the device failed a command or the check found violations; 2 bad input\n" +
        "(a malformed URI, no server there, an offset past the end, a size not in whole blocks).\n\n" +
        "Example:\n  ssdhost write nbd://127.0.0.1:10809/ssd 0 --length 1M --pattern 0xab\n";

    /// <summary>Runs the command line <paramref name="args"/>; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, HostConsole console, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            await console.Out.WriteAsync(Usage).ConfigureAwait(false);
            return args.Length == 0 ? 2 : 0;
        }

        Verb? verb = s_verbs.FirstOrDefault(v => v.Name == args[0]);
        if (verb is null)
        {
            await console.Error.WriteLineAsync($"ssdhost: '{args[0]}' is not a verb; the verbs are {string.Join(", ", s_verbs.Select(v => v.Name))} (ssdhost --help)").ConfigureAwait(false);
            return 2;
        }

        if (args.Skip(1).Any(a => a is "--help" or "-h"))
        {
            await console.Out.WriteAsync(verb.Help).ConfigureAwait(false);
            return 0;
        }

        try
        {
            return await verb.Run(new HostArgs(verb.Name, args[1..], [.. verb.Valued, "--tls-certificates"], verb.Flags), console, cancellation).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            await console.Error.WriteLineAsync($"ssdhost {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (NbdCommandException e)
        {
            await console.Error.WriteLineAsync($"ssdhost {verb.Name}: {e.Message}").ConfigureAwait(false);
            return e.Error is Firmware.Host.Nbd.NbdError.Invalid or Firmware.Host.Nbd.NbdError.Overflow ? 2 : 1;
        }
        catch (Exception e) when (e is NbdClientException or IOException or SocketException or EndOfStreamException or RemoteInvocationException or ConnectionLostException or UnauthorizedAccessException or System.Security.Authentication.AuthenticationException)
        {
            await console.Error.WriteLineAsync($"ssdhost {verb.Name}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await console.Error.WriteLineAsync($"ssdhost {verb.Name}: interrupted").ConfigureAwait(false);
            return 130;
        }
    }
}
