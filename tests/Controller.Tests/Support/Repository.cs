namespace Controller.Tests.Support;

/// <summary>Paths of the checkout the tests run from.</summary>
internal static class Repository
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            directory is not null;
            directory = directory.Parent
        )
        {
            if (File.Exists(Path.Combine(directory.FullName, "Controller.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no Controller.sln above {AppContext.BaseDirectory}");
    });

    /// <summary>The folder holding Controller.sln.</summary>
    public static string Root => s_root.Value;

    /// <summary>A file or folder of the checkout, by its path from the root.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>
    /// The C# sources below <paramref name="directory"/>, in ordinal order, leaving out build output (bin, obj).
    /// </summary>
    public static IReadOnlyList<string> CSharpSources(string directory) =>
        [
            .. Directory
                .EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories)
                .Where(file =>
                    !Path.GetRelativePath(directory, file)
                        .Split(Path.DirectorySeparatorChar)
                        .Any(part => part is "bin" or "obj")
                )
                .Order(StringComparer.Ordinal),
        ];
}
