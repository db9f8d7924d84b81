using System.Globalization;

namespace Controller.Cli;

/// <summary>
/// The value syntaxes the three programs share, parsed in one place: sizes with k/M/G/T suffixes
/// (powers of 1024), durations with ms/s/m/h, bytes in decimal or 0x hex, bounded numbers. Every
/// error names the option and repeats the value.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Naming",
    "CA1720",
    Justification = "Integer and Byte name the kind of value parsed."
)]
public static class Values
{
    /// <summary>
    /// Parses "4096", "4k", "1M", "2G", "1T" (powers of 1024; a trailing B or iB is allowed: 4KiB, 1MB).
    /// </summary>
    public static long Size(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (TrySize(text, out long value))
        {
            return value;
        }

        throw new UsageException($"{what} '{text}' is not a size (bytes, or a number with k, M, G or T)");
    }

    /// <summary>As <see cref="Size"/>, without throwing.</summary>
    public static bool TrySize(string text, out long value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        string number = text.Trim();
        if (number.EndsWith("iB", StringComparison.Ordinal))
        {
            number = number[..^2];
        }
        else if (number.Length > 2 && number.EndsWith('B') && char.IsLetter(number[^2]))
        {
            number = number[..^1];
        }

        long scale = 1;
        if (number.Length > 1 && char.IsLetter(number[^1]))
        {
            scale = char.ToUpperInvariant(number[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => 0,
            };
            number = number[..^1];
        }

        if (
            scale == 0
            || !long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long count)
            || count > long.MaxValue / scale
        )
        {
            return false;
        }

        value = count * scale;
        return true;
    }

    /// <summary>Parses a duration: seconds, or a number with ms, s, m or h; must be positive.</summary>
    public static TimeSpan Duration(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        (string number, double scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1),
            _ when text.EndsWith('m') => (text[..^1], 60),
            _ when text.EndsWith('h') => (text[..^1], 3600),
            _ => (text, 1),
        };
        if (
            !double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || !double.IsFinite(value)
            || value <= 0
        )
        {
            throw new UsageException($"{what} '{text}' is not a duration (10s, 500ms, 2m)");
        }

        return TimeSpan.FromSeconds(value * scale);
    }

    /// <summary>Parses a byte: 0 to 255, or 0x00 to 0xff.</summary>
    public static byte Byte(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? byte.TryParse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte value)
            : byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return ok ? value : throw new UsageException($"{what} '{text}' is not a byte (0 to 255, or 0x00 to 0xff)");
    }

    /// <summary>Parses a whole number within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static long Integer(string text, string what, long min, long max)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
        {
            throw new UsageException($"{what} '{text}' is not a whole number");
        }

        if (value < min || value > max)
        {
            throw new UsageException($"{what} {value} is out of range; expected {min} to {max}");
        }

        return value;
    }

    /// <summary>Parses a finite number within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static double Number(string text, string what, double min, double max)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (
            !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || !double.IsFinite(value)
        )
        {
            throw new UsageException($"{what} '{text}' is not a number");
        }

        if (value < min || value > max)
        {
            throw new UsageException(
                $"{what} {value.ToString(CultureInfo.InvariantCulture)} is out of range; expected {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}"
            );
        }

        return value;
    }
}
