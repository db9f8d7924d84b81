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
    private static readonly string[] s_tops = ["firmware", "emulator", "host", "tests"];

    private const int Width = 120;

    [Fact]
    public void NoLineOfTheTreeIsWiderThan120ColumnsButForStrings()
    {
        var findings = new List<string>();
        int files = 0;
        foreach (string file in s_tops.SelectMany(top => Repository.CSharpSources(Repository.PathOf(top))))
        {
            files++;
            string relative = Path.GetRelativePath(Repository.Root, file);
            findings.AddRange(Scan(File.ReadAllText(file)).Select(line => $"{relative}:{line}"));
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
        // What is left once every string literal is taken out whole, an interpolated one with its
        // holes (a line inside a multi-line raw string is all string); comments go too, and count
        // below on their own lines.
        string[] code = DeterminismTidy.StripCommentsAndStrings(source, keepHoles: false).Split('\n');
        var wide = new List<int>();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length <= Width)
            {
                continue;
            }

            bool comment = line.TrimStart().StartsWith("//", StringComparison.Ordinal);
            if (comment || (i < code.Length && code[i].TrimEnd().Length > Width))
            {
                wide.Add(i + 1);
            }
        }

        return wide;
    }
}
