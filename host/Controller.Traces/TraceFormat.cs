namespace Controller.Traces;

/// <summary>The block trace formats read here.</summary>
public enum TraceFormat
{
    /// <summary>
    /// blkparse's default text output: the <c>D</c> (issued) events, with RWBS (R read, W write,
    /// D discard, a leading F a preflush, a trailing F forced unit access, F or FN alone a flush),
    /// sectors of 512 bytes, times in seconds.
    /// </summary>
    Blkparse,

    /// <summary>
    /// fio's iolog, version 2 (no times; <c>wait</c> lines pace it) or 3 (a time in microseconds on each line): read,
    /// write, trim, sync and datasync.
    /// </summary>
    FioIolog,

    /// <summary>
    /// MQSim's ASCII trace: <c>time-ns device lba sectors type</c>, 512-byte sectors, type 0 write, 1 read.
    /// </summary>
    MqSim,

    /// <summary>
    /// The MSR Cambridge CSV: <c>Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime</c>, times in 100 ns
    /// ticks, offsets and sizes in bytes.
    /// </summary>
    Msr,

    /// <summary>
    /// The SNIA (UMass) SPC format: <c>ASU,LBA,Size,Opcode,Timestamp</c>, 512-byte blocks, sizes in bytes, times in
    /// seconds.
    /// </summary>
    Spc,
}

/// <summary>The formats by the names the command lines take.</summary>
public static class TraceFormats
{
    private static readonly (string Name, TraceFormat Format)[] Known =
    [
        ("blkparse", TraceFormat.Blkparse),
        ("fio", TraceFormat.FioIolog),
        ("mqsim", TraceFormat.MqSim),
        ("msr", TraceFormat.Msr),
        ("spc", TraceFormat.Spc),
    ];

    /// <summary>The names, as a user types them.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Known.Select(k => k.Name)];

    /// <summary>The format called <paramref name="name"/> (case-insensitive; <c>iolog</c> is fio's too).</summary>
    /// <exception cref="ArgumentException">No format is called that; the message lists them.</exception>
    public static TraceFormat Parse(string name) =>
        TryParse(name, out TraceFormat format)
            ? format
            : throw new ArgumentException(
                $"unknown trace format '{name}'; formats are {string.Join(", ", Names)}",
                nameof(name)
            );

    /// <summary>The format called <paramref name="name"/>, if one is (as <see cref="Parse"/>).</summary>
    public static bool TryParse(string name, out TraceFormat format)
    {
        foreach ((string known, TraceFormat candidate) in Known)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                format = candidate;
                return true;
            }
        }

        format = TraceFormat.FioIolog;
        return string.Equals(name, "iolog", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary><c>wrap</c> (also when not given) or <c>scale</c>.</summary>
    /// <exception cref="FormatException">Neither; the message names the value.</exception>
    public static TraceFit ParseFit(string? text) =>
        text switch
        {
            null or "wrap" => TraceFit.Wrap,
            "scale" => TraceFit.Scale,
            _ => throw new FormatException($"'{text}' is neither wrap nor scale"),
        };

    /// <summary>A replay's speed factor: 1 when not given, 0 for as fast as possible.</summary>
    /// <exception cref="FormatException">Not a finite factor from 0 to 10^9; the message names the value.</exception>
    public static double ParseSpeed(string? text)
    {
        string given = text ?? "1";
        return
            double.TryParse(
                given,
                System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture,
                out double speed
            )
            && double.IsFinite(speed)
            && speed is >= 0 and <= 1e9
            ? speed
            : throw new FormatException($"'{given}' is not a factor from 0 (as fast as possible) up, such as 1 or 2.5");
    }

    /// <summary>The name of <paramref name="format"/> as <see cref="Parse"/> takes it.</summary>
    public static string NameOf(TraceFormat format) => Known.First(k => k.Format == format).Name;
}
