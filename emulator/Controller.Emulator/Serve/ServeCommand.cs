using Controller.Cli;
using Controller.Emulator.Cli;
using Controller.Firmware.Config;
using Controller.Hosting;
using Controller.Hosting.Recording;

namespace Controller.Emulator.Serve;

/// <summary><c>ssd-emulator serve</c>: the emulated SSD as an NBD server.</summary>
internal static class ServeCommand
{
    public static VerbSpec Verb(TextWriter output) =>
        new(
            "serve",
            "serve the emulated SSD over NBD (the default verb)",
            """
            Boots the firmware on the emulated NAND and serves it over NBD (fixed newstyle) until Ctrl-C or SIGTERM, which write back the cache, flush and checkpoint, then exit 0. Several clients may connect at once; they all reach the one controller loop.

            A power cut over --control ends every NBD connection, recovers the firmware from the NAND as it was left and serves again.
            """,
            [
                CommonOptions.Config(Profiles.BuiltInNames()),
                CommonOptions.Set,
                new(
                    "--image",
                    "FILE",
                    "keep the NAND in FILE (created if missing, recovered if not); without it the NAND lives in memory and is gone at exit. A SIGKILL of this process is a power cut: after a restart every flushed write is there."
                ),
                .. RecordingOptions.Options,
                .. ServeCommandLine.Options,
            ],
            (args, _) => Task.FromResult(Run(args, output))
        )
        {
            Epilogue = $"""
                {ServeCommandLine.SocketActivationNote("ssd-emulator serve")}

                Examples:
                  ssd-emulator serve --image ssd.img
                  ssd-emulator serve --config tiny --listen nbd+unix:///?socket=/tmp/ssd.sock
                  qemu-io -f raw nbd://127.0.0.1:10809/ssd -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'
                  nbdinfo nbd://127.0.0.1:10809/ssd
                  ssd-emulator serve --control unix:/tmp/ssd.ctl   # then: ssdhost stats --control unix:/tmp/ssd.ctl
                """,
        };

    public static int Run(CommandArgs args, TextWriter output)
    {
        string? profile = args.Single("--config");
        ResolvedConfig config = Profiles.Load(profile, ServeCommandLine.ConfigSets(args));
        ServeOptions serving = ServeCommandLine.Parse(args, "ssd-emulator");
        RecordingOptions? record = RecordingOptions.Parse(args);
        // Listening first: a port in use leaves no new image or recording behind.
        using BoundSockets sockets = NbdService.Bind(serving);
        SessionRecorder? recorder = record?.Start(
            config,
            EmulatedDevice.Describe(profile ?? "default", args.Single("--image"), config),
            RecordedClock.Moves,
            jumpsToEvents: config.Get(FirmwareConfig.TimingMode) != "realtime"
        );
        using ServedController controller = EmulatedDevice.Boot(
            config,
            profile ?? "default",
            args.Single("--image"),
            args.Single("--export") ?? "ssd",
            recorder: recorder
        );
        if (record is not null)
        {
            output.WriteLine(record.Banner("ssd-emulator"));
        }

        using var signals = new StopSignals();
        return NbdService.Run(controller, serving, sockets, output, "ssd-emulator", signals.Token);
    }
}
