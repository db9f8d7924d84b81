using Controller.Firmware.Flash;
using Iot.Device.BoardLed;

namespace Controller.Board;

/// <summary>An LED as the kernel shows it under /sys/class/leds: a brightness and a trigger.</summary>
internal interface ILed : IDisposable
{
    /// <summary>The brightness that is fully on.</summary>
    int MaxBrightness { get; }

    /// <summary>The brightness now (0 is off).</summary>
    int Brightness { get; set; }

    /// <summary>What the kernel drives it by (mmc0, heartbeat), or none.</summary>
    string Trigger { get; set; }
}

/// <summary>Iot.Device.Bindings' <see cref="BoardLed"/> as an <see cref="ILed"/>.</summary>
internal sealed class SysfsLed(BoardLed led) : ILed
{
    public int MaxBrightness => led.MaxBrightness;

    public int Brightness
    {
        get => led.Brightness;
        set => led.Brightness = value;
    }

    public string Trigger
    {
        get => led.Trigger;
        set => led.Trigger = value;
    }

    public void Dispose() => led.Dispose();
}

/// <summary>
/// The board's activity LED (/sys/class/leds/NAME, Iot.Device.Bindings' <see cref="BoardLed"/>):
/// lit when the NAND is worked, out when the controller loop goes idle. Only changes of state are
/// written, so a burst of operations costs one write. The LED's trigger (the kernel's own use of
/// it, mmc0 or heartbeat) is taken for the run and given back at the end. An LED that stops taking
/// writes is given up with one warning; it never stops the NAND.
/// </summary>
internal sealed class ActivityLed : IDisposable
{
    private readonly ILed _led;
    private readonly string _trigger;
    private readonly int _on;
    private readonly TextWriter _log;
    private bool _lit;
    private bool _broken;

    /// <summary>
    /// Takes <paramref name="led"/> from its trigger; if that fails the trigger is given back and the error thrown.
    /// </summary>
    public ActivityLed(ILed led, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(led);
        _led = led;
        _log = log;
        _trigger = led.Trigger;
        try
        {
            _on = Math.Max(1, led.MaxBrightness);
            _led.Trigger = "none";
            _led.Brightness = 0;
        }
        catch
        {
            TryRestore();
            throw;
        }
    }

    /// <summary>
    /// The first LED of <paramref name="names"/> (comma-separated: ACT,led0 covers old and new
    /// Raspberry Pi kernels) that can be driven, or null (said on <paramref name="log"/>) when none can.
    /// </summary>
    public static ActivityLed? TryOpen(string names, TextWriter log) =>
        TryOpen(
            names,
            log,
            name => new SysfsLed(new BoardLed(name)),
            () => BoardLed.EnumerateLeds().Select(l => l.Name)
        );

    /// <summary>
    /// As <see cref="TryOpen(string, TextWriter)"/>, with the LEDs opened by <paramref name="open"/>.
    /// </summary>
    public static ActivityLed? TryOpen(
        string names,
        TextWriter log,
        Func<string, ILed> open,
        Func<IEnumerable<string>> known
    )
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(known);
        var problems = new List<string>();
        foreach (
            string name in names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        )
        {
            ILed? led = null;
            try
            {
                led = open(name);
                return new ActivityLed(led, log);
            }
            catch (Exception e) when (IsLedError(e))
            {
                // BoardLed opens /sys/class/leds/NAME's files at once: missing, or root's only.
                led?.Dispose();
                problems.Add($"{name}: {e.Message}");
            }
        }

        if (problems.Count > 0)
        {
            string here;
            try
            {
                here = string.Join(", ", known());
            }
            catch (Exception e) when (IsLedError(e))
            {
                here = string.Empty;
            }

            log.WriteLine(
                $"ssd-board: warning: no activity LED ({string.Join("; ", problems)}); LEDs here: {(here.Length == 0 ? "none" : here)}. Serving without it."
            );
        }

        return null;
    }

    /// <summary>Lights the LED (NAND activity).</summary>
    public void On() => Set(lit: true);

    /// <summary>Puts the LED out (the loop is idle).</summary>
    public void Off() => Set(lit: false);

    public void Dispose()
    {
        if (!_broken)
        {
            TryRestore();
        }

        _led.Dispose();
    }

    private void Set(bool lit)
    {
        if (_lit == lit || _broken)
        {
            return;
        }

        try
        {
            _led.Brightness = lit ? _on : 0;
            _lit = lit;
        }
        catch (Exception e) when (IsLedError(e))
        {
            _broken = true;
            _log.WriteLine(
                $"ssd-board: warning: the activity LED stopped taking writes ({e.Message}); serving without it"
            );
        }
    }

    private void TryRestore()
    {
        try
        {
            _led.Brightness = 0;
            _led.Trigger = _trigger;
        }
        catch (Exception e) when (IsLedError(e))
        {
            // The LED went away (the board shutting down); there is nothing to give back.
        }
    }

    /// <summary>
    /// What BoardLed throws: I/O and permission errors, and a plain Exception for a trigger the kernel does not know.
    /// </summary>
    private static bool IsLedError(Exception e) =>
        e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException
        || e.GetType() == typeof(Exception);
}

/// <summary>The NAND with the activity LED lit by each operation.</summary>
internal sealed class ActivityNand(INandDevice inner, ActivityLed led) : INandDevice
{
    public NandGeometry Geometry => inner.Geometry;

    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        led.On();
        return inner.ReadPage(address, data, spare);
    }

    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        led.On();
        return inner.ProgramPage(address, data, spare);
    }

    public NandCompletion EraseBlock(int block)
    {
        led.On();
        return inner.EraseBlock(block);
    }

    public NandDieStatus GetDieStatus(int die) => inner.GetDieStatus(die);
}
