using System.Text;
using System.Text.Json;
using Controller.Cli;
using Controller.Firmware.Config;

namespace Controller.Hosting.Recording;

/// <summary>
/// <c>--record FILE</c> and <c>--record-data full|digest</c>, as <c>serve</c> and <c>ssd-board</c> take them.
/// </summary>
/// <param name="Path">The recording to write (it must not exist).</param>
/// <param name="Data">How writes' data is kept.</param>
/// <param name="ExistingImage">The NAND image the session starts from exists: its contents are not in the recording, so
/// every NAND outcome is.</param>
public sealed record RecordingOptions(string Path, RecordedData Data, bool ExistingImage)
{
    /// <summary>Both options, as <c>serve</c> and <c>ssd-board</c> take them.</summary>
    public static readonly OptionSpec[] Options =
    [
        new(
            "--record",
            "FILE",
            "write every input the firmware takes (each command with its data and connection, the clock, each step of the loop, power cuts, faults and checkpoints over --control) to FILE, zstd-compressed, as it goes; a SIGKILL leaves it readable up to its last flushed record. `ssd-emulator sim --replay FILE` runs the same execution again, to the same trace-hash (printed when the server stops). From an --image that holds data, or on a real chip, every NAND outcome is recorded too, and the replay needs neither"
        ),
        new(
            "--record-data",
            "full|digest",
            "full (default): every byte written; digest: a checksum of each write, from which the replay makes data of its own (the firmware's execution does not depend on the bytes, so the hash is the same; the contents are not)",
            Choices: ["full", "digest"]
        ),
    ];

    /// <summary>The options given, checked before anything starts; null without <c>--record</c>.</summary>
    public static RecordingOptions? Parse(CommandArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
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

        return new RecordingOptions(path, mode, args.Single("--image") is { } image && File.Exists(image));
    }

    /// <summary>Every key of <paramref name="config"/> as a profile file, for a recording's header.</summary>
    public static string ConfigJson(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            config.WriteJson(json);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Starts the recorder these options ask for, on a device whose clock is kept as
    /// <paramref name="clock"/> says; every NAND outcome is recorded too on a real chip
    /// (<paramref name="realChip"/>) or from an existing image.
    /// </summary>
    public SessionRecorder Start(
        ResolvedConfig config,
        string device,
        RecordedClock clock,
        bool jumpsToEvents,
        bool realChip = false
    ) =>
        new(
            Path,
            ConfigJson(config),
            device,
            Data,
            clock,
            realChip || ExistingImage ? RecordedNand.Outcomes : RecordedNand.Emulated,
            jumpsToEvents
        );

    /// <summary>The line a server prints when it starts recording.</summary>
    public string Banner(string program) =>
        $"{program}: recording the session in {Path} (data: {(Data == RecordedData.Full ? "full" : "digest")})";
}
