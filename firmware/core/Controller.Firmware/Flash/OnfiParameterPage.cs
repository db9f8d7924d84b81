using System.Buffers.Binary;
using System.Text;

namespace Controller.Firmware.Flash;

/// <summary>
/// The fields of an ONFI parameter page that describe a chip's geometry and maker (ONFI 1.0 layout:
/// signature at 0, manufacturer at 32, model at 44, JEDEC manufacturer ID at 64, page and spare
/// bytes at 80 and 84, pages per block at 92, blocks per LUN at 96, LUNs at 100, the most bad
/// blocks a LUN may have at 103, endurance at 105, a CRC-16 over bytes 0 to 253 at 254). A chip
/// keeps three copies; the first whose CRC holds is taken.
/// </summary>
/// <param name="Manufacturer">The maker's name, padded with spaces in the page.</param>
/// <param name="Model">The part number.</param>
/// <param name="JedecManufacturer">The JEDEC manufacturer ID (the first byte READ ID returns).</param>
/// <param name="PageBytes">Data bytes per page.</param>
/// <param name="SpareBytes">Spare bytes per page.</param>
/// <param name="PagesPerBlock">Pages per erase block.</param>
/// <param name="BlocksPerLun">Blocks per LUN.</param>
/// <param name="Luns">LUNs (dies).</param>
/// <param name="MaximumBadBlocksPerLun">The most blocks of a LUN that may be bad over its life.</param>
/// <param name="EnduranceCycles">Program/erase cycles a block is rated for.</param>
public sealed record OnfiParameterPage(
    string Manufacturer,
    string Model,
    byte JedecManufacturer,
    int PageBytes,
    int SpareBytes,
    int PagesPerBlock,
    int BlocksPerLun,
    int Luns,
    int MaximumBadBlocksPerLun,
    long EnduranceCycles
)
{
    /// <summary>Bytes of one copy.</summary>
    public const int Bytes = 256;

    /// <summary>Copies a chip keeps, one after another.</summary>
    public const int Copies = 3;

    /// <summary>
    /// The first of the <see cref="Copies"/> copies in <paramref name="copies"/> that starts with
    /// "ONFI" and whose CRC holds, and its number (0 to 2); null and -1 when none does.
    /// </summary>
    public static (OnfiParameterPage? Page, int Copy) Parse(ReadOnlySpan<byte> copies)
    {
        for (int copy = 0; copy < Copies && (copy + 1) * Bytes <= copies.Length; copy++)
        {
            ReadOnlySpan<byte> page = copies.Slice(copy * Bytes, Bytes);
            if (
                !page[..4].SequenceEqual("ONFI"u8)
                || Crc16(page[..254]) != BinaryPrimitives.ReadUInt16LittleEndian(page[254..])
            )
            {
                continue;
            }

            return (
                new OnfiParameterPage(
                    Text(page.Slice(32, 12)),
                    Text(page.Slice(44, 20)),
                    page[64],
                    (int)BinaryPrimitives.ReadUInt32LittleEndian(page[80..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(page[84..]),
                    (int)BinaryPrimitives.ReadUInt32LittleEndian(page[92..]),
                    (int)BinaryPrimitives.ReadUInt32LittleEndian(page[96..]),
                    page[100],
                    BinaryPrimitives.ReadUInt16LittleEndian(page[103..]),
                    Endurance(page[105], page[106])
                ),
                copy
            );
        }

        return (null, -1);
    }

    /// <summary>One copy of the page these fields describe, CRC included (an emulated chip's).</summary>
    public byte[] Encode()
    {
        byte[] page = new byte[Bytes];
        "ONFI"u8.CopyTo(page);
        BinaryPrimitives.WriteUInt16LittleEndian(page.AsSpan(4), 1 << 1); // ONFI 1.0
        Pad(Manufacturer, page.AsSpan(32, 12));
        Pad(Model, page.AsSpan(44, 20));
        page[64] = JedecManufacturer;
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(80), (uint)PageBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(page.AsSpan(84), (ushort)SpareBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(92), (uint)PagesPerBlock);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(96), (uint)BlocksPerLun);
        page[100] = (byte)Luns;
        page[102] = 1; // bits per cell
        BinaryPrimitives.WriteUInt16LittleEndian(page.AsSpan(103), (ushort)MaximumBadBlocksPerLun);
        (page[105], page[106]) = EnduranceBytes(EnduranceCycles);
        page[110] = 1; // programs per page
        BinaryPrimitives.WriteUInt16LittleEndian(page.AsSpan(254), Crc16(page.AsSpan(0, 254)));
        return page;
    }

    /// <summary>ONFI's CRC-16: polynomial 8005h, initial value 4F4Eh, most significant bit first.</summary>
    public static ushort Crc16(ReadOnlySpan<byte> data)
    {
        ushort crc = 0x4F4E;
        foreach (byte b in data)
        {
            crc ^= (ushort)(b << 8);
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x8005) : (ushort)(crc << 1);
            }
        }

        return crc;
    }

    /// <summary>Endurance as ONFI codes it: a value and a power of ten.</summary>
    private static long Endurance(byte value, byte exponent) =>
        exponent > 18 ? long.MaxValue : value * (long)Math.Pow(10, exponent);

    private static (byte Value, byte Exponent) EnduranceBytes(long cycles)
    {
        byte exponent = 0;
        while (cycles > 255 && cycles % 10 == 0)
        {
            cycles /= 10;
            exponent++;
        }

        return ((byte)Math.Min(cycles, 255), exponent);
    }

    private static string Text(ReadOnlySpan<byte> field) => Encoding.ASCII.GetString(field).TrimEnd(' ', '\0');

    private static void Pad(string text, Span<byte> field)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(text.AsSpan(0, Math.Min(text.Length, field.Length)), field);
    }
}
