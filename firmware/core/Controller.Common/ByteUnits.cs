using System.Globalization;

namespace Controller.Common;

/// <summary>Sizes as people read them, for reports of every tool.</summary>
public static class ByteUnits
{
    /// <summary>"1.00 GiB", "16 KiB", "512 B".</summary>
    public static string Binary(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 || value == Math.Floor(value)
            ? string.Create(CultureInfo.InvariantCulture, $"{value:0} {units[unit]}")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.00} {units[unit]}");
    }
}
