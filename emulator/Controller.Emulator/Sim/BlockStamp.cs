using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Controller.Common;

namespace Controller.Emulator.Sim;

/// <summary>
/// The contents the simulation writes: every 512-byte logical block carries its own address, the
/// id of the operation that wrote it and a checksum of both, in a 16-byte header repeated through
/// the block. Any block read back can be attributed (which address, which operation) and any
/// damage seen: a torn program, a bit flip the ECC missed, a block written to the wrong place.
/// Zeros are the contents of a block never written, trimmed or zeroed (operation id 0).
/// </summary>
public static class BlockStamp
{
    /// <summary>Bytes of a logical block.</summary>
    public const int Bytes = 512;

    private const int HeaderBytes = 16;

    /// <summary>What a block read back holds.</summary>
    public enum Kind
    {
        /// <summary>All zeros: never written, trimmed or zeroed.</summary>
        Zeros,

        /// <summary>
        /// An intact stamp: <see cref="Decoded.Address"/> and <see cref="Decoded.Operation"/> are valid.
        /// </summary>
        Stamp,

        /// <summary>Neither zeros nor an intact stamp.</summary>
        Damaged,
    }

    /// <summary>A decoded block.</summary>
    /// <param name="What">Zeros, a stamp, or damage.</param>
    /// <param name="Address">The block address the stamp names.</param>
    /// <param name="Operation">The operation id the stamp names (0 for zeros).</param>
    public readonly record struct Decoded(Kind What, long Address, uint Operation);

    /// <summary>
    /// Fills <paramref name="block"/> (512 bytes) with the stamp of <paramref name="operation"/> at
    /// <paramref name="address"/>.
    /// </summary>
    public static void Fill(Span<byte> block, long address, uint operation)
    {
        if (block.Length != Bytes)
        {
            throw new ArgumentException($"a block is {Bytes} bytes, not {block.Length}", nameof(block));
        }

        if (operation == 0)
        {
            block.Clear();
            return;
        }

        Vector128<byte> header = Header(address, operation);
        ref byte start = ref MemoryMarshal.GetReference(block);
        for (int offset = 0; offset < Bytes; offset += HeaderBytes)
        {
            header.StoreUnsafe(ref start, (nuint)offset);
        }
    }

    /// <summary>
    /// Fills every block of <paramref name="data"/> with the stamps of <paramref name="operation"/>, from block
    /// <paramref name="firstAddress"/> on.
    /// </summary>
    public static void FillRange(Span<byte> data, long firstAddress, uint operation)
    {
        for (int block = 0; block < data.Length / Bytes; block++)
        {
            Fill(data.Slice(block * Bytes, Bytes), firstAddress + block, operation);
        }
    }

    /// <summary>
    /// True when <paramref name="block"/> holds exactly the stamp of <paramref name="operation"/> at
    /// <paramref name="address"/> (zeros for operation 0).
    /// </summary>
    public static bool Matches(ReadOnlySpan<byte> block, long address, uint operation)
    {
        if (operation == 0)
        {
            return !block.ContainsAnyExcept((byte)0);
        }

        Vector128<byte> header = Header(address, operation);
        ref byte start = ref MemoryMarshal.GetReference(block);
        Vector128<byte> difference = Vector128<byte>.Zero;
        for (int offset = 0; offset < Bytes; offset += HeaderBytes)
        {
            difference |= Vector128.LoadUnsafe(ref start, (nuint)offset) ^ header;
        }

        return difference == Vector128<byte>.Zero;
    }

    /// <summary>What a 512-byte block read back holds.</summary>
    public static Decoded Decode(ReadOnlySpan<byte> block)
    {
        if (!block.ContainsAnyExcept((byte)0))
        {
            return new Decoded(Kind.Zeros, -1, 0);
        }

        long address = BinaryPrimitives.ReadInt64LittleEndian(block);
        uint operation = BinaryPrimitives.ReadUInt32LittleEndian(block[8..]);
        return operation != 0 && Matches(block, address, operation)
            ? new Decoded(Kind.Stamp, address, operation)
            : new Decoded(Kind.Damaged, -1, 0);
    }

    private static Vector128<byte> Header(long address, uint operation)
    {
        Span<byte> header = stackalloc byte[HeaderBytes];
        BinaryPrimitives.WriteInt64LittleEndian(header, address);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], operation);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Crc32C.Compute(header[..12]));
        return Vector128.Create<byte>(header);
    }
}
