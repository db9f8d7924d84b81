using Controller.Emulator.Cli;
using Controller.Firmware.Config;
using Controller.Hosting;
using Controller.Hosting.Recording;

namespace Controller.Emulator.Serve;

/// <summary><c>ssd-emulator serve</c>: the emulated SSD as an NBD server.</summary>
internal static class ServeCommand
{
    /// <summary>The options <c>serve</c> takes with a value.</summary>
    public static readonly string[] Valued = ["--config", "--set", "--image", "--record", "--record-data", .. NbdService.Valued];

    /// <summary>The flags <c>serve</c> takes.</summary>
    public static readonly string[] Flags = NbdService.Flags;

    public static readonly string Help = $"""
        Usage: ssd-emulator serve [--config FILE|NAME] [--set KEY=VALUE]... [--image FILE]
                                  [--record FILE [--record-data full|digest]]
                                  [--listen URI]... [--export NAME] [--allow-remote]
                                  [--control URI] [--telemetry-interval S]

        Boots the firmware on the emulated NAND and serves it over NBD (fixed newstyle) until Ctrl-C
        or SIGTERM, which write back the cache, flush and checkpoint, then exit 0. Several clients
        may connect at once; they all reach the one controller loop.

          --config FILE|NAME   a profile (default: the built-in default); profiles: {"{profiles}"}
          --set KEY=VALUE      override one configuration key (ssd-emulator info lists them)
          --image FILE         keep the NAND in FILE (created if missing, recovered if not); without
                               it the NAND lives in memory and is gone at exit. A SIGKILL of this
                               process is a power cut: after a restart every flushed write is there.
          --record FILE        write every input the firmware takes (each command with its data and
                               connection, the clock, each step of the loop, power cuts, faults and
                               checkpoints over --control) to FILE, zstd-compressed, as it goes; a
                               SIGKILL leaves it readable up to its last flushed record. `ssd-emulator
                               sim --replay FILE` runs the same execution again, to the same trace-hash
                               (printed when the server stops). Starts from a fresh NAND: with --image,
                               the file must not exist yet
          --record-data M      full (default): every byte written; digest: a checksum of each write,
                               from which the replay makes data of its own (the firmware's execution
                               does not depend on the bytes, so the hash is the same; the contents are not)
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
        ResolvedConfig config = Profiles.Load(profile, args.All("--set"));
        NbdService.ServeOptions serving = NbdService.Parse(args, "ssd-emulator");
        (string Path, RecordedData Data)? record = Recording(args);
        using ServedController controller = EmulatedDevice.Boot(config, profile ?? "default", args.Single("--image"), args.Single("--export") ?? "ssd");
        if (record is { } r)
        {
            controller.Record(new SessionRecorder(r.Path, ConfigJson(config), controller.Description, r.Data));
            output.WriteLine($"ssd-emulator: recording the session in {r.Path} (data: {(r.Data == RecordedData.Full ? "full" : "digest")})");
        }

        return NbdService.Run(controller, serving, output, "ssd-emulator");
    }

    /// <summary>--record FILE and --record-data, checked before anything starts.</summary>
    private static (string Path, RecordedData Data)? Recording(Arguments args)
    {
        string? path = args.Single("--record");
        string? data = args.Single("--record-data");
        if (path is null)
        {
            return data is null ? null : throw new UsageException("--record-data applies to --record FILE");
        }

        RecordedData mode = data switch
        {
            null or "full" => RecordedData.Full,
            "digest" => RecordedData.Digest,
            _ => throw new UsageException($"--record-data: '{data}' is neither full nor digest"),
        };
        if (File.Exists(path))
        {
            throw new UsageException($"--record: '{path}' exists; a recording starts a new file");
        }

        if (args.Single("--image") is { } image && File.Exists(image))
        {
            throw new UsageException($"--record: the NAND image '{image}' exists; a recording starts from a fresh NAND (it does not carry the image's contents): give a new --image, or none");
        }

        return (path, mode);
    }

    /// <summary>Every key of <paramref name="config"/> as a profile file, for a recording's header.</summary>
    internal static string ConfigJson(ResolvedConfig config)
    {
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            config.WriteJson(json);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
