using Controller.Host.Cli;

namespace Controller.Tests.Support;

/// <summary>Runs an <c>ssdhost</c> command line in this process and captures what it prints.</summary>
internal static class HostRun
{
    public static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args) =>
        RunAsync(TimeSpan.FromMinutes(2), args);

    /// <summary>Runs <paramref name="args"/>, cancelled (as Ctrl-C would) after <paramref name="stopAfter"/>.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(
        TimeSpan stopAfter,
        params string[] args
    )
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var binary = new MemoryStream();
        var console = new HostConsole(output, error, () => new MemoryStream(), () => binary, OutputIsTerminal: false);
        using var timeout = new CancellationTokenSource(stopAfter);
        int exitCode = await HostCli.RunAsync(args, console, timeout.Token);
        return (exitCode, output.ToString(), error.ToString());
    }
}
