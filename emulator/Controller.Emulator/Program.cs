using System.Runtime.InteropServices;
using Controller.Cli;
using Controller.Emulator.Cli;
using Controller.Emulator.Nand;
using Controller.Firmware.Config;

namespace Controller.Emulator;

/// <summary>The emulator's command line: <c>ssd-emulator VERB [options]</c>.</summary>
public static class Program
{
    /// <summary>The program, its verbs writing to <paramref name="output"/>.</summary>
    public static ProgramSpec Spec(TextWriter output) =>
        new(
            "ssd-emulator",
            "The SSD controller's firmware on an emulated NAND: served over NBD, or run headless and deterministic with power cuts and the oracle.",
            [
                Serve.ServeCommand.Verb(output),
                InfoCommand.Verb(output),
                NandTestCommand.Verb(output),
                SimCommand.Verb(output),
                CrashTestCommand.Verb(output),
            ]
        )
        {
            DefaultVerb = "serve",
            Epilogue = $"""
                Profiles shipped in hw-config, usable as --config NAME: {string.Join(", ", Profiles.BuiltInNames())}
                Without a verb, serves the default device on nbd://127.0.0.1:10809 (ssd-emulator serve --help).
                Exit codes: 0 done; 1 the device failed or a check found violations; 2 bad input.
                """,
            ExitCodeOf = e =>
                e switch
                {
                    ConfigException or NandImageException => ExitCodes.Usage,
                    Firmware.Ftl.FtlMountException => ExitCodes.Failure,
                    _ => null,
                },
        };

    /// <summary>Runs the command line and returns the exit code: 0 done, 1 a check failed, 2 bad input.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        // The first Ctrl-C asks the verb to stop where it can (sim at the next seed, with its
        // report); a second one ends the process. serve handles its own signals.
        using var interrupt = new CancellationTokenSource();
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (!interrupt.IsCancellationRequested)
            {
                context.Cancel = true;
                Console.Error.WriteLine(
                    "ssd-emulator: stopping where the work can stop cleanly (Ctrl-C again to stop at once)"
                );
                interrupt.Cancel();
            }
        });
        return CliRunner
            .RunAsync(Spec(Console.Out), args, Console.Out, Console.Error, interrupt.Token)
            .GetAwaiter()
            .GetResult();
    }
}
