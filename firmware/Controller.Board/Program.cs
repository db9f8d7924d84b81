using Controller.Firmware.Config;

namespace Controller.Board;

/// <summary>
/// <c>ssd-board</c>, the dev-board image. Today it validates chip descriptions and profiles with
/// the firmware's own schema (the one a board accepts: no emulator fault keys); driving a SPI NAND
/// chip arrives with the SPI driver.
/// </summary>
public static class Program
{
    private const string Usage = """
        Usage: ssd-board check --config FILE [--set KEY=VALUE]...

        Validates a chip description or profile against the firmware's configuration schema and
        prints the resolved keys. Serving from a SPI NAND chip (--board hw-config/boards/NAME.json)
        is not available in this build yet.

        Example: ssd-board check --config hw-config/chips/w25n01gv.json
        """;

    /// <summary>Runs the command line: 0 valid, 2 bad input.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.Out.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] != "check")
        {
            Console.Error.WriteLine($"ssd-board: '{args[0]}' is not available in this build (ssd-board --help)");
            return 2;
        }

        try
        {
            (string? file, List<string> overrides) = ParseCheck(args[1..]);
            ResolvedConfig config = ConfigLoader.Load(FirmwareConfig.Schema, file, overrides);
            foreach (ConfigKey key in config.Schema.Keys)
            {
                Console.Out.WriteLine($"{key.Path} = {key.Format(config.Get(key))}");
            }

            return 0;
        }
        catch (Exception e) when (e is ConfigException or ArgumentException)
        {
            Console.Error.WriteLine($"ssd-board: {e.Message}");
            return 2;
        }
    }

    private static (string? File, List<string> Overrides) ParseCheck(string[] args)
    {
        string? file = null;
        var overrides = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--config":
                    file = value;
                    break;
                case "--set":
                    overrides.Add(value);
                    break;
                default:
                    throw new ArgumentException($"unknown option '{args[i]}' (ssd-board --help)");
            }

            i++;
        }

        return file is null ? throw new ArgumentException("check needs --config FILE") : (file, overrides);
    }
}
