using System.Buffers.Binary;
using Controller.Common;

namespace Controller.Firmware.Ftl;

/// <summary>
/// A checkpoint: the map and the block table at one instant, as bytes.
/// <code>
/// header: "CKPT" | version (4) | sequence (8) | logical sectors (8) | blocks (4) | streams (4) | body bytes (8) | body
/// CRC-32C (4) body: map (4 per logical sector) | per block: erase count (4), state (1), use (1), 2 spare | per stream:
/// block (4), next unit (4)
/// </code>
/// </summary>
internal static class CheckpointCodec
{
    public const int HeaderBytes = 44;
    private const uint Magic = 0x54504B43; // "CKPT"
    private const uint Version = 1;

    /// <summary>
    /// The largest checkpoint of <paramref name="layout"/>: a map entry for every physical sector bounds the logical
    /// ones.
    /// </summary>
    public static long MaxBytes(FtlLayout layout) =>
        HeaderBytes + (4 * layout.PhysicalSectors) + (8L * layout.Nand.Blocks) + (8L * (layout.Nand.Dies + 2));

    /// <summary>Serializes a checkpoint.</summary>
    public static byte[] Encode(
        ulong sequence,
        ReadOnlySpan<uint> map,
        ReadOnlySpan<uint> eraseCounts,
        ReadOnlySpan<BlockState> states,
        ReadOnlySpan<BlockUse> uses,
        ReadOnlySpan<(int Block, int NextUnit)> streams
    )
    {
        long bodyBytes = (4L * map.Length) + (8L * eraseCounts.Length) + (8L * streams.Length);
        byte[] bytes = new byte[HeaderBytes + bodyBytes];
        Span<byte> body = bytes.AsSpan(HeaderBytes);
        int offset = 0;
        foreach (uint entry in map)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(body[offset..], entry);
            offset += 4;
        }

        for (int block = 0; block < eraseCounts.Length; block++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(body[offset..], eraseCounts[block]);
            body[offset + 4] = (byte)states[block];
            body[offset + 5] = (byte)uses[block];
            offset += 8;
        }

        foreach ((int block, int nextUnit) in streams)
        {
            BinaryPrimitives.WriteInt32LittleEndian(body[offset..], block);
            BinaryPrimitives.WriteInt32LittleEndian(body[(offset + 4)..], nextUnit);
            offset += 8;
        }

        Span<byte> header = bytes.AsSpan(0, HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], map.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header[24..], eraseCounts.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header[28..], streams.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], bodyBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(header[40..], Crc32C.Compute(body));
        return bytes;
    }

    /// <summary>
    /// Total bytes of the checkpoint whose header starts <paramref name="header"/>, or -1 if it is not one.
    /// </summary>
    public static long TotalBytes(ReadOnlySpan<byte> header) =>
        header.Length >= HeaderBytes
        && BinaryPrimitives.ReadUInt32LittleEndian(header) == Magic
        && BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) == Version
            ? HeaderBytes + BinaryPrimitives.ReadInt64LittleEndian(header[32..])
            : -1;

    /// <summary>Decodes a whole checkpoint; null when it is damaged or does not fit the device.</summary>
    public static Checkpoint? Decode(ReadOnlySpan<byte> bytes, long logicalSectors, int blocks, int streams)
    {
        if (TotalBytes(bytes) != bytes.Length)
        {
            return null;
        }

        ReadOnlySpan<byte> header = bytes[..HeaderBytes];
        ReadOnlySpan<byte> body = bytes[HeaderBytes..];
        if (
            BinaryPrimitives.ReadInt64LittleEndian(header[16..]) != logicalSectors
            || BinaryPrimitives.ReadInt32LittleEndian(header[24..]) != blocks
            || BinaryPrimitives.ReadInt32LittleEndian(header[28..]) != streams
            || Crc32C.Compute(body) != BinaryPrimitives.ReadUInt32LittleEndian(header[40..])
        )
        {
            return null;
        }

        var checkpoint = new Checkpoint(
            BinaryPrimitives.ReadUInt64LittleEndian(header[8..]),
            new uint[logicalSectors],
            new uint[blocks],
            new BlockState[blocks],
            new BlockUse[blocks],
            new (int, int)[streams]
        );
        int offset = 0;
        for (long i = 0; i < logicalSectors; i++)
        {
            checkpoint.Map[i] = BinaryPrimitives.ReadUInt32LittleEndian(body[offset..]);
            offset += 4;
        }

        for (int block = 0; block < blocks; block++)
        {
            checkpoint.EraseCounts[block] = BinaryPrimitives.ReadUInt32LittleEndian(body[offset..]);
            checkpoint.States[block] = (BlockState)body[offset + 4];
            checkpoint.Uses[block] = (BlockUse)body[offset + 5];
            offset += 8;
        }

        for (int stream = 0; stream < streams; stream++)
        {
            checkpoint.Streams[stream] = (
                BinaryPrimitives.ReadInt32LittleEndian(body[offset..]),
                BinaryPrimitives.ReadInt32LittleEndian(body[(offset + 4)..])
            );
            offset += 8;
        }

        return checkpoint;
    }
}

/// <summary>A decoded checkpoint.</summary>
internal sealed record Checkpoint(
    ulong Sequence,
    uint[] Map,
    uint[] EraseCounts,
    BlockState[] States,
    BlockUse[] Uses,
    (int Block, int NextUnit)[] Streams
);

/// <summary>What the FTL is doing with a block.</summary>
public enum BlockState : byte
{
    /// <summary>Holds nothing the FTL needs; erased before it is written.</summary>
    Free = 0,

    /// <summary>Being written by a stream.</summary>
    Open = 1,

    /// <summary>Fully written; holds valid data or metadata.</summary>
    Closed = 2,

    /// <summary>Its valid data has been relocated; it becomes free once the relocations are durable.</summary>
    Releasing = 3,

    /// <summary>Holds a superblock.</summary>
    Superblock = 4,

    /// <summary>Marked bad at the factory or retired after a failure; never written again.</summary>
    Bad = 5,
}

/// <summary>What a block written by the FTL holds.</summary>
public enum BlockUse : byte
{
    /// <summary>Nothing yet.</summary>
    None = 0,

    /// <summary>Data written by the host (hot).</summary>
    HostData = 1,

    /// <summary>Data relocated by garbage collection or wear levelling (cold).</summary>
    ColdData = 2,

    /// <summary>Journal units and checkpoint parts.</summary>
    Metadata = 3,
}
