namespace Controller.Cli;

/// <summary>
/// One option of a verb: <c>--name VALUE</c> (or <c>--name=VALUE</c>), repeatable or not, or a flag
/// when <paramref name="Value"/> is null. <paramref name="Choices"/> are offered on Tab.
/// </summary>
public sealed record OptionSpec(
    string Name,
    string? Value,
    string Description,
    bool Repeatable = false,
    IReadOnlyList<string>? Choices = null
)
{
    /// <summary>True for a flag (an option without a value).</summary>
    public bool IsFlag => Value is null;
}

/// <summary>
/// A positional argument of a verb (<c>URI</c>, <c>OFFSET</c>), or with <paramref name="Many"/>
/// every one from there on (<c>FILE...</c>); the verb says when a missing one is an error.
/// </summary>
public sealed record ArgumentSpec(string Name, string Description, bool Many = false);

/// <summary>
/// One verb: its name, the one line the program's help lists it with, the prose of its own help,
/// its positionals and options, the examples and notes after them, and what it does.
/// </summary>
public sealed record VerbSpec(
    string Name,
    string Summary,
    string Description,
    IReadOnlyList<OptionSpec> Options,
    Func<CommandArgs, CancellationToken, Task<int>> Run
)
{
    /// <summary>Positional arguments, in order.</summary>
    public IReadOnlyList<ArgumentSpec> Arguments { get; init; } = [];

    /// <summary>Examples and notes, printed after the options.</summary>
    public string? Epilogue { get; init; }

    /// <summary>Verbs under this one (<c>sim merge</c>).</summary>
    public IReadOnlyList<VerbSpec> Subverbs { get; init; } = [];
}

/// <summary>
/// A program: its name, what it is, its verbs, and the verb run when the command line starts with an option.
/// </summary>
public sealed record ProgramSpec(string Name, string Description, IReadOnlyList<VerbSpec> Verbs)
{
    /// <summary>
    /// The verb a command line without one runs (<c>ssd-emulator --image x</c> is <c>serve</c>), or null.
    /// </summary>
    public string? DefaultVerb { get; init; }

    /// <summary>Notes printed after the list of verbs.</summary>
    public string? Epilogue { get; init; }

    /// <summary>
    /// The exit code and message for an exception a verb throws that is not a usage error (a device
    /// failure is 1, a file that is not there 2), or null to let it propagate.
    /// </summary>
    public Func<Exception, int?> ExitCodeOf { get; init; } = _ => null;

    /// <summary>
    /// What to print for such an exception (its message; a program may add a hint on the lines after).
    /// </summary>
    public Func<Exception, string> MessageOf { get; init; } = e => e.Message;
}
