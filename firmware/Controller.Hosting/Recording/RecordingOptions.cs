using System.Text;
using System.Text.Json;
using Controller.Firmware.Config;

namespace Controller.Hosting.Recording;

/// <summary><c>--record FILE</c> and <c>--record-data full|digest</c>, as <c>serve</c> and <c>ssd-board</c> take them.</summary>
/// <param name="Path">The recording to write (it must not exist).</param>
/// <param name="Data">How writes' data is kept.</param>
public sealed record RecordingOptions(string Path, RecordedData Data)
{
    /// <summary>The options with a value.</summary>
    public static readonly string[] Valued = ["--record", "--record-data"];

    /// <summary>The help lines for both options.</summary>
    public const string Help = """
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
        """;

    /// <summary>The options given, checked before anything starts; null without <c>--record</c>.</summary>
    public static RecordingOptions? Parse(Arguments args)
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

        if (args.Single("--image") is { } image && File.Exists(image))
        {
            throw new UsageException($"--record: the NAND image '{image}' exists; a recording starts from a fresh NAND (it does not carry the image's contents): give a new --image, or none");
        }

        return new RecordingOptions(path, mode);
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

    /// <summary>Starts the recorder these options ask for.</summary>
    public SessionRecorder Start(ResolvedConfig config, string device, RecordedClock clock) =>
        new(Path, ConfigJson(config), device, Data, clock);

    /// <summary>The line a server prints when it starts recording.</summary>
    public string Banner(string program) => $"{program}: recording the session in {Path} (data: {(Data == RecordedData.Full ? "full" : "digest")})";
}
