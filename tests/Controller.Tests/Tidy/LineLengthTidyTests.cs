using Controller.Tests.Support;

namespace Controller.Tests.Tidy;

/// <summary>
/// No line of C# is wider than 120 columns, but for a string literal: a message (an interpolated
/// one with its holes) stays whole so that it can be found with grep, as the kernel's style keeps
/// printk strings whole; the rest of its line must fit. Comments wrap like code. The formatter
/// (CSharpier, pinned in dotnet-tools.json) keeps code within the width; this scan also holds
/// comments to it, and catches code the formatter was not run on.
/// </summary>
[Trait("Category", "Unit")]
public sealed class LineLengthTidyTests
{
    private const int Width = 120;

    [Fact]
    public void NoLineOfTheTreeIsWiderThan120ColumnsButForStrings()
    {
        var findings = new List<string>();
        int files = 0;
        foreach (string top in new[] { "firmware", "emulator", "host", "tests" })
        {
            foreach (
                string file in Directory.EnumerateFiles(Repository.PathOf(top), "*.cs", SearchOption.AllDirectories)
            )
            {
                if (file.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
                {
                    continue;
                }

                files++;
                string relative = Path.GetRelativePath(Repository.Root, file);
                findings.AddRange(Scan(File.ReadAllText(file)).Select(line => $"{relative}:{line}"));
            }
        }

        Assert.True(files > 200, $"the scan found only {files} sources");
        Assert.True(
            findings.Count == 0,
            $"lines wider than {Width} columns (dotnet csharpier format . wraps code; comments by hand):\n"
                + string.Join('\n', findings)
        );
    }

    [Theory]
    [InlineData("code", true)]
    [InlineData("comment", true)]
    [InlineData("doc", true)]
    [InlineData("string", false)]
    [InlineData("raw", false)]
    [InlineData("message", false)]
    [InlineData("message-and-code", true)]
    [InlineData("short", false)]
    public void TheScanFlagsWideCodeAndCommentsAndLeavesStringsWhole(string kind, bool flagged)
    {
        string wide = new('x', Width);
        string source = kind switch
        {
            "code" => $"class C {{ int M() => {string.Join(" + ", Enumerable.Repeat("value", 30))}; }}",
            "comment" => $"// {wide}\nclass C {{ }}",
            "doc" => $"/// <summary>{wide}</summary>\nclass C {{ }}",
            "string" => $"class C {{\n    string S = \"{wide}\";\n}}",
            "raw" => $"class C {{\n    string S = \"\"\"\n        {wide}\n        \"\"\";\n}}",
            "message" => "class C {\n    string S(int a) =>\n        $\""
                + wide
                + " {a.ToString(\"x\")} {(a > 1 ? $\"{a}\" : \"}\")}\";\n}",
            "message-and-code" => "class C {\n    string S(int a) => $\"{a}\" + "
                + string.Join(" + ", Enumerable.Repeat("a", 60))
                + ";\n}",
            _ => "class C { }",
        };

        Assert.Equal(flagged, Scan(source).Count > 0);
    }

    /// <summary>The numbers of the lines wider than the width whose excess is not inside a string literal.</summary>
    private static List<int> Scan(string source)
    {
        string[] lines = source.Split('\n');
        string[] code = DeterminismTidy.StripCommentsAndStrings(source).Split('\n');
        var wide = new List<int>();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length <= Width)
            {
                continue;
            }

            // A comment line counts whole; elsewhere only what is left once strings are taken out
            // (a line inside a multi-line raw string is all string).
            bool comment = line.TrimStart().StartsWith("//", StringComparison.Ordinal);
            if (comment || (i < code.Length && code[i].TrimEnd().Length > Width && WithoutStrings(line).Length > Width))
            {
                wide.Add(i + 1);
            }
        }

        return wide;
    }

    /// <summary>
    /// The line with every string literal on it taken out whole, an interpolated one with its holes
    /// (and the strings inside them); a string that runs on past the line takes the rest of it.
    /// </summary>
    private static string WithoutStrings(string line)
    {
        var kept = new System.Text.StringBuilder(line.Length);
        int i = 0;
        while (i < line.Length)
        {
            if (line[i] == '/' && i + 1 < line.Length && line[i + 1] == '/')
            {
                kept.Append(line, i, line.Length - i);
                break;
            }

            if (StringStart(line, i) is { } start)
            {
                i = SkipString(line, start.Body, start.Interpolated, start.Verbatim);
                kept.Append("\"\"");
                continue;
            }

            if (line[i] == '\'')
            {
                int end = line.IndexOf('\'', i + (i + 1 < line.Length && line[i + 1] == '\\' ? 3 : 2));
                i = end < 0 ? line.Length : end + 1;
                kept.Append("' '");
                continue;
            }

            kept.Append(line[i]);
            i++;
        }

        return kept.ToString();
    }

    /// <summary>
    /// Where the body of a string literal starting at <paramref name="i"/> begins, and its kind; null when none starts
    /// there.
    /// </summary>
    private static (int Body, bool Interpolated, bool Verbatim)? StringStart(string line, int i)
    {
        int j = i;
        bool interpolated = false,
            verbatim = false;
        while (j < line.Length && line[j] is '$' or '@')
        {
            interpolated |= line[j] == '$';
            verbatim |= line[j] == '@';
            j++;
        }

        if (j >= line.Length || line[j] != '"' || (j > i && j - i > 3))
        {
            return null;
        }

        if (line.AsSpan(j).StartsWith("\"\"\""))
        {
            // A raw string: taken to the end of the line (a one-line raw string's rest is its text).
            return (line.Length, interpolated, true);
        }

        return (j + 1, interpolated, verbatim);
    }

    /// <summary>The index just past the string whose body starts at <paramref name="i"/>.</summary>
    private static int SkipString(string line, int i, bool interpolated, bool verbatim)
    {
        while (i < line.Length)
        {
            char c = line[i];
            if (!verbatim && c == '\\')
            {
                i += 2;
            }
            else if (c == '"' && verbatim && i + 1 < line.Length && line[i + 1] == '"')
            {
                i += 2;
            }
            else if (c == '"')
            {
                return i + 1;
            }
            else if (interpolated && c == '{' && i + 1 < line.Length && line[i + 1] == '{')
            {
                i += 2;
            }
            else if (interpolated && c == '{')
            {
                i = SkipHole(line, i + 1);
            }
            else
            {
                i++;
            }
        }

        return line.Length;
    }

    /// <summary>
    /// The index just past the hole whose code starts at <paramref name="i"/> (nested braces and strings skipped).
    /// </summary>
    private static int SkipHole(string line, int i)
    {
        int depth = 1;
        while (i < line.Length && depth > 0)
        {
            if (StringStart(line, i) is { } start)
            {
                i = SkipString(line, start.Body, start.Interpolated, start.Verbatim);
                continue;
            }

            depth += line[i] switch
            {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            i++;
        }

        return i;
    }
}
