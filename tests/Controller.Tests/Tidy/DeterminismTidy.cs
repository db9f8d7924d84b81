using System.Text;
using System.Text.RegularExpressions;
using Controller.Common;
using Controller.Tests.Support;

namespace Controller.Tests.Tidy;

/// <summary>
/// Finds what would make the firmware nondeterministic: the wall clock, sleeping, unseeded
/// randomness, threads and tasks of its own; and checks that the Release build would drop. Comments and string literals
/// are ignored, so the firmware may talk about these things; it may not use them.
/// </summary>
internal static partial class DeterminismTidy
{
    /// <summary>Each banned construct with the reason it is banned.</summary>
    public static readonly IReadOnlyList<(Regex Pattern, string Reason)> Rules =
    [
        (new Regex(@"\bDateTime(Offset)?\s*\.\s*(Now|UtcNow|Today)\b"), "reads the wall clock; take time from IClock"),
        (new Regex(@"\bStopwatch\b"), "reads a real clock; take time from IClock"),
        (new Regex(@"\bEnvironment\s*\.\s*TickCount(64)?\b"), "reads a real clock; take time from IClock"),
        (new Regex(@"\bTimeProvider\s*\.\s*System\b"), "reads the wall clock; take time from IClock"),
        (new Regex(@"\bThread\s*\.\s*Sleep\b"), "blocks on real time; the loop schedules by IClock"),
        (new Regex(@"\bTask\s*\.\s*(Run|Delay|Factory)\b"), "starts work or waits outside the loop"),
        (new Regex(@"\bnew\s+(System\.Threading\.Tasks\.)?Task\s*[<(]"), "starts work outside the loop"),
        (
            new Regex(@"\bnew\s+(System\.Threading\.)?Thread\s*\("),
            "starts a thread; the firmware runs on the loop's one thread"
        ),
        (new Regex(@"\bThread\s+\w+\s*=\s*new\s*\("), "starts a thread; the firmware runs on the loop's one thread"),
        (
            new Regex(@"\bnew\s+(System\.Threading\.)?Timer\s*\(|\bSystem\s*\.\s*Timers\b"),
            "calls back on real time from another thread"
        ),
        (new Regex(@"\bThreadPool\s*\."), "starts work outside the loop"),
        (new Regex(@"\bParallel\s*\."), "starts work outside the loop"),
        (new Regex(@"\bnew\s+(System\.)?Random\s*\("), "unseeded or private randomness; take the Prng handed in"),
        (new Regex(@"\bRandom\s+\w+\s*=\s*new\s*\("), "unseeded or private randomness; take the Prng handed in"),
        (new Regex(@"\bRandom\s*\.\s*Shared\b"), "unseeded randomness; take the Prng handed in"),
        (new Regex(@"\bRandomNumberGenerator\b"), "unseeded randomness; take the Prng handed in"),
        (new Regex(@"\bGuid\s*\.\s*NewGuid\b"), "unseeded randomness; take the Prng handed in"),
        (new Regex(@"\basync\s+void\b"), "fire-and-forget work outside the loop"),
        (
            new Regex(@"\b(Debug|Trace)\s*\.\s*Assert\b"),
            "vanishes from the Release build; check with Invariant.Holds, which stays on in production"
        ),
    ];

    /// <summary>
    /// Every banned use in the C# files under <paramref name="directory"/>, as "file:line: text (reason)".
    /// </summary>
    public static IReadOnlyList<string> ScanDirectory(string directory)
    {
        var findings = new List<string>();
        foreach (string file in Repository.CSharpSources(directory))
        {
            string relative = Path.GetRelativePath(directory, file);
            findings.AddRange(ScanSource(File.ReadAllText(file)).Select(f => $"{relative}:{f}"));
        }

        return findings;
    }

    /// <summary>Every banned use in one source text, as "line: text (reason)".</summary>
    public static IReadOnlyList<string> ScanSource(string source)
    {
        string[] lines = StripCommentsAndStrings(source).Split('\n');
        var findings = new List<string>();
        for (int i = 0; i < lines.Length; i++)
        {
            foreach ((Regex pattern, string reason) in Rules)
            {
                Match match = pattern.Match(lines[i]);
                if (match.Success)
                {
                    findings.Add($"{i + 1}: {match.Value} ({reason})");
                }
            }
        }

        return findings;
    }

    /// <summary>
    /// Blanks comments and the contents of string and character literals, keeping line breaks so
    /// line numbers still match, but keeps the code inside the holes of interpolated strings (unless
    /// <paramref name="keepHoles"/> is false: then an interpolated string goes whole, holes and all).
    /// Handles //, /* */, "..." with escapes, @"...", """...""" and their $ forms.
    /// </summary>
    public static string StripCommentsAndStrings(string source, bool keepHoles = true)
    {
        var output = new StringBuilder(source.Length);
        int i = 0;
        while (i < source.Length)
        {
            if (At(source, i, "//"))
            {
                while (i < source.Length && source[i] != '\n')
                {
                    i++;
                }
            }
            else if (At(source, i, "/*"))
            {
                i = SkipUntil(source, i + 2, "*/", output);
            }
            else if (At(source, i, "$\"") || At(source, i, "$@\"") || At(source, i, "@$\"") || At(source, i, "$$"))
            {
                i = SkipInterpolated(source, i, output, keepHoles);
            }
            else if (At(source, i, "\"\"\""))
            {
                i = SkipUntil(source, i + 3, "\"\"\"", output);
            }
            else if (At(source, i, "@\""))
            {
                i = SkipVerbatim(source, i + 2, output);
            }
            else if (source[i] is '"' or '\'')
            {
                i = SkipQuoted(source, i + 1, source[i], output);
            }
            else
            {
                output.Append(source[i]);
                i++;
            }
        }

        return output.ToString();
    }

    /// <summary>
    /// An interpolated string: the literal text is blanked, the code in its holes is kept (a
    /// clock read inside <c>$"{DateTime.Now}"</c> is still a clock read).
    /// </summary>
    private static int SkipInterpolated(string source, int index, StringBuilder output, bool keepHoles)
    {
        int dollars = 0;
        bool verbatim = false;
        while (index < source.Length && source[index] is '$' or '@')
        {
            dollars += source[index] == '$' ? 1 : 0;
            verbatim |= source[index] == '@';
            index++;
        }

        int quotes = 0;
        while (index < source.Length && source[index] == '"')
        {
            quotes++;
            index++;
        }

        bool raw = quotes >= 3;
        string close = raw ? new string('"', quotes) : "\"";
        while (index < source.Length && !At(source, index, close))
        {
            char c = source[index];
            if (c == '{' && !raw && index + 1 < source.Length && source[index + 1] == '{')
            {
                index += 2;
            }
            else if (c == '{' && (!raw || At(source, index, new string('{', dollars))))
            {
                index = CopyHole(source, index + (raw ? dollars : 1), output, keepHoles);
            }
            else if (c == '\\' && !verbatim && !raw)
            {
                index += 2;
            }
            else
            {
                KeepNewline(c, output);
                index++;
            }
        }

        output.Append(' ');
        return Math.Min(source.Length, index + close.Length);
    }

    private static int CopyHole(string source, int index, StringBuilder output, bool keep)
    {
        output.Append(' ');
        int depth = 0;
        while (index < source.Length)
        {
            char c = source[index];
            if (c == '}' && depth == 0)
            {
                output.Append(' ');
                return index + 1;
            }

            if (c == '"')
            {
                index = SkipQuoted(source, index + 1, '"', output);
                continue;
            }

            depth +=
                c == '{' ? 1
                : c == '}' ? -1
                : 0;
            if (keep)
            {
                output.Append(c);
            }
            else
            {
                KeepNewline(c, output);
            }

            index++;
        }

        return index;
    }

    private static bool At(string source, int index, string token) =>
        string.CompareOrdinal(source, index, token, 0, token.Length) == 0;

    private static int SkipUntil(string source, int index, string end, StringBuilder output)
    {
        while (index < source.Length && !At(source, index, end))
        {
            KeepNewline(source[index], output);
            index++;
        }

        return Math.Min(source.Length, index + end.Length);
    }

    private static int SkipVerbatim(string source, int index, StringBuilder output)
    {
        while (index < source.Length)
        {
            if (source[index] == '"')
            {
                if (index + 1 < source.Length && source[index + 1] == '"')
                {
                    index += 2;
                    continue;
                }

                return index + 1;
            }

            KeepNewline(source[index], output);
            index++;
        }

        return index;
    }

    private static int SkipQuoted(string source, int index, char quote, StringBuilder output)
    {
        while (index < source.Length && source[index] != quote && source[index] != '\n')
        {
            index += source[index] == '\\' ? 2 : 1;
        }

        output.Append(' ');
        return Math.Min(source.Length, index + 1);
    }

    private static void KeepNewline(char c, StringBuilder output)
    {
        if (c == '\n')
        {
            output.Append('\n');
        }
    }
}
