using System.Globalization;

namespace Controller.Host.Cli;

/// <summary>A command line that cannot be carried out: one line on standard error, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The arguments of one verb: positionals, <c>--name value</c> options and <c>--flag</c>s.</summary>
internal sealed class HostArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    /// <summary>Parses <paramref name="args"/> for a verb that takes the options <paramref name="valued"/> and the flags <paramref name="flags"/>.</summary>
    public HostArgs(string verb, IReadOnlyList<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(valued);
        ArgumentNullException.ThrowIfNull(flags);
        Verb = verb;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                string name = arg, value = "";
                int equals = arg.IndexOf('=', StringComparison.Ordinal);
                if (equals > 0)
                {
                    (name, value) = (arg[..equals], arg[(equals + 1)..]);
                }

                if (valued.Contains(name))
                {
                    if (equals < 0)
                    {
                        value = i + 1 < args.Count ? args[++i] : throw new UsageException($"{verb}: {name} needs a value (ssdhost {verb} --help)");
                    }

                    if (!_values.TryAdd(name, value))
                    {
                        throw new UsageException($"{verb}: {name} is given twice");
                    }
                }
                else if (flags.Contains(name) && equals < 0)
                {
                    _flags.Add(name);
                }
                else
                {
                    throw new UsageException($"{verb}: unknown option '{arg}' (ssdhost {verb} --help)");
                }
            }
            else
            {
                Positionals.Add(arg);
            }
        }
    }

    /// <summary>The verb these arguments are for.</summary>
    public string Verb { get; }

    /// <summary>The arguments that are not options, in order.</summary>
    public List<string> Positionals { get; } = [];

    /// <summary>True if <paramref name="flag"/> was given.</summary>
    public bool Has(string flag) => _flags.Contains(flag);

    /// <summary>The value of <paramref name="name"/>, or null.</summary>
    public string? Value(string name) => _values.GetValueOrDefault(name);

    /// <summary>The positional at <paramref name="index"/>, named <paramref name="what"/> in the error when it is missing.</summary>
    public string Positional(int index, string what) =>
        index < Positionals.Count ? Positionals[index] : throw new UsageException($"{Verb}: missing {what} (ssdhost {Verb} --help)");

    /// <summary>Refuses positionals beyond the first <paramref name="count"/>.</summary>
    public void AtMost(int count)
    {
        if (Positionals.Count > count)
        {
            throw new UsageException($"{Verb}: unexpected argument '{Positionals[count]}' (ssdhost {Verb} --help)");
        }
    }

    /// <summary>A size or offset option with k/M/G/T suffixes (powers of 1024).</summary>
    public long Size(string name, long defaultValue) => Value(name) is { } text ? ParseSize(text, name) : defaultValue;

    /// <summary>A whole-number option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long Integer(string name, long defaultValue, long min, long max)
    {
        if (Value(name) is not { } text)
        {
            return defaultValue;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) || value < min || value > max)
        {
            throw new UsageException($"{Verb}: {name} '{text}' is not a whole number from {min} to {max}");
        }

        return value;
    }

    /// <summary>A duration option: seconds, or a number with s, ms, m or h.</summary>
    public TimeSpan? Duration(string name)
    {
        if (Value(name) is not { } text)
        {
            return null;
        }

        (string number, double scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1),
            _ when text.EndsWith('m') => (text[..^1], 60),
            _ when text.EndsWith('h') => (text[..^1], 3600),
            _ => (text, 1),
        };
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value) || value <= 0)
        {
            throw new UsageException($"{Verb}: {name} '{text}' is not a duration (10s, 500ms, 2m)");
        }

        return TimeSpan.FromSeconds(value * scale);
    }

    /// <summary>A byte value: 0-255, decimal or 0x hex.</summary>
    public byte? Byte(string name)
    {
        if (Value(name) is not { } text)
        {
            return null;
        }

        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? byte.TryParse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte value)
            : byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return ok ? value : throw new UsageException($"{Verb}: {name} '{text}' is not a byte (0 to 255, or 0x00 to 0xff)");
    }

    /// <summary>Parses "4096", "4k", "1M", "2G", "1T" (powers of 1024); <paramref name="what"/> names it in the error.</summary>
    public long ParseSize(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        long scale = 1;
        string number = text;
        if (text.Length > 1 && char.IsLetter(text[^1]))
        {
            scale = char.ToUpperInvariant(text[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => 0,
            };
            number = text[..^1];
        }

        if (scale == 0 || !long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value > long.MaxValue / scale)
        {
            throw new UsageException($"{Verb}: {what} '{text}' is not a size (bytes, or a number with k, M, G or T)");
        }

        return value * scale;
    }
}
