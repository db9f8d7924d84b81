namespace Controller.Host.Cli;

/// <summary>Where a verb reads and writes: the process's console, or a test's buffers.</summary>
public sealed record HostConsole(
    TextWriter Out,
    TextWriter Error,
    Func<Stream> OpenInput,
    Func<Stream> OpenOutput,
    bool OutputIsTerminal
)
{
    /// <summary>The process's own standard streams.</summary>
    public static HostConsole Process() =>
        new(
            Console.Out,
            Console.Error,
            Console.OpenStandardInput,
            Console.OpenStandardOutput,
            !Console.IsOutputRedirected
        );
}
