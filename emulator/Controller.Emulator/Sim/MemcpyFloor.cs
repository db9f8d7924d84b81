using System.Diagnostics;
using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>
/// The memcpy floor of a run: the wall time a plain loop takes to copy the bytes the simulation
/// must copy (<see cref="SimResult.BytesCopied"/>: host data generated and moved through the cache,
/// NAND pages into and out of the array, sectors relocated by GC), in page-sized chunks between a
/// working buffer and an array as large as the emulated NAND (up to 1 GiB), at pseudo-random pages,
/// as the simulation touches its array. No simulation of any kind can go faster than this.
/// </summary>
public static class MemcpyFloor
{
    private const long MaxArrayBytes = 1L << 30;

    /// <summary>
    /// Copies <paramref name="bytes"/> in chunks of <paramref name="chunkBytes"/>; returns the seconds it took.
    /// </summary>
    public static double Measure(long bytes, int chunkBytes, long arrayBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        long chunks = Math.Max(1, Math.Min(arrayBytes, MaxArrayBytes) / chunkBytes);
        byte[] array = GC.AllocateUninitializedArray<byte>(checked((int)(chunks * chunkBytes)));
        byte[] buffer = new byte[chunkBytes];

        // Every page of the array is touched before the clock starts, as the simulation's array is
        // by the time it reaches steady state.
        array.AsSpan().Fill(0x5A);
        var prng = new Prng(0x4D454D);
        var clock = Stopwatch.StartNew();
        for (long copied = 0; copied < bytes; copied += chunkBytes)
        {
            Span<byte> page = array.AsSpan(
                checked((int)((long)prng.NextUInt64((ulong)chunks) * chunkBytes)),
                chunkBytes
            );
            if (((copied / chunkBytes) & 1) == 0)
            {
                page.CopyTo(buffer);
            }
            else
            {
                buffer.CopyTo(page);
            }
        }

        return clock.Elapsed.TotalSeconds;
    }
}
