namespace Controller.Firmware.Config;

/// <summary>
/// The keys a configuration may hold and the rules that relate them (a page size that an ECC
/// codeword divides, a block of whole sectors). Schemas compose: the firmware's keys, plus the
/// emulator's fault keys in the emulator.
/// </summary>
public sealed class ConfigSchema
{
    private readonly Dictionary<string, ConfigKey> _byPath;

    /// <summary>Creates a schema; paths must be unique.</summary>
    public ConfigSchema(IEnumerable<ConfigKey> keys, IEnumerable<ConfigRule> rules)
    {
        // Keys of one group stay together so that the printed profile nests them in one object.
        Keys =
        [
            .. keys.GroupBy(k =>
                    k.Path.Contains('.', StringComparison.Ordinal) ? k.Path[..k.Path.LastIndexOf('.')] : string.Empty
                )
                .SelectMany(g => g),
        ];
        Rules = [.. rules];
        _byPath = new Dictionary<string, ConfigKey>(StringComparer.Ordinal);
        foreach (ConfigKey key in Keys)
        {
            if (!_byPath.TryAdd(key.Path, key))
            {
                throw new ArgumentException($"the key {key.Path} is defined twice", nameof(keys));
            }
        }
    }

    /// <summary>Every key, in the order they are printed.</summary>
    public IReadOnlyList<ConfigKey> Keys { get; }

    /// <summary>The rules checked after every value is parsed.</summary>
    public IReadOnlyList<ConfigRule> Rules { get; }

    /// <summary>This schema with more keys and rules.</summary>
    public ConfigSchema Extend(IEnumerable<ConfigKey> keys, IEnumerable<ConfigRule> rules) =>
        new(Keys.Concat(keys), Rules.Concat(rules));

    /// <summary>Finds the key at <paramref name="path"/>.</summary>
    public bool TryGetKey(string path, out ConfigKey key) => _byPath.TryGetValue(path, out key!);

    /// <summary>
    /// The known path closest to <paramref name="path"/>, for "did you mean" hints; null if none is close.
    /// </summary>
    public string? Suggest(string path)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string known in _byPath.Keys)
        {
            int distance = EditDistance(path.ToUpperInvariant(), known.ToUpperInvariant());
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = known;
            }
        }

        return bestDistance <= Math.Max(2, path.Length / 4) ? best : null;
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j] + 1, current[j - 1] + 1));
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}

/// <summary>
/// A rule across keys. <see cref="Check"/> returns null when the configuration satisfies it, or
/// the reason it does not; the error names <see cref="Key"/>, and any of <see cref="Key"/> and
/// <see cref="Related"/> that a <c>--set</c> override changed.
/// </summary>
/// <param name="Key">The key blamed when the rule fails (the one a user would change).</param>
/// <param name="Check">The test.</param>
/// <param name="Related">The other keys the rule reads.</param>
public sealed record ConfigRule(ConfigKey Key, Func<ResolvedConfig, string?> Check, params ConfigKey[] Related);
