using System.Globalization;
using Controller.Common;

namespace Controller.Emulator.Cli;

/// <summary>Human-readable sizes and durations for the emulator's reports.</summary>
internal static class Units
{
    /// <summary>"1073741824 B (1.00 GiB)".</summary>
    public static string Bytes(long bytes) =>
        string.Create(CultureInfo.InvariantCulture, $"{bytes} B ({Binary(bytes)})");

    /// <summary>"1.00 GiB", "16 KiB", "512 B".</summary>
    public static string Binary(long bytes) => Common.ByteUnits.Binary(bytes);

    /// <summary>"20.5 us", "3 ms".</summary>
    public static string Duration(long nanoseconds) =>
        nanoseconds switch
        {
            < 1_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds} ns"),
            < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1e3:0.###} us"),
            < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1e6:0.###} ms"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1e9:0.###} s"),
        };
}
