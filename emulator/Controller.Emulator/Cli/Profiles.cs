using Controller.Firmware.Config;

namespace Controller.Emulator.Cli;

/// <summary>
/// Finds the profile a command line names and loads it with its overrides. <c>--config</c> takes a
/// file path, or the name of a profile shipped in hw-config (<c>tiny</c>, <c>default</c>,
/// <c>w25n01gv</c>); without it the default emulated device is used.
/// </summary>
internal static class Profiles
{
    private static readonly string[] s_folders = ["emulated", "chips"];

    /// <summary>The hw-config folder that travels with the binary.</summary>
    public static string BuiltInDirectory => Path.Combine(AppContext.BaseDirectory, "hw-config");

    /// <summary>
    /// Loads the profile named by <paramref name="config"/> (null: the default) and applies
    /// <paramref name="overrides"/>.
    /// </summary>
    public static ResolvedConfig Load(string? config, IEnumerable<string> overrides)
    {
        string path = Resolve(config);
        return ConfigLoader.Load(EmulatorConfig.Schema, path, overrides, Display(path));
    }

    /// <summary>A shipped profile as <c>hw-config/emulated/NAME.json</c>; any other path as given.</summary>
    public static string Display(string path)
    {
        string relative = Path.GetRelativePath(AppContext.BaseDirectory, Path.GetFullPath(path));
        return relative.StartsWith("hw-config", StringComparison.Ordinal) ? relative : path;
    }

    /// <summary>The file a <c>--config</c> value names.</summary>
    public static string Resolve(string? config)
    {
        if (config is null)
        {
            return Path.Combine(BuiltInDirectory, "emulated", "default.json");
        }

        if (
            File.Exists(config)
            || config.Contains('/', StringComparison.Ordinal)
            || config.EndsWith(".json", StringComparison.Ordinal)
        )
        {
            return config;
        }

        foreach (string folder in s_folders)
        {
            string candidate = Path.Combine(BuiltInDirectory, folder, config + ".json");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        // Not a file and not a built-in name: let the loader report the missing file by the name given.
        return config;
    }

    /// <summary>The names of the shipped profiles, for help text.</summary>
    public static IEnumerable<string> BuiltInNames() =>
        s_folders
            .Select(folder => Path.Combine(BuiltInDirectory, folder))
            .Where(Directory.Exists)
            .SelectMany(folder => Directory.EnumerateFiles(folder, "*.json"))
            .Select(Path.GetFileNameWithoutExtension)
            .OfType<string>()
            .Order(StringComparer.Ordinal);
}
