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
/// own wait: those run alone, as on a real controller.
/// </para>
/// </summary>
public sealed class CommandClock : IClock
{
    private long _cursor;

    /// <summary>Wraps <paramref name="device"/>, the clock that moves on its own (virtual or monotonic).</summary>
    public CommandClock(IClock device)
    {
        Device = device ?? throw new ArgumentNullException(nameof(device));
    }

    /// <summary>The device's clock: the instant the loop stands at.</summary>
    public IClock Device { get; }

    /// <summary>True between <see cref="Begin"/> and <see cref="End"/>.</summary>
    public bool InCommand { get; private set; }

    /// <summary>Inside a command, its cursor; otherwise the device's time.</summary>
    public long NowNanoseconds => InCommand ? _cursor : Device.NowNanoseconds;

    /// <summary>Inside a command, moves its cursor on; otherwise waits on the device's clock.</summary>
    public void WaitUntil(long nanoseconds)
    {
        if (!InCommand)
        {
            Device.WaitUntil(nanoseconds);
        }
        else if (nanoseconds > _cursor)
        {
            _cursor = nanoseconds;
        }
    }

    /// <summary>Starts a command's timeline at the device's current instant.</summary>
    public void Begin()
    {
        if (InCommand)
        {
            throw new InvalidOperationException("a command's timeline is already open");
        }

        _cursor = Device.NowNanoseconds;
        InCommand = true;
    }

    /// <summary>Ends the command's timeline; returns the instant its work completes.</summary>
    public long End()
    {
        if (!InCommand)
        {
            throw new InvalidOperationException("no command's timeline is open");
        }

        InCommand = false;
        return _cursor;
    }
}
