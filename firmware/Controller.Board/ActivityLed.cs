using Controller.Firmware.Flash;
using Iot.Device.BoardLed;

namespace Controller.Board;

/// <summary>
/// The board's activity LED (/sys/class/leds/NAME, Iot.Device.Bindings' <see cref="BoardLed"/>):
/// lit when the NAND is worked, out when the controller loop goes idle. Only changes of state are
/// written, so a burst of operations costs one write. The LED's trigger (the kernel's own use of
/// it, mmc0 or heartbeat) is taken for the run and given back at the end.
/// </summary>
internal sealed class ActivityLed : IDisposable
{
    private readonly BoardLed _led;
    private readonly string _trigger;
    private readonly int _on;
    private bool _lit;

    private ActivityLed(BoardLed led)
    {
        _led = led;
        _trigger = led.Trigger;
        _led.Trigger = "none";
        _on = Math.Max(1, led.MaxBrightness);
        _led.Brightness = 0;
    }

    /// <summary>
    /// The first LED of <paramref name="names"/> (comma-separated: ACT,led0 covers old and new
    /// Raspberry Pi kernels) that can be driven, or null (said on <paramref name="log"/>) when none can.
    /// </summary>
    public static ActivityLed? TryOpen(string names, TextWriter log)
    {
        string[] candidates = names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var problems = new List<string>();
        foreach (string name in candidates)
        {
            BoardLed? led = null;
            try
            {
                led = new BoardLed(name);
                return new ActivityLed(led);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException || e.GetType() == typeof(Exception))
            {
                // BoardLed opens /sys/class/leds/NAME's files at once: missing, or root's only.
                led?.Dispose();
                problems.Add($"{name}: {e.Message}");
            }
        }

        if (problems.Count > 0)
        {
            string known = string.Join(", ", SafeNames());
            log.WriteLine($"ssd-board: warning: no activity LED ({string.Join("; ", problems)}); LEDs here: {(known.Length == 0 ? "none" : known)}. Serving without it.");
        }

        return null;
    }

    /// <summary>Lights the LED (NAND activity).</summary>
    public void On()
    {
        if (!_lit)
        {
            _led.Brightness = _on;
            _lit = true;
        }
    }

    /// <summary>Puts the LED out (the loop is idle).</summary>
    public void Off()
    {
        if (_lit)
        {
            _led.Brightness = 0;
            _lit = false;
        }
    }

    public void Dispose()
    {
        try
        {
            _led.Brightness = 0;
            _led.Trigger = _trigger;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The LED went away with the board's shutdown; nothing to give back.
        }

        _led.Dispose();
    }

    private static IEnumerable<string> SafeNames()
    {
        try
        {
            return [.. BoardLed.EnumerateLeds().Select(l => l.Name)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
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
