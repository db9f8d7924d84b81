using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Controller.Common;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of page metadata and image headers. Uses the CPU's CRC
/// instructions where they exist (SSE4.2 on x86, the CRC extension on ARMv8) and a table otherwise.
/// A page is checksummed in three interleaved lanes: the instruction's latency is three times its
/// throughput, so three independent chains run three times as fast as one, and the lanes are
/// joined by multiplying the earlier ones by x^(8 * lane bytes) modulo the polynomial.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78; // reflected 0x1EDC6F41
    private const int Lane = 512;
    private static readonly uint[] s_table = BuildTable();
    private static readonly uint[] s_shiftOneLane = ShiftTable(8 * Lane);
    private static readonly uint[] s_shiftTwoLanes = ShiftTable(16 * Lane);

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Continues <paramref name="crc"/> (a previous result) over <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        if (Sse42.X64.IsSupported || Crc32.Arm64.IsSupported)
        {
            ref byte start = ref MemoryMarshal.GetReference(data);
            int offset = 0;
            for (; data.Length - offset >= 3 * Lane; offset += 3 * Lane)
            {
                uint first = state;
                uint second = 0;
                uint third = 0;
                for (int i = offset; i < offset + Lane; i += 8)
                {
                    first = Step(first, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
                    second = Step(second, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + Lane)));
                    third = Step(third, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + (2 * Lane))));
                }

                state = Shift(s_shiftTwoLanes, first) ^ Shift(s_shiftOneLane, second) ^ third;
            }

            for (; data.Length - offset >= 8; offset += 8)
            {
                state = Step(state, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, offset)));
            }

            data = data[offset..];
        }

        foreach (byte b in data)
        {
            state = s_table[(state ^ b) & 0xFF] ^ (state >> 8);
        }

        return ~state;
    }

    /// <summary>One 8-byte step of the raw CRC register (little-endian data, as both CPUs read it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Step(uint state, ulong data) =>
        Sse42.X64.IsSupported ? (uint)Sse42.X64.Crc32(state, data) : Crc32.Arm64.ComputeCrc32C(state, data);

    /// <summary>
    /// The raw register <paramref name="state"/> times the table's power of x, modulo the polynomial.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Shift(uint[] table, uint state) =>
        table[state & 0xFF]
        ^ table[256 + ((state >> 8) & 0xFF)]
        ^ table[512 + ((state >> 16) & 0xFF)]
        ^ table[768 + (state >> 24)];

    /// <summary>Multiplication by x^<paramref name="bits"/> mod P as four byte-indexed tables (it is linear).</summary>
    private static uint[] ShiftTable(int bits)
    {
        uint power = 0x80000000; // x^0, reflected
        for (int i = 0; i < bits; i++)
        {
            power = (power & 1) != 0 ? (power >> 1) ^ Polynomial : power >> 1;
        }

        var table = new uint[4 * 256];
        for (int lane = 0; lane < 4; lane++)
        {
            for (uint b = 0; b < 256; b++)
            {
                table[(lane * 256) + (int)b] = MultiplyModP(power, b << (8 * lane));
            }
        }

        return table;
    }

    /// <summary>a * b modulo P, both reflected; <paramref name="a"/> is not zero.</summary>
    private static uint MultiplyModP(uint a, uint b)
    {
        uint product = 0;
        for (uint bit = 1u << 31; bit != 0; bit >>= 1)
        {
            if ((a & bit) != 0)
            {
                product ^= b;
            }

            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }

        return product;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int bit = 0; bit < 8; bit++)
            {
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
