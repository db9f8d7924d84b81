using System.CommandLine;

namespace Controller.Cli;

/// <summary>
/// What one verb's command line says, as System.CommandLine parsed it: flags, single and repeatable
/// options, positionals, and typed reads of them whose errors name the option and the value.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Naming",
    "CA1720",
    Justification = "Single and Integer name what the option holds, as the verbs' code reads them."
)]
public sealed class CommandArgs
{
    private readonly ParseResult? _result;
    private readonly IReadOnlyDictionary<string, Option> _options;
    private readonly IReadOnlyList<string> _given;

    internal CommandArgs(
        string program,
        string verb,
        ParseResult result,
        IReadOnlyDictionary<string, Option> options,
        IReadOnlyList<Argument> arguments,
        IReadOnlyList<string> given
    )
    {
        Program = program;
        Verb = verb;
        _result = result;
        _options = options;
        _given = given;
        foreach (Argument argument in arguments)
        {
            switch (argument)
            {
                case Argument<string[]> many:
                    Positionals.AddRange(result.GetValue(many) ?? []);
                    break;
                case Argument<string?> one when result.GetValue(one) is { } value:
                    Positionals.Add(value);
                    break;
            }
        }
    }

    /// <summary>The program (<c>ssdhost</c>).</summary>
    public string Program { get; }

    /// <summary>The verb these arguments are for.</summary>
    public string Verb { get; }

    /// <summary>The positionals given, in order.</summary>
    public List<string> Positionals { get; } = [];

    /// <summary>
    /// Parses <paramref name="args"/> for one verb outside a program (a test, or a verb that reads
    /// another verb's options); errors are <see cref="UsageException"/>s.
    /// </summary>
    public static CommandArgs Parse(VerbSpec verb, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(verb);
        return CliRunner.ParseVerb(new ProgramSpec("program", "program", [verb]), verb with { Subverbs = [] }, args);
    }

    /// <summary>The options given (flags and valued), each once, in the order first given.</summary>
    public IReadOnlyList<string> GivenOptions => [.. _given.Where(_options.ContainsKey).Distinct()];

    /// <summary>True when the flag was given.</summary>
    public bool Has(string flag) => _result is not null && _result.GetValue((Option<bool>)OptionNamed(flag));

    /// <summary>Every value given for a repeatable option, in order.</summary>
    public IReadOnlyList<string> All(string name) =>
        OptionNamed(name) switch
        {
            Option<string[]> many => _result?.GetValue(many) ?? [],
            Option<string?> one => _result?.GetValue(one) is { } value ? [value] : [],
            _ => throw new InvalidOperationException($"{name} is a flag"),
        };

    /// <summary>The value of a single-valued option, or null.</summary>
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

    /// <summary>The value of <paramref name="name"/>, or null (as <see cref="Single"/>).</summary>
    public string? Value(string name) => Single(name);

    /// <summary>A whole-number option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long Integer(string name, long defaultValue, long min, long max) =>
        Single(name) is { } text ? Values.Integer(text, name, min, max) : defaultValue;

    /// <summary>A number option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public double Number(string name, double defaultValue, double min, double max) =>
        Single(name) is { } text ? Values.Number(text, name, min, max) : defaultValue;

    /// <summary>A size option with k/M/G/T suffixes (powers of 1024).</summary>
    public long Size(string name, long defaultValue) =>
        Single(name) is { } text ? Values.Size(text, name) : defaultValue;

    /// <summary>A duration option: seconds, or a number with ms, s, m or h.</summary>
    public TimeSpan? Duration(string name) => Single(name) is { } text ? Values.Duration(text, name) : null;

    /// <summary>
    /// The text of the file <paramref name="name"/> names, without surrounding white space (a
    /// secret kept in a file, such as --control-token's), or null when the option is not given. A
    /// file that cannot be read is a <see cref="UsageException"/> naming the option and the file.
    /// </summary>
    public string? FileText(string name)
    {
        if (Single(name) is not { } file)
        {
            return null;
        }

        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{name}: cannot read '{file}': {e.Message}");
        }
    }

    /// <summary>A byte option: 0-255, decimal or 0x hex.</summary>
    public byte? Byte(string name) => Single(name) is { } text ? Values.Byte(text, name) : null;

    /// <summary>
    /// The positional at <paramref name="index"/>, named <paramref name="what"/> in the error when it is missing.
    /// </summary>
    public string Positional(int index, string what) =>
        index < Positionals.Count ? Positionals[index] : throw new UsageException($"missing {what}");

    /// <summary>
    /// The options as given, in order, leaving out <paramref name="except"/>, quoted for a shell where needed.
    /// </summary>
    public string Echo(params string[] except)
    {
        ArgumentNullException.ThrowIfNull(except);
        var parts = new List<string>();
        for (int i = 0; i < _given.Count; i++)
        {
            string arg = _given[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                continue;
            }

            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals > 0 ? arg[..equals] : arg;
            string? value = equals > 0 ? arg[(equals + 1)..] : null;
            if (
                value is null
                && _options.TryGetValue(name, out Option? option)
                && option is not Option<bool>
                && i + 1 < _given.Count
            )
            {
                value = _given[++i];
            }

            if (except.Contains(name))
            {
                continue;
            }

            parts.Add(name);
            if (value is not null)
            {
                parts.Add(Quote(value));
            }
        }

        return string.Join(' ', parts);
    }

    private static string Quote(string value) =>
        value.Length > 0
        && value.All(c => char.IsAsciiLetterOrDigit(c) || "-_.,:=/+".Contains(c, StringComparison.Ordinal))
            ? value
            : $"'{value.Replace("'", "'\\''", StringComparison.Ordinal)}'";

    private Option OptionNamed(string name) =>
        _options.TryGetValue(name, out Option? option)
            ? option
            : throw new InvalidOperationException($"{Program} {Verb} declares no option {name}");
}
