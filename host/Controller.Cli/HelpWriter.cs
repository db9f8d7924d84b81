using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text;

namespace Controller.Cli;

/// <summary>
/// The one help style of the three programs, written from their specs: the description, the usage
/// line as a user types it, the positionals, every option with its value and what it does, the
/// verbs under this one with their one-line summaries, then the examples and notes.
/// </summary>
internal sealed class HelpWriter(ProgramSpec program, IReadOnlyDictionary<Command, VerbSpec> verbs)
    : SynchronousCommandLineAction
{
    private const int Width = 100;
    private const int Indent = 2;
    private const int MaxFirstColumn = 30;

    /// <inheritdoc/>
    public override bool ClearsParseErrors => true;

    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        Command command = parseResult.CommandResult.Command;
        TextWriter output = parseResult.InvocationConfiguration.Output;
        output.Write(Write(program, command, verbs.GetValueOrDefault(command)));
        return ExitCodes.Done;
    }

    /// <summary>
    /// The help of <paramref name="command"/> (the program itself when <paramref name="verb"/> is null).
    /// </summary>
    internal static string Write(ProgramSpec program, Command command, VerbSpec? verb)
    {
        var text = new StringBuilder();
        Section(text, "Description:", Wrap(verb?.Description ?? program.Description, Indent));
        string usage = verb is null
            ? $"{program.Name} [command] [options]"
            : $"{program.Name} {string.Join(' ', CliRunner.Chain(command))}{string.Concat(verb.Arguments.Select(a => a.Many ? $" <{a.Name}>..." : $" <{a.Name}>"))}{(verb.Subverbs.Count > 0 ? " [command]" : string.Empty)} [options]";
        Section(text, "Usage:", new string(' ', Indent) + usage + "\n");
        if (verb is { Arguments.Count: > 0 })
        {
            Section(text, "Arguments:", Columns(verb.Arguments.Select(a => ($"<{a.Name}>", a.Description))));
        }

        IEnumerable<(string, string)> options = (verb?.Options ?? []).Select(o =>
            (o.IsFlag ? o.Name : $"{o.Name} <{o.Value}>", o.Description)
        );
        options = options.Append(("-?, -h, --help", "show this help"));
        if (verb is null)
        {
            options = options.Append(("--version", "print the version"));
        }

        Section(text, "Options:", Columns(options));
        IReadOnlyList<VerbSpec> under = verb?.Subverbs ?? program.Verbs;
        if (under.Count > 0)
        {
            Section(text, "Commands:", Columns(under.Select(v => (v.Name, v.Summary))));
        }

        if ((verb is null ? program.Epilogue : verb.Epilogue) is { } notes)
        {
            text.Append(notes.Trim('\n')).Append('\n');
        }

        return text.ToString();
    }

    private static void Section(StringBuilder text, string title, string body)
    {
        text.Append(title).Append('\n').Append(body).Append('\n');
    }

    /// <summary>
    /// Two columns: the name, then its description wrapped beside it (or under it, when the name is long).
    /// </summary>
    private static string Columns(IEnumerable<(string First, string Second)> rows)
    {
        var list = rows.ToList();
        int first = Math.Min(MaxFirstColumn, list.Max(r => r.First.Length)) + 2;
        var text = new StringBuilder();
        foreach ((string name, string description) in list)
        {
            string lead = new string(' ', Indent) + name;
            string wrapped = Wrap(description, Indent + first);
            if (name.Length + 2 <= first)
            {
                text.Append(lead.PadRight(Indent + first)).Append(wrapped.TrimStart());
            }
            else
            {
                text.Append(lead).Append('\n').Append(wrapped);
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// <paramref name="text"/> wrapped at <see cref="Width"/>, every line indented by <paramref name="indent"/>; blank
    /// lines separate paragraphs.
    /// </summary>
    private static string Wrap(string text, int indent)
    {
        var result = new StringBuilder();
        string pad = new(' ', indent);
        string[] paragraphs = text.Trim().Replace("\r", string.Empty, StringComparison.Ordinal).Split("\n\n");
        for (int p = 0; p < paragraphs.Length; p++)
        {
            if (p > 0)
            {
                result.Append('\n');
            }

            var line = new StringBuilder(pad);
            foreach (string word in paragraphs[p].Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > indent && line.Length + 1 + word.Length > Width)
                {
                    result.Append(line).Append('\n');
                    line.Clear().Append(pad);
                }

                line.Append(line.Length > indent ? " " : string.Empty).Append(word);
            }

            result.Append(line).Append('\n');
        }

        return result.ToString();
    }
}
