using System.Buffers.Binary;
using Controller.Common;

namespace Controller.Host.Verify;

/// <summary>What one 512-byte unit of a verify block holds, as read back.</summary>
internal enum UnitState
{
    /// <summary>All zeros: trimmed, zeroed or never written.</summary>
    Zero,

    /// <summary>An intact stamp (its checksum holds).</summary>
    Stamped,

    /// <summary>Neither: bits that no write of this run produced whole.</summary>
    Corrupt,
}

/// <summary>
/// The self-describing data verify writes: every 512-byte unit carries a magic, its own byte
/// offset, the generation (the operation that wrote it), the run's seed, a fill derived from
/// those, and a CRC-32C of it all. A unit read back says which write it came from, or that it is
/// zeros, or that it is neither.
/// </summary>
internal static class VerifyStamp
{
    /// <summary>Bytes per stamped unit.</summary>
    public const int UnitBytes = 512;

    private const ulong Magic = 0x5353_4448_5646_5931; // "SSDHVFY1"

    /// <summary>
    /// Fills <paramref name="block"/> (whole units) as written at <paramref name="offset"/> by generation
    /// <paramref name="generation"/> of the run <paramref name="seed"/>.
    /// </summary>
    public static void Fill(Span<byte> block, long offset, long generation, ulong seed)
    {
        for (int at = 0; at < block.Length; at += UnitBytes)
        {
            Span<byte> unit = block.Slice(at, UnitBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(unit, Magic);
            BinaryPrimitives.WriteInt64LittleEndian(unit[8..], offset + at);
            BinaryPrimitives.WriteInt64LittleEndian(unit[16..], generation);
            BinaryPrimitives.WriteUInt64LittleEndian(unit[24..], seed);
            ulong state = seed ^ ((ulong)(offset + at) * 0x9E3779B97F4A7C15) ^ ((ulong)generation * 0xC2B2AE3D27D4EB4F);
            for (int i = 32; i + 8 <= UnitBytes - 4; i += 8)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(unit[i..], SplitMix(ref state));
            }

            BinaryPrimitives.WriteUInt32LittleEndian(unit[(UnitBytes - 4)..], Crc32C.Compute(unit[..(UnitBytes - 4)]));
        }
    }

    /// <summary>Reads one unit back: its state and, when stamped, the offset, generation and seed it names.</summary>
    public static (UnitState State, long Offset, long Generation, ulong Seed) Decode(ReadOnlySpan<byte> unit)
    {
        if (!unit.ContainsAnyExcept((byte)0))
        {
            return (UnitState.Zero, 0, 0, 0);
        }

        if (
            BinaryPrimitives.ReadUInt64LittleEndian(unit) != Magic
            || BinaryPrimitives.ReadUInt32LittleEndian(unit[(UnitBytes - 4)..])
                != Crc32C.Compute(unit[..(UnitBytes - 4)])
        )
        {
            return (UnitState.Corrupt, 0, 0, 0);
        }

        return (
            UnitState.Stamped,
            BinaryPrimitives.ReadInt64LittleEndian(unit[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(unit[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(unit[24..])
        );
    }

    private static ulong SplitMix(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
