using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;
using Controller.Management;

namespace Controller.Hosting;

/// <summary>
/// The hardware under a served firmware: the NAND the FTL mounts, the clock that times it, and
/// what the hardware around it can do. An emulated device keeps virtual time and can lose its power
/// or take injected faults on request; a board's SPI NAND chip runs on the monotonic clock and can
/// do neither (its power is cut at the plug). The NAND, the clock and the calls of a command's
/// life are used on the controller loop's thread only; <see cref="Description"/> and
/// <see cref="CanCutPower"/> are read from any thread, and the owner disposes it after the loop has stopped.
/// </summary>
public interface IServedDevice : IDisposable
{
    /// <summary>What it is, for the server's banner and the stats (chip, board, image).</summary>
    string Description { get; }

    /// <summary>The firmware's time.</summary>
    IClock Clock { get; }

    /// <summary>The NAND the FTL mounts (a driver, or the emulated array).</summary>
    INandDevice Nand { get; }

    /// <summary>The seed of the PRNG handed to the firmware.</summary>
    ulong FirmwareSeed { get; }

    /// <summary>
    /// The firmware runs on <paramref name="firmwareClock"/> (a command's own timeline): an emulated
    /// array books its operations from it, so commands in flight together overlap on its dies. A
    /// chip behind a driver ignores it (its driver waits for it in real time).
    /// </summary>
    void AttachFirmwareClock(IClock firmwareClock);

    /// <summary>
    /// True when <see cref="Clock"/> is virtual and jumps straight to the loop's next event
    /// (<c>timing.mode=none</c>); false when time passes by itself and the loop's thread waits for
    /// it (<c>timing.mode=realtime</c>, a board).
    /// </summary>
    bool JumpsToEvents { get; }

    /// <summary>Moves virtual time on to <paramref name="nanoseconds"/> (when <see cref="JumpsToEvents"/>).</summary>
    void JumpTo(long nanoseconds);

    /// <summary>
    /// <c>timing.mode=realtime</c> on a virtual clock: moves virtual time on as much as wall time
    /// passed since the loop was last <paramref name="quiet"/> (nothing queued or in flight), so a
    /// command completes when as much wall time has passed as its flash work takes. Nothing otherwise.
    /// </summary>
    void FollowWallClock(bool quiet);

    /// <summary>No command came for a while; background work is about to run.</summary>
    void Idle();

    /// <summary>
    /// Whether <see cref="CutPower"/> can be asked for (an emulated device); checked before any connection is ended.
    /// </summary>
    bool CanCutPower { get; }

    /// <summary>
    /// Cuts the power at this instant and brings it back (operations in flight are torn), ready for
    /// the firmware to mount again. Returns how many NAND operations were torn.
    /// </summary>
    /// <exception cref="NotSupportedException">Real hardware, whose power is not the server's to cut.</exception>
    int CutPower();

    /// <summary>Changes the fault rates and arms failures of the next operations.</summary>
    /// <exception cref="NotSupportedException">Real hardware, whose faults are its own.</exception>
    FaultSettings SetFaults(FaultRequest request);
}

/// <summary>
/// The power-fail signal came: the cache was saved on hold-up energy and the firmware stopped, as the power goes.
/// </summary>
public sealed class PowerFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PowerFailedException() { }

    /// <summary>Creates the exception with a message.</summary>
    public PowerFailedException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public PowerFailedException(string message, Exception innerException)
        : base(message, innerException) { }
}
