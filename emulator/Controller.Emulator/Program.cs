using Controller.Hosting;
using Controller.Emulator.Cli;
using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Firmware.Config;

namespace Controller.Emulator;

/// <summary>The emulator's command line: <c>ssd-emulator VERB [options]</c>.</summary>
public static class Program
{
    private const string Usage = """
        Usage: ssd-emulator VERB [options]      (ssd-emulator VERB --help for a verb's options)

        Verbs:
          serve      serve the emulated SSD over NBD (the default verb)
          info       print the resolved configuration, NAND geometry and capacities
          nandtest   program, read back and verify every page of the emulated NAND (or --check an image)
          sim        deterministic runs of the whole SSD with power cuts and the oracle, one line per seed
          crashtest  every short sequence of commands, cut at every NAND operation, checked by the oracle

        Profiles shipped in hw-config, usable as --config NAME: {profiles}
        Without a verb, serves the default device on nbd://127.0.0.1:10809 (serve --help).
        """;

    /// <summary>Runs the command line and returns the exit code: 0 done, 1 a check failed, 2 bad input.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string verb = args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal) ? "serve" : args[0];
        string[] rest = args.Length > 0 && args[0] == verb ? args[1..] : args;
        string profiles = string.Join(", ", Profiles.BuiltInNames());
        try
        {
            switch (verb)
            {
                case "help" or "-h":
                    Console.Out.WriteLine(Usage.Replace("{profiles}", profiles, StringComparison.Ordinal));
                    return 0;
                case "serve":
                    return Dispatch(rest, Serve.ServeCommand.Help, profiles, Serve.ServeCommand.Valued, Serve.ServeCommand.Flags, Serve.ServeCommand.Run);
                case "info":
                    return Dispatch(rest, InfoCommand.Help, profiles, ["--config", "--set"], ["--json"], InfoCommand.Run);
                case "nandtest":
                    return Dispatch(rest, NandTestCommand.Help, profiles, ["--config", "--set", "--image", "--passes", "--blocks", "--seed"], ["--check"], NandTestCommand.Run);
                case "crashtest":
                    return Dispatch(rest, CrashTestCommand.Help, profiles, CrashTestCommand.Valued, [], CrashTestCommand.Run);
                case "sim":
                    return Dispatch(rest, SimCommand.Help.Replace("{workloads}", string.Join(", ", SimRunner.Workloads), StringComparison.Ordinal).Replace("{formats}", string.Join(", ", Controller.Traces.TraceFormats.Names), StringComparison.Ordinal), profiles, SimCommand.Valued, SimCommand.Flags, SimCommand.Run);
                default:
                    throw new UsageException($"unknown verb '{verb}'; verbs are serve, info, nandtest, sim, crashtest (ssd-emulator help)");
            }
        }
        catch (Exception e) when (e is UsageException or ConfigException or NandImageException or Firmware.Ftl.FtlMountException)
        {
            Console.Error.WriteLine($"ssd-emulator: {e.Message}");
            return 2;
        }
    }

    private static int Dispatch(string[] args, string help, string profiles, string[] valued, string[] flags, Func<Arguments, TextWriter, int> run)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(help.Replace("{profiles}", profiles, StringComparison.Ordinal));
            return 0;
        }

        return run(Arguments.Parse(args, valued, flags), Console.Out);
    }
}
