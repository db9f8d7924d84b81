using Controller.Tests.Support;

namespace Controller.Tests.Tidy;

/// <summary>
/// Nothing dead: the build refuses a private member nothing uses (IDE0051) or one that is written
/// and never read (IDE0052), in every project, because .editorconfig raises both to warnings and
/// Directory.Build.props treats warnings as errors. The canary builds a small project under the
/// repository's own settings, once with a private method nothing calls (it must fail, naming
/// IDE0051) and once with the method called (it must build).
/// </summary>
[Trait("Category", "Process")]
public sealed class DeadCodeTidyTests
{
    [Fact]
    public void TheSettingsMakeAnUnusedPrivateMemberAnError()
    {
        string editorConfig = File.ReadAllText(Repository.PathOf(".editorconfig"));
        string props = File.ReadAllText(Repository.PathOf("Directory.Build.props"));

        Assert.Contains("dotnet_diagnostic.IDE0051.severity = warning", editorConfig, StringComparison.Ordinal);
        Assert.Contains("dotnet_diagnostic.IDE0052.severity = warning", editorConfig, StringComparison.Ordinal);
        Assert.Contains("<TreatWarningsAsErrors>true</TreatWarningsAsErrors>", props, StringComparison.Ordinal);
        Assert.Contains("<EnforceCodeStyleInBuild>true</EnforceCodeStyleInBuild>", props, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AProjectUnderTheRepositorysSettingsFailsToBuildWithAnUnusedPrivateMethod(bool unused)
    {
        // Inside the repository (its obj/ is ignored by git), so its .editorconfig and build props apply.
        string directory = Repository.PathOf("obj", "dead-code-canary-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            File.WriteAllText(
                Path.Combine(directory, "Canary.csproj"),
                "<Project Sdk=\"Microsoft.NET.Sdk\"><PropertyGroup><OutputType>Library</OutputType></PropertyGroup></Project>"
            );
            string call = unused ? "0" : "Twice(1)";
            File.WriteAllText(
                Path.Combine(directory, "Canary.cs"),
                $$"""
                namespace Canary;

                /// <summary>A class with one private method.</summary>
                public static class Holder
                {
                    /// <summary>Uses the method, or not.</summary>
                    public static int Value() => {{call}};

                    private static int Twice(int value) => value * 2;
                }
                """
            );

            (int exitCode, string output, string error) = ExternalTool.Run(
                "dotnet",
                "build",
                directory,
                "-nologo",
                "-v",
                "q",
                "--disable-build-servers",
                "-p:UseSharedCompilation=false"
            );

            if (unused)
            {
                Assert.NotEqual(0, exitCode);
                Assert.Contains("IDE0051", output + error, StringComparison.Ordinal);
            }
            else
            {
                Assert.True(exitCode == 0, output + error);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
