using System.Globalization;
using Controller.Firmware.Config;

namespace Controller.Firmware.Flash;

/// <summary>What follows READ ID (9Fh) before a chip's ID bytes (docs/SPI-NAND.md, "READ ID detection").</summary>
public enum SpiNandIdMethod
{
    /// <summary>The ID comes right after the opcode.</summary>
    Opcode,

    /// <summary>An address byte (00h) is sent first.</summary>
    Address,

    /// <summary>A dummy byte is clocked first.</summary>
    Dummy,
}

/// <summary>
/// The ECC field of a chip's status register (C0h) and what its values mean: data in the chip
/// description (<c>chip.eccStatus</c>, e.g. <c>"5:4 0=0 1=1 2=x 3=x"</c>), so a new chip needs no code.
/// </summary>
public sealed class SpiNandEccStatus
{
    private readonly int _shift;
    private readonly int _mask;
    private readonly Dictionary<int, int> _corrected;

    private SpiNandEccStatus(int shift, int mask, Dictionary<int, int> corrected)
    {
        _shift = shift;
        _mask = mask;
        _corrected = corrected;
    }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static SpiNandEccStatus Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] range = parts.Length > 0 ? parts[0].Split(':') : [];
        if (
            range.Length != 2
            || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int hi)
            || !int.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out int lo)
            || lo > hi
            || hi > 7
        )
        {
            throw new FormatException($"'{text}' does not start with the field's bits as HI:LO (0 to 7), e.g. 5:4");
        }

        int mask = (1 << (hi - lo + 1)) - 1;
        var corrected = new Dictionary<int, int>();
        foreach (string entry in parts.Skip(1))
        {
            string[] pair = entry.Split('=');
            if (
                pair.Length != 2
                || !int.TryParse(pair[0], NumberStyles.None, CultureInfo.InvariantCulture, out int value)
                || value > mask
            )
            {
                throw new FormatException(
                    $"'{entry}' in '{text}' is not VALUE=BITS or VALUE=x with a value the {hi - lo + 1}-bit field holds"
                );
            }

            if (pair[1] == "x")
            {
                continue;
            }

            if (
                !int.TryParse(pair[1], NumberStyles.None, CultureInfo.InvariantCulture, out int bits)
                || !corrected.TryAdd(value, bits)
            )
            {
                throw new FormatException($"'{entry}' in '{text}' gives no bit count (or gives value {value} twice)");
            }
        }

        if (!corrected.TryGetValue(0, out int none) || none != 0)
        {
            throw new FormatException($"'{text}' must say 0=0: a field of 0 is a read with no bit errors");
        }

        return new SpiNandEccStatus(lo, mask, corrected);
    }

    /// <summary>Null when <paramref name="text"/> parses, else why not (for the configuration's rules).</summary>
    public static string? Problem(string text)
    {
        try
        {
            Parse(text);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// The status byte's ECC field for no errors (0), a corrected read (1: the value with the most
    /// bits) or an uncorrectable one (2: the first value not listed as corrected): for an emulated chip.
    /// </summary>
    public byte Encode(int outcome)
    {
        int value = outcome switch
        {
            0 => 0,
            1 => _corrected
                .Where(p => p.Value > 0)
                .OrderByDescending(p => p.Value)
                .Select(p => p.Key)
                .DefaultIfEmpty(0)
                .First(),
            _ => Enumerable.Range(0, _mask + 1).First(v => !_corrected.ContainsKey(v)),
        };
        return (byte)(value << _shift);
    }

    /// <summary>What a read whose final status byte was <paramref name="status"/> returned.</summary>
    public (NandStatus Status, int CorrectedBits) Decode(byte status)
    {
        int value = (status >> _shift) & _mask;
        return _corrected.TryGetValue(value, out int bits)
            ? (bits == 0 ? NandStatus.Ok : NandStatus.Corrected, bits)
            : (NandStatus.Uncorrectable, 0);
    }
}

/// <summary>
/// A SPI NAND chip as its description (hw-config/chips/*.json) gives it: all the driver needs to know of a part.
/// </summary>
public sealed record SpiNandChip
{
    /// <summary>The part number.</summary>
    public required string Name { get; init; }

    /// <summary>Manufacturer and device ID bytes, as READ ID returns them.</summary>
    public required byte[] JedecId { get; init; }

    /// <summary>What precedes the ID bytes.</summary>
    public required SpiNandIdMethod IdMethod { get; init; }

    /// <summary>Whether to set the buffer-read bit (B0h bit 3).</summary>
    public required bool BufferReadBit { get; init; }

    /// <summary>The ECC field of the status register.</summary>
    public required SpiNandEccStatus EccStatus { get; init; }

    /// <summary>Page, spare, pages per block, blocks.</summary>
    public required NandGeometry Geometry { get; init; }

    /// <summary>The chip holds an ONFI parameter page (read at page 01h with OTP_EN set).</summary>
    public bool HasParameterPage { get; init; }

    /// <summary>The chip of a resolved description; a description without a chip name is not a SPI chip.</summary>
    public static SpiNandChip FromConfig(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        string name = config.Get(FirmwareConfig.ChipName);
        byte[] id = config.Get(FirmwareConfig.ChipJedecId).Span.ToArray();
        if (name.Length == 0 || id.Length < 2)
        {
            throw new ArgumentException(
                "the configuration describes no SPI NAND chip (chip.name and chip.jedecId are not set)",
                nameof(config)
            );
        }

        return new SpiNandChip
        {
            Name = name,
            JedecId = id,
            IdMethod = Enum.Parse<SpiNandIdMethod>(config.Get(FirmwareConfig.ChipIdMethod), ignoreCase: true),
            BufferReadBit = config.Get(FirmwareConfig.ChipBufferReadBit),
            EccStatus = SpiNandEccStatus.Parse(config.Get(FirmwareConfig.ChipEccStatus)),
            Geometry = FirmwareConfig.Geometry(config),
            HasParameterPage = config.Get(FirmwareConfig.ChipParameterPage),
        };
    }
}
