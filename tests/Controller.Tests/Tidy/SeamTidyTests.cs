using System.Text.RegularExpressions;
using Controller.Tests.Support;

namespace Controller.Tests.Tidy;

/// <summary>
/// The product has no broken variants of its own: the canaries live in the tests
/// (<see cref="Sabotage"/>), which decorate the firmware's edges. A name with "Canary" in the code
/// of the firmware, the emulator or the host tools (comments and strings aside) fails.
/// </summary>
[Trait("Category", "Unit")]
public sealed partial class SeamTidyTests
{
    private static readonly string[] s_tops = ["firmware", "emulator", "host"];

    [Fact]
    public void TheProductCodeNamesNoCanary()
    {
        var findings = new List<string>();
        int files = 0;
        foreach (string file in s_tops.SelectMany(top => Repository.CSharpSources(Repository.PathOf(top))))
        {
            files++;
            string relative = Path.GetRelativePath(Repository.Root, file);
            findings.AddRange(Scan(File.ReadAllText(file)).Select(line => $"{relative}:{line}"));
        }

        Assert.True(files > 50, $"the scan found only {files} sources");
        Assert.True(
            findings.Count == 0,
            "the product must not carry broken variants of itself; decorate its edges from the tests:\n"
                + string.Join('\n', findings)
        );
    }

    [Theory]
    [InlineData("    internal bool CanaryFlushBeforeDurable { get; init; }", true)]
    [InlineData("        if (!_options.CanaryRecoveryIgnoresTrims)", true)]
    [InlineData("    // the canary of the check above", false)]
    [InlineData("    string s = \"a Canary here\";", false)]
    public void TheScanFindsACanaryInCodeOnly(string line, bool found) => Assert.Equal(found, Scan(line).Count > 0);

    private static List<int> Scan(string source)
    {
        string[] lines = DeterminismTidy.StripCommentsAndStrings(source).Split('\n');
        return [.. Enumerable.Range(0, lines.Length).Where(i => CanaryName().IsMatch(lines[i])).Select(i => i + 1)];
    }

    [GeneratedRegex(@"\b\w*Canary\w*\b", RegexOptions.IgnoreCase)]
    private static partial Regex CanaryName();
}
