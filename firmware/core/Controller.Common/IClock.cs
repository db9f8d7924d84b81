namespace Controller.Common;

/// <summary>
/// The only source of time the firmware sees. In the emulator it is a virtual clock advanced by
/// the simulation; on the board it is a monotonic clock. The firmware never reads the wall clock.
/// </summary>
public interface IClock
{
    /// <summary>Nanoseconds since an arbitrary origin; never decreases.</summary>
    long NowNanoseconds { get; }

    /// <summary>
    /// Returns once the clock has reached <paramref name="nanoseconds"/> (at once if it has). This
    /// is how the firmware waits for NAND: a virtual clock jumps there, a real one waits.
    /// </summary>
    void WaitUntil(long nanoseconds);
}
