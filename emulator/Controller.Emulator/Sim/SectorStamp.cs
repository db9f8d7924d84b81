using System.Buffers.Binary;
using Controller.Firmware.Common;

namespace Controller.Emulator.Sim;

/// <summary>
/// Self-describing sector contents: the sector number and a generation, repeated through the
/// sector, and a checksum at its end, so any read can be attributed (which sector, which write)
/// and any damage seen. Generation 0 is zeros: a hole.
/// </summary>
public static class SectorStamp
{
    /// <summary>Bytes of a stamped sector.</summary>
    public const int Bytes = 4096;

    /// <summary>Fills <paramref name="buffer"/> with generation <paramref name="generation"/> of <paramref name="sector"/>.</summary>
    public static void Fill(Span<byte> buffer, long sector, int generation)
    {
        if (buffer.Length != Bytes)
        {
            throw new ArgumentException($"a stamped sector is {Bytes} bytes, not {buffer.Length}", nameof(buffer));
        }

        if (generation == 0)
        {
            buffer.Clear();
            return;
        }

        for (int offset = 0; offset < Bytes - 16; offset += 16)
        {
            BinaryPrimitives.WriteInt64LittleEndian(buffer[offset..], sector);
            BinaryPrimitives.WriteInt32LittleEndian(buffer[(offset + 8)..], generation);
            BinaryPrimitives.WriteInt32LittleEndian(buffer[(offset + 12)..], offset);
        }

        BinaryPrimitives.WriteInt64LittleEndian(buffer[(Bytes - 16)..], sector);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[(Bytes - 8)..], (uint)generation);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[(Bytes - 4)..], Crc32C.Compute(buffer[..(Bytes - 4)]));
    }

    /// <summary>What a sector holds: zeros (generation 0), an intact generation of some sector, or damage (Intact false).</summary>
    public static (bool Intact, long Sector, int Generation) Decode(ReadOnlySpan<byte> buffer)
    {
        if (!buffer.ContainsAnyExcept((byte)0))
        {
            return (true, -1, 0);
        }

        bool intact = Crc32C.Compute(buffer[..(Bytes - 4)]) == BinaryPrimitives.ReadUInt32LittleEndian(buffer[(Bytes - 4)..]);
        return (intact, BinaryPrimitives.ReadInt64LittleEndian(buffer[(Bytes - 16)..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer[(Bytes - 8)..]));
    }
}
