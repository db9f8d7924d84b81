using System.Diagnostics;
using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Hosting;

/// <summary>
/// The board's time: the monotonic clock (never the time of day), from zero at start. Waits shorter
/// than the OS timer's grain (a SPI NAND status poll is microseconds) spin; longer ones sleep.
/// </summary>
public sealed class MonotonicClock : IClock
{
    private readonly long _origin = Stopwatch.GetTimestamp();

    /// <inheritdoc />
    public long NowNanoseconds => (long)((Stopwatch.GetTimestamp() - _origin) * (1e9 / Stopwatch.Frequency));

    /// <inheritdoc />
    public void WaitUntil(long nanoseconds)
    {
        var spin = default(SpinWait);
        for (long left = nanoseconds - NowNanoseconds; left > 0; left = nanoseconds - NowNanoseconds)
        {
            if (left > 2_000_000)
            {
                Thread.Sleep(TimeSpan.FromTicks((left - 1_000_000) / 100));
            }
            else
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }
}
