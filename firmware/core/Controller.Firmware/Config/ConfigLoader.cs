using System.Text.Json;

namespace Controller.Firmware.Config;

/// <summary>
/// The one loader of configuration: a JSON profile (nested objects whose leaves are the keys of a
/// <see cref="ConfigSchema"/>) layered over the schema's defaults, then <c>--set key=value</c>
/// overrides, then the schema's rules. The first problem found is thrown as a
/// <see cref="ConfigException"/> naming the file, the key and the reason; nothing is half-loaded.
/// A profile may start from others: <c>"include": "FILE"</c> (or a list), paths relative to the
/// including file, applied first, so a board profile names its chip description instead of copying it.
/// </summary>
public static class ConfigLoader
{
    private const string OverridePrefix = "--set ";
    private const string IncludeKey = "include";
    private const int MaxIncludeDepth = 4;

    private static readonly JsonDocumentOptions s_jsonOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>
    /// Loads <paramref name="file"/> (or defaults only when null) and applies <paramref name="overrides"/>.
    /// Errors call the file <paramref name="displayName"/> when given (a shorter name for a shipped profile).
    /// </summary>
    public static ResolvedConfig Load(
        ConfigSchema schema,
        string? file,
        IEnumerable<string> overrides,
        string? displayName = null
    )
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(overrides);
        string? json = null;
        if (file is not null)
        {
            if (!System.IO.File.Exists(file))
            {
                throw new ConfigException(
                    displayName ?? file,
                    null,
                    Directory.Exists(file) ? "is a directory, not a profile file" : "no such file"
                );
            }

            try
            {
                json = System.IO.File.ReadAllText(file);
            }
            catch (IOException e)
            {
                throw new ConfigException(displayName ?? file, null, $"cannot be read: {e.Message}");
            }
            catch (UnauthorizedAccessException e)
            {
                throw new ConfigException(displayName ?? file, null, $"cannot be read: {e.Message}");
            }
        }

        return Parse(
            schema,
            displayName ?? file,
            json,
            overrides,
            file is null ? null : Path.GetDirectoryName(Path.GetFullPath(file))
        );
    }

    /// <summary>
    /// Loads from JSON text already in memory. <paramref name="sourceName"/> is what errors call
    /// the source (a file name); <paramref name="json"/> null means defaults only.
    /// </summary>
    public static ResolvedConfig Parse(
        ConfigSchema schema,
        string? sourceName,
        string? json,
        IEnumerable<string> overrides
    ) => Parse(schema, sourceName, json, overrides, baseDirectory: null);

    private static ResolvedConfig Parse(
        ConfigSchema schema,
        string? sourceName,
        string? json,
        IEnumerable<string> overrides,
        string? baseDirectory
    )
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(overrides);
        var config = new ResolvedConfig(schema, sourceName);
        string source = sourceName ?? "defaults";
        if (json is not null)
        {
            ApplyJson(schema, config, source, json, baseDirectory ?? Directory.GetCurrentDirectory(), depth: 0);
        }

        foreach (string assignment in overrides)
        {
            ApplyOverride(schema, config, source, assignment);
        }

        foreach (ConfigRule rule in schema.Rules)
        {
            string? reason = rule.Check(config);
            if (reason is not null)
            {
                string[] assignments =
                [
                    .. rule
                        .Related.Prepend(rule.Key)
                        .Select(config.SourceOf)
                        .Where(origin => origin.StartsWith(OverridePrefix, StringComparison.Ordinal))
                        .Select(origin => origin[OverridePrefix.Length..]),
                ];
                throw new ConfigException(
                    source,
                    rule.Key.Path,
                    reason,
                    assignments.Length == 0 ? null : string.Join(", --set ", assignments)
                );
            }
        }

        return config;
    }

    private static void ApplyJson(
        ConfigSchema schema,
        ResolvedConfig config,
        string source,
        string json,
        string directory,
        int depth
    )
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, s_jsonOptions);
        }
        catch (JsonException e)
        {
            throw new ConfigException(
                source,
                null,
                $"not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})"
            );
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigException(source, null, "a profile is a JSON object of keys");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            if (document.RootElement.TryGetProperty(IncludeKey, out JsonElement include))
            {
                ApplyIncludes(schema, config, source, include, directory, depth);
            }

            ApplyObject(schema, config, source, document.RootElement, prefix: string.Empty, seen);
        }
    }

    /// <summary>Applies the profiles an <c>include</c> names, in order, before the including one's own keys.</summary>
    private static void ApplyIncludes(
        ConfigSchema schema,
        ResolvedConfig config,
        string source,
        JsonElement include,
        string directory,
        int depth
    )
    {
        JsonElement[] names = include.ValueKind == JsonValueKind.Array ? [.. include.EnumerateArray()] : [include];
        if (names.Any(n => n.ValueKind != JsonValueKind.String || n.GetString()!.Length == 0))
        {
            throw new ConfigException(
                source,
                IncludeKey,
                "is a file name, or a list of file names, relative to this profile"
            );
        }

        if (depth >= MaxIncludeDepth)
        {
            throw new ConfigException(
                source,
                IncludeKey,
                $"includes nest deeper than {MaxIncludeDepth} (a profile including itself?)"
            );
        }

        foreach (string name in names.Select(n => n.GetString()!))
        {
            string path = Path.GetFullPath(Path.Combine(directory, name));
            string text;
            try
            {
                text = System.IO.File.ReadAllText(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException(source, IncludeKey, $"'{name}' cannot be read ({path}): {e.Message}");
            }

            ApplyJson(schema, config, name, text, Path.GetDirectoryName(path)!, depth + 1);
        }
    }

    private static void ApplyObject(
        ConfigSchema schema,
        ResolvedConfig config,
        string source,
        JsonElement obj,
        string prefix,
        HashSet<string> seen
    )
    {
        foreach (JsonProperty property in obj.EnumerateObject())
        {
            string path = prefix.Length == 0 ? property.Name : $"{prefix}.{property.Name}";
            if (path == IncludeKey)
            {
                continue;
            }

            if (!seen.Add(path))
            {
                throw new ConfigException(source, path, "is set twice");
            }

            if (schema.TryGetKey(path, out ConfigKey key))
            {
                if (!key.TryParse(property.Value, out object? value, out string reason))
                {
                    throw new ConfigException(source, path, reason);
                }

                config.Set(key, value!, source);
            }
            else if (schema.Keys.Any(k => k.Path.StartsWith(path + ".", StringComparison.Ordinal)))
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                {
                    throw new ConfigException(
                        source,
                        path,
                        $"is a group of keys, not a value; write \"{property.Name}\": {{ ... }}"
                    );
                }

                ApplyObject(schema, config, source, property.Value, path, seen);
            }
            else
            {
                throw new ConfigException(source, path, UnknownKeyReason(schema, path));
            }
        }
    }

    private static void ApplyOverride(ConfigSchema schema, ResolvedConfig config, string source, string assignment)
    {
        int equals = assignment.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            throw new ConfigException($"--set {assignment}", null, "expected KEY=VALUE, e.g. --set nand.channels=8");
        }

        string path = assignment[..equals].Trim();
        string text = assignment[(equals + 1)..];
        if (!schema.TryGetKey(path, out ConfigKey key))
        {
            throw new ConfigException(source, path, UnknownKeyReason(schema, path), assignment);
        }

        if (!key.TryParse(text, out object? value, out string reason))
        {
            throw new ConfigException(source, path, reason, assignment);
        }

        config.Set(key, value!, OverridePrefix + assignment);
    }

    private static string UnknownKeyReason(ConfigSchema schema, string path)
    {
        string? suggestion = schema.Suggest(path);
        return suggestion is null ? "unknown key" : $"unknown key; did you mean {suggestion}?";
    }
}
