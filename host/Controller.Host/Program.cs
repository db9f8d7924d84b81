namespace Controller.Host;

/// <summary>
/// <c>ssdhost</c>, the host tool: an NBD client that sends write, read, TRIM and flush commands,
/// and a client of the management endpoint. This build has no verbs yet; it says so rather than
/// pretending.
/// </summary>
public static class Program
{
    private const string Usage = """
        Usage: ssdhost VERB URI [options]

        The host tool of the SSD controller. Its verbs (info, write, read, trim, zero, flush, map,
        verify, bench, stats, power-cut) arrive with the NBD server; none is available in this build.
        """;

    /// <summary>Prints the usage; exits 0 for --help, 2 for anything else.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.Out.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        Console.Error.WriteLine($"ssdhost: '{args[0]}' is not available in this build (ssdhost --help)");
        return 2;
    }
}
