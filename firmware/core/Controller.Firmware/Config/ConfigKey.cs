using System.Globalization;
using System.Text.Json;

namespace Controller.Firmware.Config;

/// <summary>
/// One named, typed configuration key, written as a dotted path (<c>nand.pageBytes</c>) both in
/// JSON profiles (as nested objects) and in <c>--set key=value</c> overrides.
/// </summary>
public abstract class ConfigKey
{
    /// <summary>Creates a key with its dotted path and a one-line description.</summary>
    protected ConfigKey(string path, string description)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = path;
        Description = description;
    }

    /// <summary>The dotted path, e.g. <c>nand.pageBytes</c>.</summary>
    public string Path { get; }

    /// <summary>What the key means, with its unit.</summary>
    public string Description { get; }

    /// <summary>The value used when no file or override sets the key.</summary>
    public abstract object DefaultValue { get; }

    /// <summary>How the type is named in error messages, e.g. "a whole number from 1 to 64".</summary>
    public abstract string Expectation { get; }

    /// <summary>Parses a JSON value; on failure <paramref name="reason"/> says why.</summary>
    public abstract bool TryParse(JsonElement element, out object? value, out string reason);

    /// <summary>Parses the text of a <c>--set</c> override; on failure <paramref name="reason"/> says why.</summary>
    public abstract bool TryParse(string text, out object? value, out string reason);

    /// <summary>Parses a JSON string with the text parser; any other JSON value is the wrong type.</summary>
    protected bool TryParseJsonString(JsonElement element, out object? value, out string reason)
    {
        if (element.ValueKind != JsonValueKind.String)
        {
            value = null;
            reason = $"{element.GetRawText()} is not a string; expected {Expectation}";
            return false;
        }

        return TryParse(element.GetString()!, out value, out reason);
    }

    /// <summary>Formats a value as it would be written in a <c>--set</c> override.</summary>
    public virtual string Format(object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty;

    /// <summary>The value as JSON, for machine-readable output.</summary>
    public abstract void WriteJson(Utf8JsonWriter writer, object value);
}

/// <summary>A key whose values are of type <typeparamref name="T"/>.</summary>
public abstract class ConfigKey<T> : ConfigKey
    where T : notnull
{
    /// <summary>Creates a key with its default value.</summary>
    protected ConfigKey(string path, string description, T defaultValue)
        : base(path, description)
    {
        Default = defaultValue;
    }

    /// <summary>The typed default value.</summary>
    public T Default { get; }

    /// <inheritdoc />
    public override object DefaultValue => Default;
}

/// <summary>
/// A whole number within [<see cref="Min"/>, <see cref="Max"/>]. With <see cref="IsByteSize"/> it
/// also accepts binary suffixes: <c>16k</c>, <c>64M</c>, <c>1G</c>.
/// </summary>
public sealed class IntegerKey : ConfigKey<long>
{
    /// <summary>Creates an integer key.</summary>
    public IntegerKey(string path, string description, long defaultValue, long min, long max, bool isByteSize = false)
        : base(path, description, defaultValue)
    {
        if (min > max || defaultValue < min || defaultValue > max)
        {
            throw new ArgumentException($"{path}: default {defaultValue} is outside [{min}, {max}]");
        }

        Min = min;
        Max = max;
        IsByteSize = isByteSize;
    }

    /// <summary>The smallest accepted value.</summary>
    public long Min { get; }

    /// <summary>The largest accepted value.</summary>
    public long Max { get; }

    /// <summary>True when the value is a size in bytes and accepts k, M and G suffixes.</summary>
    public bool IsByteSize { get; }

    /// <inheritdoc />
    public override string Expectation =>
        IsByteSize
            ? $"a size in bytes from {Min} to {Max} (suffixes k, M, G allowed)"
            : $"a whole number from {Min} to {Max}";

    /// <inheritdoc />
    public override bool TryParse(JsonElement element, out object? value, out string reason)
    {
        value = null;
        if (element.ValueKind == JsonValueKind.Number)
        {
            if (!element.TryGetInt64(out long number))
            {
                reason = $"{element.GetRawText()} is not a whole number; expected {Expectation}";
                return false;
            }

            return CheckRange(number, element.GetRawText(), out value, out reason);
        }

        if (element.ValueKind == JsonValueKind.String && IsByteSize)
        {
            return TryParse(element.GetString()!, out value, out reason);
        }

        reason = $"{element.GetRawText()} is not a whole number; expected {Expectation}";
        return false;
    }

    /// <inheritdoc />
    public override bool TryParse(string text, out object? value, out string reason)
    {
        value = null;
        string trimmed = text.Trim();
        long multiplier = 1;
        if (IsByteSize && trimmed.Length > 1)
        {
            multiplier = char.ToUpperInvariant(trimmed[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                _ => 1,
            };
            if (multiplier != 1)
            {
                trimmed = trimmed[..^1];
            }
        }

        if (!long.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long number))
        {
            reason = $"'{text}' is not a whole number; expected {Expectation}";
            return false;
        }

        long scaled;
        try
        {
            scaled = checked(number * multiplier);
        }
        catch (OverflowException)
        {
            reason = $"'{text}' is too large; expected {Expectation}";
            return false;
        }

        return CheckRange(scaled, $"'{text}'", out value, out reason);
    }

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, object value) => writer.WriteNumberValue((long)value);

    private bool CheckRange(long number, string shown, out object? value, out string reason)
    {
        if (number < Min || number > Max)
        {
            value = null;
            reason = $"{shown} is out of range; expected {Expectation}";
            return false;
        }

        value = number;
        reason = string.Empty;
        return true;
    }
}

/// <summary>A real number within [<see cref="Min"/>, <see cref="Max"/>].</summary>
public sealed class NumberKey : ConfigKey<double>
{
    /// <summary>Creates a number key.</summary>
    public NumberKey(string path, string description, double defaultValue, double min, double max)
        : base(path, description, defaultValue)
    {
        if (min > max || defaultValue < min || defaultValue > max)
        {
            throw new ArgumentException($"{path}: default {defaultValue} is outside [{min}, {max}]");
        }

        Min = min;
        Max = max;
    }

    /// <summary>The smallest accepted value.</summary>
    public double Min { get; }

    /// <summary>The largest accepted value.</summary>
    public double Max { get; }

    /// <inheritdoc />
    public override string Expectation => string.Create(CultureInfo.InvariantCulture, $"a number from {Min} to {Max}");

    /// <inheritdoc />
    public override bool TryParse(JsonElement element, out object? value, out string reason)
    {
        if (element.ValueKind != JsonValueKind.Number)
        {
            value = null;
            reason = $"{element.GetRawText()} is not a number; expected {Expectation}";
            return false;
        }

        return CheckRange(element.GetDouble(), element.GetRawText(), out value, out reason);
    }

    /// <inheritdoc />
    public override bool TryParse(string text, out object? value, out string reason)
    {
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
        {
            value = null;
            reason = $"'{text}' is not a number; expected {Expectation}";
            return false;
        }

        return CheckRange(number, $"'{text}'", out value, out reason);
    }

    /// <inheritdoc />
    public override string Format(object value) => ((double)value).ToString("R", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, object value) => writer.WriteNumberValue((double)value);

    private bool CheckRange(double number, string shown, out object? value, out string reason)
    {
        if (!double.IsFinite(number) || number < Min || number > Max)
        {
            value = null;
            reason = $"{shown} is out of range; expected {Expectation}";
            return false;
        }

        value = number;
        reason = string.Empty;
        return true;
    }
}

/// <summary>A boolean: JSON true/false, or the text true/false.</summary>
public sealed class BooleanKey : ConfigKey<bool>
{
    /// <summary>Creates a boolean key.</summary>
    public BooleanKey(string path, string description, bool defaultValue)
        : base(path, description, defaultValue) { }

    /// <inheritdoc />
    public override string Expectation => "true or false";

    /// <inheritdoc />
    public override bool TryParse(JsonElement element, out object? value, out string reason)
    {
        if (element.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            value = element.GetBoolean();
            reason = string.Empty;
            return true;
        }

        value = null;
        reason = $"{element.GetRawText()} is not {Expectation}";
        return false;
    }

    /// <inheritdoc />
    public override bool TryParse(string text, out object? value, out string reason)
    {
        if (bool.TryParse(text.Trim(), out bool flag))
        {
            value = flag;
            reason = string.Empty;
            return true;
        }

        value = null;
        reason = $"'{text}' is not {Expectation}";
        return false;
    }

    /// <inheritdoc />
    public override string Format(object value) => (bool)value ? "true" : "false";

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, object value) => writer.WriteBooleanValue((bool)value);
}

/// <summary>A string: free text, or one of a fixed set of choices when <see cref="Choices"/> is not empty.</summary>
public sealed class TextKey : ConfigKey<string>
{
    /// <summary>Creates a text key; pass choices to restrict it to an enumeration.</summary>
    public TextKey(string path, string description, string defaultValue, params string[] choices)
        : base(path, description, defaultValue)
    {
        Choices = choices;
        if (choices.Length > 0 && !choices.Contains(defaultValue, StringComparer.Ordinal))
        {
            throw new ArgumentException($"{path}: default '{defaultValue}' is not one of the choices");
        }
    }

    /// <summary>The accepted values; empty for free text.</summary>
    public IReadOnlyList<string> Choices { get; }

    /// <inheritdoc />
    public override string Expectation => Choices.Count == 0 ? "a string" : $"one of {string.Join(", ", Choices)}";

    /// <inheritdoc />
    public override bool TryParse(JsonElement element, out object? value, out string reason) =>
        TryParseJsonString(element, out value, out reason);

    /// <inheritdoc />
    public override bool TryParse(string text, out object? value, out string reason)
    {
        if (Choices.Count > 0 && !Choices.Contains(text, StringComparer.Ordinal))
        {
            value = null;
            reason = $"'{text}' is not {Expectation}";
            return false;
        }

        value = text;
        reason = string.Empty;
        return true;
    }

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, object value) => writer.WriteStringValue((string)value);
}

/// <summary>A short byte string written in hex, e.g. a JEDEC ID: <c>"EF AA 21"</c>.</summary>
public sealed class HexBytesKey : ConfigKey<HexBytes>
{
    /// <summary>Creates a hex byte-string key accepting at most <paramref name="maxBytes"/> bytes.</summary>
    public HexBytesKey(string path, string description, int maxBytes)
        : base(path, description, HexBytes.Empty)
    {
        MaxBytes = maxBytes;
    }

    /// <summary>The longest accepted byte string.</summary>
    public int MaxBytes { get; }

    /// <inheritdoc />
    public override string Expectation => $"up to {MaxBytes} hex bytes, e.g. \"EF AA 21\"";

    /// <inheritdoc />
    public override bool TryParse(JsonElement element, out object? value, out string reason) =>
        TryParseJsonString(element, out value, out reason);

    /// <inheritdoc />
    public override bool TryParse(string text, out object? value, out string reason)
    {
        value = null;
        var bytes = new List<byte>();
        foreach (string token in text.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries))
        {
            string digits = token.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? token[2..] : token;
            if (
                digits.Length is 0 or > 2
                || !byte.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b)
            )
            {
                reason = $"'{token}' in '{text}' is not a hex byte; expected {Expectation}";
                return false;
            }

            bytes.Add(b);
        }

        if (bytes.Count > MaxBytes)
        {
            reason = $"'{text}' has {bytes.Count} bytes; expected {Expectation}";
            return false;
        }

        value = new HexBytes([.. bytes]);
        reason = string.Empty;
        return true;
    }

    /// <inheritdoc />
    public override string Format(object value) => value.ToString() ?? string.Empty;

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, object value) => writer.WriteStringValue(value.ToString());
}

/// <summary>An immutable byte string that compares by content and prints as spaced hex.</summary>
public sealed class HexBytes : IEquatable<HexBytes>
{
    private readonly byte[] _bytes;

    /// <summary>Wraps a copy of <paramref name="bytes"/>.</summary>
    public HexBytes(ReadOnlySpan<byte> bytes)
    {
        _bytes = bytes.ToArray();
    }

    /// <summary>The empty byte string.</summary>
    public static HexBytes Empty { get; } = new([]);

    /// <summary>The bytes.</summary>
    public ReadOnlySpan<byte> Span => _bytes;

    /// <summary>How many bytes.</summary>
    public int Length => _bytes.Length;

    /// <inheritdoc />
    public bool Equals(HexBytes? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as HexBytes);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }

    /// <summary>"EF AA 21".</summary>
    public override string ToString() =>
        string.Join(' ', _bytes.Select(b => b.ToString("X2", CultureInfo.InvariantCulture)));
}
