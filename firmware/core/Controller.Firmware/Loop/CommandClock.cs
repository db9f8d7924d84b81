using Controller.Common;

namespace Controller.Firmware.Loop;

/// <summary>
/// The clock the firmware (FTL, cache, NAND driver) sees: the device's clock between commands, and
/// inside a command that command's own timeline. A command starts at the device's current instant;
/// each wait for the flash moves only the command's cursor, not the device's time, so the next
/// command starts at the same device instant and its NAND operations overlap the first one's on
/// other dies (or queue behind them on the same die: the NAND books every operation from the
/// instant it is issued, behind what the die already has). The loop completes a command when the
/// device's time reaches its cursor.
/// <para>
/// Outside a command (mount, recovery, shutdown, a power-fail save) a wait is the device clock's
/// own wait: those run alone, as on a real controller. So is a wait of a command that runs alone
/// (nothing else queued or in flight): nothing can happen before its cursor, so the device's time
/// moves with it, and operations it issued finish in the device's time as it goes (the emulated
/// NAND then forgets them and their undo copies, instead of keeping them to the end of the command).
/// </para>
/// </summary>
public sealed class CommandClock : IClock
{
    private readonly bool _advanceAlone;
    private long _cursor;

    /// <summary>
    /// Wraps <paramref name="device"/>, the device's clock (virtual or monotonic).
    /// <paramref name="advanceAlone"/>: a command that runs alone moves the device's time with its
    /// waits (a virtual clock that jumps to events); false where the device's time must follow the
    /// wall clock instead (real time, a board), so that the loop waits for the completion.
    /// </summary>
    public CommandClock(IClock device, bool advanceAlone = true)
    {
        Device = device ?? throw new ArgumentNullException(nameof(device));
        _advanceAlone = advanceAlone;
    }

    /// <summary>The device's clock: the instant the loop stands at.</summary>
    public IClock Device { get; }

    /// <summary>True between <see cref="Begin"/> and <see cref="End"/>.</summary>
    public bool InCommand { get; private set; }

    /// <summary>Inside a command, its cursor; otherwise the device's time.</summary>
    public long NowNanoseconds => InCommand ? _cursor : Device.NowNanoseconds;

    /// <summary>
    /// True inside a command that runs alone (where that moves the device's time): its waits are the device clock's
    /// too.
    /// </summary>
    public bool Alone { get; private set; }

    /// <summary>
    /// Inside a command, moves its cursor on (and the device's time, if it runs alone); otherwise waits on the device's
    /// clock.
    /// </summary>
    public void WaitUntil(long nanoseconds)
    {
        if (!InCommand || Alone)
        {
            Device.WaitUntil(nanoseconds);
        }

        if (InCommand && nanoseconds > _cursor)
        {
            _cursor = nanoseconds;
        }
    }

    /// <summary>
    /// Starts a command's timeline at the device's current instant; <paramref name="alone"/> when
    /// nothing else is queued or in flight.
    /// </summary>
    public void Begin(bool alone = false)
    {
        if (InCommand)
        {
            throw new InvalidOperationException("a command's timeline is already open");
        }

        _cursor = Device.NowNanoseconds;
        InCommand = true;
        Alone = alone && _advanceAlone;
    }

    /// <summary>Ends the command's timeline; returns the instant its work completes.</summary>
    public long End()
    {
        if (!InCommand)
        {
            throw new InvalidOperationException("no command's timeline is open");
        }

        InCommand = false;
        Alone = false;
        return _cursor;
    }
}
