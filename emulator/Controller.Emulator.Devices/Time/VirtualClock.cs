using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Time;

/// <summary>
/// Simulated time: it moves only when the simulation moves it, so a run is the same on every
/// machine however fast the machine is.
/// </summary>
public sealed class VirtualClock : IClock
{
    /// <inheritdoc />
    public long NowNanoseconds { get; private set; }

    /// <summary>Moves time forward to <paramref name="nanoseconds"/>; moving backwards is a bug.</summary>
    public void AdvanceTo(long nanoseconds)
    {
        if (nanoseconds < NowNanoseconds)
        {
            throw new ArgumentOutOfRangeException(
                nameof(nanoseconds),
                nanoseconds,
                $"time cannot go back from {NowNanoseconds} ns"
            );
        }

        NowNanoseconds = nanoseconds;
    }

    /// <summary>
    /// Jumps to <paramref name="nanoseconds"/> if that is later than now: waiting costs no wall time.
    /// </summary>
    public void WaitUntil(long nanoseconds)
    {
        if (nanoseconds > NowNanoseconds)
        {
            NowNanoseconds = nanoseconds;
        }
    }
}
