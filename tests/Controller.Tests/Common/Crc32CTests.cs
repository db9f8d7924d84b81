using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Tests.Common;

[Trait("Category", "Unit")]
public sealed class Crc32CTests
{
    [Fact]
    public void TheCheckValueOfTheStandardIsMet()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void EveryLengthAndAlignmentAgreesWithTheBitwiseDefinition()
    {
        // The interleaved lanes start at 1536 bytes: lengths around their multiples, at odd offsets,
        // and split across Append calls, must all equal the one-bit-at-a-time definition.
        var prng = new Prng(7);
        byte[] data = new byte[20_000];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)prng.NextInt(256);
        }

        int[] lengths = [0, 1, 7, 8, 9, 511, 1535, 1536, 1537, 3071, 3072, 3080, 4096, 4608, 16384, 16384 + 17];
        foreach (int length in lengths)
        {
            foreach (int offset in new[] { 0, 1, 3 })
            {
                ReadOnlySpan<byte> span = data.AsSpan(offset, length);
                uint expected = Bitwise(span);
                Assert.True(expected == Crc32C.Compute(span), $"length {length} at offset {offset}");
                int split = length / 3;
                Assert.True(
                    expected == Crc32C.Append(Crc32C.Compute(span[..split]), span[split..]),
                    $"length {length} split at {split}"
                );
            }
        }
    }

    private static uint Bitwise(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
        }

        return ~crc;
    }
}
