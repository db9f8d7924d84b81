using System.Text.Json;

namespace Controller.Firmware.Config;

/// <summary>Every key of a schema with its value and where the value came from.</summary>
public sealed class ResolvedConfig
{
    private readonly Dictionary<string, object> _values;
    private readonly Dictionary<string, string> _sources;

    internal ResolvedConfig(ConfigSchema schema, string? file)
    {
        Schema = schema;
        File = file;
        _values = schema.Keys.ToDictionary(k => k.Path, k => k.DefaultValue, StringComparer.Ordinal);
        _sources = schema.Keys.ToDictionary(k => k.Path, _ => "default", StringComparer.Ordinal);
    }

    /// <summary>The schema the values follow.</summary>
    public ConfigSchema Schema { get; }

    /// <summary>The profile file the values were read from, or null for defaults only.</summary>
    public string? File { get; }

    /// <summary>The value of <paramref name="key"/>.</summary>
    public T Get<T>(ConfigKey<T> key)
        where T : notnull => (T)_values[key.Path];

    /// <summary>The value of <paramref name="key"/>, untyped.</summary>
    public object Get(ConfigKey key) => _values[key.Path];

    /// <summary>
    /// Where the value of <paramref name="key"/> came from: "default", the file, or "--set KEY=VALUE".
    /// </summary>
    public string SourceOf(ConfigKey key) => _sources[key.Path];

    /// <summary>Writes every key and its value as nested JSON objects, the shape of a profile file.</summary>
    public void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        string[] open = [];
        foreach (ConfigKey key in Schema.Keys)
        {
            string[] parts = key.Path.Split('.');
            int common = 0;
            while (common < open.Length && common < parts.Length - 1 && open[common] == parts[common])
            {
                common++;
            }

            for (int i = open.Length; i > common; i--)
            {
                writer.WriteEndObject();
            }

            for (int i = common; i < parts.Length - 1; i++)
            {
                writer.WriteStartObject(parts[i]);
            }

            open = parts[..^1];
            writer.WritePropertyName(parts[^1]);
            key.WriteJson(writer, _values[key.Path]);
        }

        for (int i = 0; i < open.Length; i++)
        {
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    internal void Set(ConfigKey key, object value, string source)
    {
        _values[key.Path] = value;
        _sources[key.Path] = source;
    }
}
