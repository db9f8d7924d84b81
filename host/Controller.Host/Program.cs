using Controller.Host.Cli;

namespace Controller.Host;

/// <summary><c>ssdhost</c>, the host tool: an NBD client and a client of the management endpoint.</summary>
public static class Program
{
    /// <summary>Runs one verb; Ctrl-C stops it cleanly.</summary>
    public static async Task<int> Main(string[] args)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return await HostCli.RunAsync(args, HostConsole.Process(), stop.Token).ConfigureAwait(false);
    }
}
