namespace Controller.Firmware.Config;

/// <summary>
/// A configuration that cannot be used. The message is one line naming the source (a file, or
/// <c>--set</c>), the key and the reason, e.g.
/// <c>hw-config/emulated/tiny.json: nand.pageBytes: 3000 is not a power of two</c>.
/// </summary>
public sealed class ConfigException : Exception
{
    /// <summary>
    /// Creates the error for <paramref name="key"/> (or the whole source when null). When the bad
    /// value came from a <c>--set</c> override, <paramref name="assignment"/> is that override.
    /// </summary>
    public ConfigException(string source, string? key, string reason, string? assignment = null)
        : base(Compose(source, key, reason, assignment))
    {
        Source = source;
        Key = key;
        Reason = reason;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming source, key and reason.</summary>
    public ConfigException()
    {
        Source = string.Empty;
        Reason = string.Empty;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming source, key and reason.</summary>
    public ConfigException(string message)
        : base(message)
    {
        Source = string.Empty;
        Reason = message;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming source, key and reason.</summary>
    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
        Source = string.Empty;
        Reason = message;
    }

    private static string Compose(string source, string? key, string reason, string? assignment)
    {
        string message = key is null ? $"{source}: {reason}" : $"{source}: {key}: {reason}";
        return assignment is null ? message : $"{message} (from --set {assignment})";
    }

    /// <summary>Where the bad value came from: a file path, or <c>--set key=value</c>.</summary>
    public new string Source { get; }

    /// <summary>The dotted key at fault, or null when the whole source is at fault (missing file, bad JSON).</summary>
    public string? Key { get; }

    /// <summary>Why the value cannot be used.</summary>
    public string Reason { get; }
}
