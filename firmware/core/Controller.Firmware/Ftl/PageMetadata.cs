using System.Buffers.Binary;
using Controller.Common;

namespace Controller.Firmware.Ftl;

/// <summary>What a write unit holds.</summary>
public enum UnitKind : byte
{
    /// <summary>The format record and the pointer to the newest checkpoint.</summary>
    Superblock = 1,

    /// <summary>Host data or data relocated by garbage collection.</summary>
    Data = 2,

    /// <summary>Records made durable between checkpoints: trims and retired blocks.</summary>
    Journal = 3,

    /// <summary>A part of a checkpoint of the map and block table.</summary>
    Checkpoint = 4,
}

/// <summary>
/// The metadata every programmed page carries in its spare area (from byte 2; bytes 0 and 1 stay
/// FFh for the bad-block marker):
/// <code>
/// 'F' 'T' | kind | page in unit | sequence (8) | block erase count (4) | aux (4) | sector of each slot (4 each) |
/// CRC-32C (4)
/// </code>
/// The CRC covers the page's data and the metadata before it, so a torn program, a page of
/// another unit or bits flipped past ECC are all caught.
/// </summary>
public readonly record struct PageMetadata(UnitKind Kind, byte PageInUnit, ulong Sequence, uint EraseCount, uint Aux)
{
    /// <summary>The slot value of a slot that holds no sector (padding).</summary>
    public const uint EmptySlot = uint.MaxValue;

    private const byte Magic0 = (byte)'F';
    private const byte Magic1 = (byte)'T';
    private const int FixedBytes = 20;

    /// <summary>Bytes of metadata for a unit of <paramref name="sectorsPerUnit"/> sectors.</summary>
    public static int Size(int sectorsPerUnit) => FixedBytes + (4 * sectorsPerUnit) + 4;

    /// <summary>Fills <paramref name="spare"/>: FFh everywhere, then this metadata and its CRC at byte 2.</summary>
    public void Write(Span<byte> spare, ReadOnlySpan<uint> slots, ReadOnlySpan<byte> pageData)
    {
        spare.Fill(0xFF);
        Span<byte> meta = spare.Slice(FtlLayout.SpareMetadataOffset, Size(slots.Length));
        meta[0] = Magic0;
        meta[1] = Magic1;
        meta[2] = (byte)Kind;
        meta[3] = PageInUnit;
        BinaryPrimitives.WriteUInt64LittleEndian(meta[4..], Sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(meta[12..], EraseCount);
        BinaryPrimitives.WriteUInt32LittleEndian(meta[16..], Aux);
        for (int i = 0; i < slots.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(meta[(FixedBytes + (4 * i))..], slots[i]);
        }

        int covered = FixedBytes + (4 * slots.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(
            meta[covered..],
            Crc32C.Append(Crc32C.Compute(pageData), meta[..covered])
        );
    }

    /// <summary>
    /// Reads the metadata of a page and checks its CRC against the page's data. False when the
    /// page is not the FTL's or is damaged; <paramref name="slots"/> then holds nothing useful.
    /// </summary>
    public static bool TryRead(
        ReadOnlySpan<byte> spare,
        ReadOnlySpan<byte> pageData,
        Span<uint> slots,
        out PageMetadata metadata
    )
    {
        metadata = default;
        ReadOnlySpan<byte> meta = spare[FtlLayout.SpareMetadataOffset..];
        if (meta.Length < Size(slots.Length) || !HasMagic(spare))
        {
            return false;
        }

        int covered = FixedBytes + (4 * slots.Length);
        uint crc = Crc32C.Append(Crc32C.Compute(pageData), meta[..covered]);
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(meta[covered..]))
        {
            return false;
        }

        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = BinaryPrimitives.ReadUInt32LittleEndian(meta[(FixedBytes + (4 * i))..]);
        }

        metadata = new PageMetadata(
            (UnitKind)meta[2],
            meta[3],
            BinaryPrimitives.ReadUInt64LittleEndian(meta[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(meta[12..]),
            BinaryPrimitives.ReadUInt32LittleEndian(meta[16..])
        );
        return true;
    }

    /// <summary>True when the spare area starts with the FTL's magic (whether or not the page is intact).</summary>
    public static bool HasMagic(ReadOnlySpan<byte> spare) =>
        spare.Length > FtlLayout.SpareMetadataOffset + 1
        && spare[FtlLayout.SpareMetadataOffset] == Magic0
        && spare[FtlLayout.SpareMetadataOffset + 1] == Magic1;
}
