using Controller.Emulator.Cli;
using Controller.Firmware.Config;
using Controller.Hosting;
using Controller.Hosting.Recording;

namespace Controller.Emulator.Serve;

/// <summary><c>ssd-emulator serve</c>: the emulated SSD as an NBD server.</summary>
internal static class ServeCommand
{
    /// <summary>The options <c>serve</c> takes with a value.</summary>
    public static readonly string[] Valued = ["--config", "--set", "--image", .. RecordingOptions.Valued, .. NbdService.Valued];

    /// <summary>The flags <c>serve</c> takes.</summary>
    public static readonly string[] Flags = NbdService.Flags;

    public static readonly string Help = $"""
        Usage: ssd-emulator serve [--config FILE|NAME] [--set KEY=VALUE]... [--image FILE]
                                  [--record FILE [--record-data full|digest]]
                                  [--listen URI]... [--export NAME] [--read-only] [--allow-remote]
                                  [--tls off|on|require] [--tls-certificates DIR] [--tls-verify-peer]
                                  [--control URI] [--control-token FILE] [--telemetry-interval S]

        Boots the firmware on the emulated NAND and serves it over NBD (fixed newstyle) until Ctrl-C
        or SIGTERM, which write back the cache, flush and checkpoint, then exit 0. Several clients
        may connect at once; they all reach the one controller loop.

          --config FILE|NAME   a profile (default: the built-in default); profiles: {"{profiles}"}
          --set KEY=VALUE      override one configuration key (ssd-emulator info lists them)
          --image FILE         keep the NAND in FILE (created if missing, recovered if not); without
                               it the NAND lives in memory and is gone at exit. A SIGKILL of this
                               process is a power cut: after a restart every flushed write is there.
        {RecordingOptions.Help}
        {NbdService.OptionsHelp("ssd-emulator serve")}

        A power cut over --control ends every NBD connection, recovers the firmware from the NAND as
        it was left and serves again.

        Examples:
          ssd-emulator serve --image ssd.img
          ssd-emulator serve --config tiny --listen nbd+unix:///?socket=/tmp/ssd.sock
          qemu-io -f raw nbd://127.0.0.1:10809/ssd -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'
          nbdinfo nbd://127.0.0.1:10809/ssd
          ssd-emulator serve --control unix:/tmp/ssd.ctl   then: ssdhost stats --control unix:/tmp/ssd.ctl
        """;

    public static int Run(Arguments args, TextWriter output)
    {
        string? profile = args.Single("--config");
        ResolvedConfig config = Profiles.Load(profile, NbdService.ConfigSets(args));
        NbdService.ServeOptions serving = NbdService.Parse(args, "ssd-emulator");
        RecordingOptions? record = RecordingOptions.Parse(args);
        SessionRecorder? recorder = record?.Start(config, EmulatedDevice.Describe(profile ?? "default", args.Single("--image"), config), RecordedClock.Moves, jumpsToEvents: config.Get(FirmwareConfig.TimingMode) != "realtime");
        using ServedController controller = EmulatedDevice.Boot(config, profile ?? "default", args.Single("--image"), args.Single("--export") ?? "ssd", recorder: recorder);
        if (record is not null)
        {
            output.WriteLine(record.Banner("ssd-emulator"));
        }

        return NbdService.Run(controller, serving, output, "ssd-emulator");
    }
}
