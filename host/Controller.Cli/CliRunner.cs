using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Text.RegularExpressions;

namespace Controller.Cli;

/// <summary>
/// Runs a program's command line on System.CommandLine: one help style (the program's verbs at the
/// top, each verb's prose, positionals, options and examples), tab completion through the
/// <c>[suggest]</c> directive, response files (<c>@FILE</c>), <c>--version</c>, and the exit codes
/// of <see cref="ExitCodes"/>: a parse error or a <see cref="UsageException"/> is one line on
/// standard error naming the bad value, and 2.
/// </summary>
public static partial class CliRunner
{
    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code.</summary>
    public static async Task<int> RunAsync(
        ProgramSpec program,
        IReadOnlyList<string> args,
        TextWriter output,
        TextWriter error,
        CancellationToken cancellation
    )
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        RootCommand root = Build(program);
        IReadOnlyList<string> line = WithVerb(program, args);
        if (line.Count == 0)
        {
            // No verb and no default one: the list of verbs, as a usage error.
            await error.WriteAsync(Help(program)).ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        ParseResult result = root.Parse(line);
        if (result.Action is ParseErrorAction)
        {
            await WriteErrorsAsync(program, result, error).ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        string verb =
            result.CommandResult.Command is RootCommand ? string.Empty : " " + result.CommandResult.Command.Name;
        try
        {
            var configuration = new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            };
            return await result.InvokeAsync(configuration, cancellation).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            await error
                .WriteLineAsync($"{program.Name}{verb}: {e.Message} (see {program.Name}{verb} --help)")
                .ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await error.WriteLineAsync($"{program.Name}{verb}: interrupted").ConfigureAwait(false);
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (program.ExitCodeOf(e) is int code)
        {
            await error.WriteLineAsync($"{program.Name}{verb}: {program.MessageOf(e)}").ConfigureAwait(false);
            return code;
        }
    }

    /// <summary>
    /// Parses one verb's arguments without running it; a parse error is a <see cref="UsageException"/>.
    /// </summary>
    internal static CommandArgs ParseVerb(ProgramSpec program, VerbSpec verb, IReadOnlyList<string> args)
    {
        CommandArgs? parsed = null;
        RootCommand root = Build(
            program with
            {
                Verbs =
                [
                    verb with
                    {
                        Run = (a, _) =>
                        {
                            parsed = a;
                            return Task.FromResult(0);
                        },
                    },
                ],
            }
        );
        ParseResult result = root.Parse([verb.Name, .. args]);
        if (result.Errors.Count > 0)
        {
            throw new UsageException(result.Errors[0].Message);
        }

        result.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        return parsed ?? throw new InvalidOperationException("the verb did not run");
    }

    /// <summary>
    /// What is wrong with <paramref name="args"/> as a command line of <paramref name="program"/>, without running it
    /// (empty when it parses).
    /// </summary>
    public static IReadOnlyList<string> ParseErrors(ProgramSpec program, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(args);
        ParseResult result = Build(program).Parse(WithVerb(program, args));
        return [.. result.Errors.Select(e => e.Message)];
    }

    /// <summary>The help of <paramref name="program"/> (or of one of its verbs), as <c>--help</c> prints it.</summary>
    public static string Help(ProgramSpec program, string? verb = null)
    {
        ArgumentNullException.ThrowIfNull(program);
        using var text = new StringWriter();
        RootCommand root = Build(program);
        ParseResult result = root.Parse(verb is null ? ["--help"] : [verb, "--help"]);
        result.Invoke(new InvocationConfiguration { Output = text, EnableDefaultExceptionHandler = false });
        return text.ToString();
    }

    private static IReadOnlyList<string> WithVerb(ProgramSpec program, IReadOnlyList<string> args)
    {
        if (args.Count == 2 && SuggestDirective().Match(args[0]) is { Success: true } suggest)
        {
            // A shell hands over its whole line, the program's own name (or path) first: the parser
            // completes what follows it, at the cursor moved back by as much.
            string line = args[1];
            Match name = ProgramWord().Match(line);
            if (
                name.Success
                && (
                    name.Groups[1].Value == program.Name
                    || name.Groups[1].Value.EndsWith("/" + program.Name, StringComparison.Ordinal)
                )
            )
            {
                int cursor = suggest.Groups[1].Success
                    ? int.Parse(suggest.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
                    : line.Length;
                return [$"[suggest:{Math.Max(0, cursor - name.Length)}]", line[name.Length..]];
            }

            return args;
        }

        if (args.Count > 0 && args[0] == "help")
        {
            // "help" and "help VERB", as the programs have always taken them.
            return args.Count > 1 ? [args[1], "--help"] : ["--help"];
        }

        bool startsWithOption =
            args.Count == 0 || (args[0].StartsWith('-') && args[0] is not ("--help" or "-h" or "-?" or "--version"));
        return program.DefaultVerb is { } verb && startsWithOption ? [verb, .. args] : args;
    }

    private static async Task WriteErrorsAsync(ProgramSpec program, ParseResult result, TextWriter error)
    {
        Command command = result.CommandResult.Command;
        string verb = command is RootCommand ? string.Empty : " " + command.Name;
        var messages = result.Errors.Select(e => Describe(program, command, result, e.Message)).Distinct().ToList();
        if (command is RootCommand && result.UnmatchedTokens.Count > 0)
        {
            // Beside the verb that was not understood, "no verb given" (which names no token) says nothing more.
            messages.RemoveAll(m => !m.Contains('\'', StringComparison.Ordinal));
        }
        for (int i = 0; i < messages.Count; i++)
        {
            string suffix = i == messages.Count - 1 ? $" (see {program.Name}{verb} --help)" : string.Empty;
            await error.WriteLineAsync($"{program.Name}{verb}: {messages[i]}{suffix}").ConfigureAwait(false);
        }
    }

    /// <summary>The parser's message, in the programs' words where a token was not understood.</summary>
    private static string Describe(ProgramSpec program, Command command, ParseResult result, string message)
    {
        string? unmatched = result.UnmatchedTokens.FirstOrDefault(t =>
            message.Contains($"'{t}'", StringComparison.Ordinal)
        );
        return unmatched switch
        {
            null => message,
            _ when unmatched.StartsWith('-') => $"unknown option '{unmatched}'",
            _ when command is RootCommand =>
                $"unknown verb '{unmatched}'; the verbs are {string.Join(", ", program.Verbs.Select(v => v.Name))}",
            _ => $"unexpected argument '{unmatched}'",
        };
    }

    [GeneratedRegex(@"^\[suggest(?::(\d+))?\]$")]
    private static partial Regex SuggestDirective();

    [GeneratedRegex(@"^\s*(\S+)\s?")]
    private static partial Regex ProgramWord();

    private static RootCommand Build(ProgramSpec program)
    {
        var root = new RootCommand(program.Description);
        var verbs = new Dictionary<Command, VerbSpec>();
        foreach (VerbSpec verb in program.Verbs)
        {
            root.Subcommands.Add(VerbCommand(program, verb, verbs));
        }

        foreach (Option option in root.Options)
        {
            if (option is HelpOption help)
            {
                help.Action = new HelpWriter(program, verbs);
            }
        }

        return root;
    }

    /// <summary>The names from the program's verb down to <paramref name="command"/> (<c>sim merge</c>).</summary>
    internal static IEnumerable<string> Chain(Command command)
    {
        var names = new List<string>();
        for (Symbol? symbol = command; symbol is Command { } c and not RootCommand; symbol = c.Parents.FirstOrDefault())
        {
            names.Insert(0, c.Name);
        }

        return names;
    }

    private static Command VerbCommand(ProgramSpec program, VerbSpec verb, Dictionary<Command, VerbSpec> verbs)
    {
        var command = new Command(verb.Name, verb.Description);
        verbs[command] = verb;
        var options = new Dictionary<string, Option>(StringComparer.Ordinal);
        foreach (OptionSpec spec in verb.Options)
        {
            Option option = spec switch
            {
                { IsFlag: true } => new Option<bool>(spec.Name)
                {
                    Description = spec.Description,
                    Arity = ArgumentArity.Zero,
                },
                { Repeatable: true } => new Option<string[]>(spec.Name)
                {
                    Description = spec.Description,
                    HelpName = spec.Value,
                    AllowMultipleArgumentsPerToken = false,
                },
                _ => new Option<string?>(spec.Name) { Description = spec.Description, HelpName = spec.Value },
            };
            if (spec.Choices is { } choices)
            {
                option.CompletionSources.Add(_ =>
                    choices.Select(c => new System.CommandLine.Completions.CompletionItem(c))
                );
            }

            if (!options.TryAdd(spec.Name, option))
            {
                throw new InvalidOperationException($"{program.Name} {verb.Name} declares {spec.Name} twice");
            }

            command.Options.Add(option);
        }

        var arguments = new List<Argument>();
        foreach (ArgumentSpec spec in verb.Arguments)
        {
            Argument argument = spec.Many
                ? new Argument<string[]>(spec.Name) { Description = spec.Description, Arity = ArgumentArity.ZeroOrMore }
                : new Argument<string?>(spec.Name) { Description = spec.Description, Arity = ArgumentArity.ZeroOrOne };
            arguments.Add(argument);
            command.Arguments.Add(argument);
        }

        foreach (VerbSpec sub in verb.Subverbs)
        {
            command.Subcommands.Add(VerbCommand(program, sub, verbs));
        }

        command.SetAction(
            (result, cancellation) =>
            {
                string[] given = [.. result.Tokens.SkipWhile(t => t.Value != verb.Name).Skip(1).Select(t => t.Value)];
                // (Tokens of a verb under another start after the first token that names it.)
                return verb.Run(
                    new CommandArgs(program.Name, verb.Name, result, options, arguments, given),
                    cancellation
                );
            }
        );
        return command;
    }
}
