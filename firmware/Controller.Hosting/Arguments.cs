using System.Globalization;

namespace Controller.Hosting;

/// <summary>A command-line mistake; the message is one line naming the bad option or value.</summary>
public sealed class UsageException : Exception
{
    /// <summary>Creates the error.</summary>
    public UsageException(string message)
        : base(message)
    {
    }

    /// <summary>Required by the analyzers.</summary>
    public UsageException()
    {
    }

    /// <summary>Required by the analyzers.</summary>
    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The options of one verb: <c>--name value</c>, <c>--name=value</c>, repeatable options and flags.
/// Anything not declared is a <see cref="UsageException"/> naming it.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "Single and Integer name what the option holds, as the verbs' code reads them.")]
public sealed class Arguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly List<(string Name, string? Value)> _given = [];

    private Arguments()
    {
    }

    /// <summary>Parses <paramref name="args"/> against the declared valued options and flags.</summary>
    public static Arguments Parse(IEnumerable<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags)
    {
        var parsed = new Arguments();
        using IEnumerator<string> e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string arg = e.Current;
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"unexpected argument '{arg}'");
            }

            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals > 0 ? arg[..equals] : arg;
            if (flags.Contains(name))
            {
                if (equals > 0)
                {
                    throw new UsageException($"{name} takes no value");
                }

                parsed._flags.Add(name);
                parsed._given.Add((name, null));
                continue;
            }

            if (!valued.Contains(name))
            {
                throw new UsageException($"unknown option '{name}' (see --help)");
            }

            string value;
            if (equals > 0)
            {
                value = arg[(equals + 1)..];
            }
            else if (e.MoveNext())
            {
                value = e.Current;
            }
            else
            {
                throw new UsageException($"{name} needs a value");
            }

            if (!parsed._values.TryGetValue(name, out List<string>? list))
            {
                parsed._values[name] = list = [];
            }

            list.Add(value);
            parsed._given.Add((name, value));
        }

        return parsed;
    }

    /// <summary>The options as given, in order, leaving out <paramref name="except"/>, quoted for a shell where needed.</summary>
    public string Echo(params string[] except)
    {
        var parts = new List<string>();
        foreach ((string name, string? value) in _given)
        {
            if (except.Contains(name))
            {
                continue;
            }

            parts.Add(name);
            if (value is not null)
            {
                parts.Add(value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || "-_.,:=/+".Contains(c, StringComparison.Ordinal)) ? value : $"'{value.Replace("'", "'\\''", StringComparison.Ordinal)}'");
            }
        }

        return string.Join(' ', parts);
    }

    /// <summary>True when the flag was given.</summary>
    public bool Has(string flag) => _flags.Contains(flag);

    /// <summary>Every value given for a repeatable option, in order.</summary>
    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out List<string>? list) ? list : [];

    /// <summary>The value of a single-valued option, or null; giving it twice is an error.</summary>
    public string? Single(string name)
    {
        IReadOnlyList<string> values = All(name);
        return values.Count switch
        {
            0 => null,
            1 => values[0],
            _ => throw new UsageException($"{name} is given {values.Count} times; give it once"),
        };
    }

    /// <summary>A whole-number option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long Integer(string name, long defaultValue, long min, long max)
    {
        string? text = Single(name);
        if (text is null)
        {
            return defaultValue;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
        {
            throw new UsageException($"{name}: '{text}' is not a whole number");
        }

        if (value < min || value > max)
        {
            throw new UsageException($"{name}: {value} is out of range; expected {min} to {max}");
        }

        return value;
    }

    /// <summary>A number option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public double Number(string name, double defaultValue, double min, double max)
    {
        string? text = Single(name);
        if (text is null)
        {
            return defaultValue;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
        {
            throw new UsageException($"{name}: '{text}' is not a number");
        }

        if (value < min || value > max)
        {
            throw new UsageException($"{name}: {value.ToString(CultureInfo.InvariantCulture)} is out of range; expected {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        }

        return value;
    }
}
