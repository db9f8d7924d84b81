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
    /// A host command completed at <paramref name="completedAtNanoseconds"/> (firmware time); it
    /// began at <paramref name="startedAtNanoseconds"/> and arrived at the wall-clock
    /// <paramref name="arrivedTimestamp"/> (<see cref="System.Diagnostics.Stopwatch"/>).
    /// An emulated device moves its virtual time on to the completion (and, in real time, waits it out).
    /// </summary>
    void Completed(long startedAtNanoseconds, long completedAtNanoseconds, long arrivedTimestamp);

    /// <summary>No command came for a while; background work is about to run.</summary>
    void Idle();

    /// <summary>Whether <see cref="CutPower"/> can be asked for (an emulated device); checked before any connection is ended.</summary>
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
