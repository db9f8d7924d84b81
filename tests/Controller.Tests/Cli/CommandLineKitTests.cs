using System.Text.RegularExpressions;
using Controller.Cli;
using Controller.Host.Cli;
using Controller.Tests.Support;

namespace Controller.Tests.Cli;

/// <summary>
/// The one command-line kit of ssd-emulator, ssdhost and ssd-board: help at every level, the
/// documented command lines still parse, completion, response files, --version, exit codes.
/// </summary>
[Trait("Category", "Process")]
public sealed partial class CommandLineKitTests
{
    private static readonly HostConsole s_quiet = new(
        TextWriter.Null,
        TextWriter.Null,
        () => Stream.Null,
        () => Stream.Null,
        false
    );

    public static TheoryData<string> Programs => ["ssd-emulator", "ssdhost", "ssd-board"];

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task TheTopLevelHelpListsEveryVerbWithItsSummary(string name)
    {
        ProgramSpec program = Spec(name);
        var (exitCode, output, _) = await RunAsync(program, "--help");

        Assert.Equal(ExitCodes.Done, exitCode);
        Assert.Contains($"Usage:\n  {name} [command] [options]", output, StringComparison.Ordinal);
        foreach (VerbSpec verb in program.Verbs)
        {
            Assert.Matches(
                $"\n  {Regex.Escape(verb.Name)} [^\n]*{Regex.Escape(verb.Summary[..Math.Min(30, verb.Summary.Length)])}",
                output
            );
        }
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task EveryVerbHasHelpThatListsEachOfItsOptions(string name)
    {
        ProgramSpec program = Spec(name);
        foreach (VerbSpec verb in program.Verbs)
        {
            var (exitCode, output, _) = await RunAsync(program, verb.Name, "--help");

            Assert.Equal(ExitCodes.Done, exitCode);
            Assert.Contains($"Usage:\n  {name} {verb.Name}", output, StringComparison.Ordinal);
            foreach (OptionSpec option in verb.Options)
            {
                Assert.Contains(
                    option.IsFlag ? $"  {option.Name} " : $"  {option.Name} <{option.Value}>",
                    output,
                    StringComparison.Ordinal
                );
            }
        }
    }

    [Theory]
    [InlineData(
        "ssd-emulator",
        "sim --frobnicate",
        "ssd-emulator sim: unknown option '--frobnicate' (see ssd-emulator sim --help)"
    )]
    [InlineData(
        "ssd-emulator",
        "frobnicate",
        "ssd-emulator: unknown verb 'frobnicate'; the verbs are serve, info, nandtest, sim, crashtest"
    )]
    [InlineData(
        "ssd-emulator",
        "sim --seed 1 --seed 2",
        "ssd-emulator sim: Option '--seed' expects a single argument but 2 were provided."
    )]
    [InlineData("ssd-emulator", "info --json=yes", "ssd-emulator info:")]
    [InlineData("ssdhost", "bench nbd://x/ssd extra", "ssdhost bench: unexpected argument 'extra'")]
    [InlineData(
        "ssdhost",
        "write nbd://x/ssd 0 --length",
        "ssdhost write: Required argument missing for option: '--length'."
    )]
    [InlineData("ssd-board", "probe --board", "ssd-board probe: Required argument missing for option: '--board'.")]
    [InlineData("ssd-board", "--board emulated --frob", "ssd-board serve: unknown option '--frob'")]
    public async Task AMistakeIsNamedOnStandardErrorWithExitCode2(string name, string line, string expected)
    {
        var (exitCode, output, error) = await RunAsync(Spec(name), line.Split(' '));

        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Empty(output);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task VersionPrintsTheProductVersion(string name)
    {
        var (exitCode, output, _) = await RunAsync(Spec(name), "--version");

        Assert.Equal(ExitCodes.Done, exitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", output);
    }

    [Fact]
    public async Task AResponseFileGivesArgumentsAsIfTyped()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("sim.rsp"), "--seed 7\n--set cache.bytes=256k\n--frobnicate\n");
        ProgramSpec program = Spec("ssd-emulator");

        var (exitCode, _, error) = await RunAsync(program, "sim", "--config", "tiny", $"@{temp.File("sim.rsp")}");

        // The file's third line is read as an option: the error proves the file was expanded.
        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Contains("unknown option '--frobnicate'", error, StringComparison.Ordinal);
        Assert.Empty(
            CliRunner.ParseErrors(
                program,
                ["sim", $"@{WriteFile(temp, "ok.rsp", "--seed 7\n--set cache.bytes=256k\n")}"]
            )
        );
    }

    [Theory]
    [InlineData("ssdhost", "ssdhost be", "bench")]
    [InlineData("ssdhost", "ssdhost bench URI --r", "--rw")]
    [InlineData("ssdhost", "ssdhost bench URI --rw rand", "randread")]
    [InlineData("ssd-emulator", "ssd-emulator sim --con", "--config")]
    [InlineData("ssd-emulator", "ssd-emulator sim --config ti", "tiny")]
    [InlineData("ssd-board", "ssd-board probe --board rasp", "raspberrypi-5")]
    public async Task TheSuggestDirectiveCompletesVerbsOptionsAndValues(string name, string line, string expected)
    {
        var (exitCode, output, _) = await RunAsync(Spec(name), $"[suggest:{line.Length}]", line);

        Assert.Equal(ExitCodes.Done, exitCode);
        Assert.Contains(expected, output.Split('\n'), StringComparer.Ordinal);
    }

    [Fact]
    public void TheBashCompletionScriptCompletesThroughTheProgramItself()
    {
        using var temp = new TempDirectory();
        // ssdhost as the README installs it: a command of that name on PATH.
        string bin = temp.File("bin");
        Directory.CreateDirectory(bin);
        string ssdhost = Path.Combine(bin, "ssdhost");
        File.WriteAllText(
            ssdhost,
            $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "ssdhost.dll")}' \"$@\"\n"
        );
        ExternalTool.Run("chmod", "+x", ssdhost);
        string script = $$"""
            export PATH='{{bin}}':"$PATH"
            source '{{Repository.PathOf("host", "ssd-completion.bash")}}'
            complete -p ssdhost
            complete_line() { COMP_LINE="$1"; COMP_POINT=${#1}; read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _ssd_complete; echo "${COMPREPLY[*]}"; }
            complete_line "ssdhost be"
            complete_line "ssdhost bench URI --rw rand"
            """;
        File.WriteAllText(temp.File("complete.sh"), script);

        var (exitCode, output, error) = ExternalTool.Run("bash", temp.File("complete.sh"));

        Assert.True(exitCode == 0, error);
        string[] lines = output.Split('\n');
        Assert.Contains("-F _ssd_complete", lines[0], StringComparison.Ordinal);
        Assert.Equal("bench", lines[1]);
        Assert.Equal(
            ["randread", "randrw", "randtrim", "randwrite"],
            lines[2].Split(' ').Order(StringComparer.Ordinal)
        );
    }

    [Fact]
    public void EveryCommandLineInTheDocsParses()
    {
        var lines = DocumentedCommandLines().ToList();

        // The scan finds them: enough of each program to mean something.
        Assert.True(lines.Count(l => l.Program == "ssdhost") >= 5, string.Join('\n', lines.Select(l => l.Text)));
        Assert.True(lines.Count(l => l.Program == "ssd-emulator") >= 10, string.Join('\n', lines.Select(l => l.Text)));
        Assert.True(lines.Count(l => l.Program == "ssd-board") >= 3, string.Join('\n', lines.Select(l => l.Text)));
        var failures = lines
            .Select(l => (l.Where, l.Text, Errors: CliRunner.ParseErrors(Spec(l.Program), l.Args)))
            .Where(f => f.Errors.Count > 0)
            .Select(f => $"{f.Where}: {f.Text}: {string.Join("; ", f.Errors)}")
            .ToList();
        Assert.True(failures.Count == 0, string.Join('\n', failures));

        // The canary: a flag that does not exist is found.
        Assert.NotEmpty(CliRunner.ParseErrors(Spec("ssd-emulator"), ["sim", "--seedz", "1"]));
    }

    /// <summary>
    /// The command lines the docs show: every line of a fenced code block, and every inline code
    /// span, that starts with one of the programs (or `dotnet run --project` of one).
    /// </summary>
    private static IEnumerable<(string Program, string Where, string Text, string[] Args)> DocumentedCommandLines()
    {
        string[] files = [Repository.PathOf("README.md"), .. Directory.GetFiles(Repository.PathOf("docs"), "*.md")];
        foreach (string file in files)
        {
            foreach ((int number, string code) in CodeOf(File.ReadAllLines(file)))
            {
                Match match = DocumentedLine().Match(code);
                if (!match.Success)
                {
                    continue;
                }

                string program = match.Groups["program"].Value switch
                {
                    "emulator/Controller.Emulator" => "ssd-emulator",
                    "host/Controller.Host" => "ssdhost",
                    "firmware/hosting/Controller.Board" => "ssd-board",
                    string named => named,
                };
                // What the shell takes before the program sees it: pipes, lists, redirections, comments.
                string rest = ShellEnd().Split(match.Groups["rest"].Value)[0];
                rest = rest.Replace("$JOB_COMPLETION_INDEX", "0", StringComparison.Ordinal);
                string[] args = ShellWords(rest);
                if (
                    args.Any(a =>
                        a.Contains('<', StringComparison.Ordinal)
                        || a.Contains('[', StringComparison.Ordinal)
                        || a.Contains(']', StringComparison.Ordinal)
                        || a.Contains("...", StringComparison.Ordinal)
                        || a.Contains('$', StringComparison.Ordinal)
                        || a.Contains('|', StringComparison.Ordinal)
                        || (a.Length > 1 && a.All(c => char.IsUpper(c) || c == '_'))
                    )
                )
                {
                    continue; // a synopsis with placeholders, not a command line
                }

                yield return (program, $"{Path.GetFileName(file)}:{number}", code.Trim(), args);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public void EveryExampleInTheHelpParses(string name)
    {
        ProgramSpec program = Spec(name);
        var examples = new List<string>();
        void Collect(string? notes)
        {
            examples.AddRange(
                (notes ?? string.Empty)
                    .Split('\n')
                    .Select(l => l.Trim())
                    .Where(l => l.StartsWith(name + " ", StringComparison.Ordinal))
                    .Select(l => ShellEnd().Split(l)[0])
            );
        }

        Collect(program.Epilogue);
        foreach (VerbSpec verb in program.Verbs.Concat(program.Verbs.SelectMany(v => v.Subverbs)))
        {
            Collect(verb.Epilogue);
        }

        Assert.True(examples.Count >= program.Verbs.Count - 1, string.Join('\n', examples));
        var failures = examples
            .Select(e => (Example: e, Errors: CliRunner.ParseErrors(program, ShellWords(e[(name.Length + 1)..]))))
            .Where(f => f.Errors.Count > 0)
            .Select(f => $"{f.Example}: {string.Join("; ", f.Errors)}")
            .ToList();
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>
    /// Words as a POSIX shell splits them: on blanks, but not inside single or double quotes (which go).
    /// </summary>
    private static string[] ShellWords(string text)
    {
        var words = new List<string>();
        var word = new System.Text.StringBuilder();
        bool inWord = false;
        char quote = '\0';
        foreach (char c in text)
        {
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return [.. words];
    }

    /// <summary>
    /// The code of a Markdown file: fenced blocks line by line (with continuations joined), and inline spans.
    /// </summary>
    private static IEnumerable<(int Line, string Code)> CodeOf(string[] lines)
    {
        bool fenced = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }

            if (fenced)
            {
                int first = i;
                string text = line;
                while (text.EndsWith('\\') && i + 1 < lines.Length)
                {
                    text = text[..^1] + " " + lines[++i].Trim();
                }

                yield return (first + 1, text.Trim());
                continue;
            }

            foreach (Match span in InlineCode().Matches(line))
            {
                yield return (i + 1, span.Groups[1].Value);
            }
        }
    }

    [GeneratedRegex(
        @"^(?:\$\s+)?(?:sudo\s+)?(?:(?<program>ssdhost|ssd-emulator|ssd-board)|dotnet run (?:-c Release )?--project (?<program>emulator/Controller\.Emulator|host/Controller\.Host|firmware/hosting/Controller\.Board) --)\s(?<rest>.*)$"
    )]
    private static partial Regex DocumentedLine();

    [GeneratedRegex(@"\s(?:\||&&|;|>|2>|&|#)|\)\s*$")]
    private static partial Regex ShellEnd();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex InlineCode();

    private static string WriteFile(TempDirectory temp, string name, string text)
    {
        File.WriteAllText(temp.File(name), text);
        return temp.File(name);
    }

    private static ProgramSpec Spec(string name) =>
        name switch
        {
            "ssd-emulator" => Controller.Emulator.Program.Spec(TextWriter.Null),
            "ssdhost" => HostCli.Spec(s_quiet),
            "ssd-board" => Controller.Board.Program.Spec(TextWriter.Null, TextWriter.Null, () =>
                throw new InvalidOperationException("no machine in this test")
            ),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a program"),
        };

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(
        ProgramSpec program,
        params string[] args
    )
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = await CliRunner.RunAsync(program, args, output, error, CancellationToken.None);
        return (exitCode, output.ToString(), error.ToString());
    }
}
