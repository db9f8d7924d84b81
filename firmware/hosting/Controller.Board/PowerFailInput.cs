using System.Device.Gpio;

namespace Controller.Board;

/// <summary>
/// The power-fail signal on a GPIO input (<c>board.powerFailPin</c>), as a supercapacitor
/// monitor's power-good output drives it: on its edge (<c>board.powerFailEdge</c>, with the bias
/// <c>board.powerFailPull</c>) <see cref="Raised"/> is called once, from the GPIO driver's thread.
/// A second edge (a glitch, the signal bouncing) is ignored: the save has started.
/// </summary>
internal sealed class PowerFailInput : IDisposable
{
    private readonly GpioController _gpio;
    private readonly int _pin;
    private int _raised;

    private PowerFailInput(GpioController gpio, int pin)
    {
        _gpio = gpio;
        _pin = pin;
    }

    /// <summary>The pin, for the banner.</summary>
    public int Pin => _pin;

    /// <summary>Called once, on the first edge; set before the edge can matter (the controller exists).</summary>
    public Action? Raised { get; set; }

    /// <summary>
    /// Opens <paramref name="pin"/> as an input with <paramref name="pull"/> (up, down, none) and listens for
    /// <paramref name="edge"/> (falling, rising).
    /// </summary>
    /// <exception cref="BoardException">The pin cannot be opened or watched; the message names it.</exception>
    public static PowerFailInput Open(GpioController gpio, int pin, string edge, string pull)
    {
        ArgumentNullException.ThrowIfNull(gpio);
        PinMode mode = pull switch
        {
            "up" => PinMode.InputPullUp,
            "down" => PinMode.InputPullDown,
            _ => PinMode.Input,
        };
        PinEventTypes events = edge == "rising" ? PinEventTypes.Rising : PinEventTypes.Falling;
        var input = new PowerFailInput(gpio, pin);
        try
        {
            gpio.OpenPin(pin, mode);
            gpio.RegisterCallbackForPinValueChangedEvent(pin, events, input.OnEdge);
        }
        catch (Exception e)
            when (e
                    is InvalidOperationException
                        or IOException
                        or ArgumentException
                        or UnauthorizedAccessException
                        or NotSupportedException
                        or PlatformNotSupportedException
            )
        {
            throw new BoardException(
                $"cannot watch the power-fail input on GPIO {pin} ({edge} edge, pull {pull}): {e.Message}"
            );
        }

        return input;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            _gpio.UnregisterCallbackForPinValueChangedEvent(_pin, OnEdge);
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or ObjectDisposedException)
        {
            // The controller went first.
        }
    }

    private void OnEdge(object sender, PinValueChangedEventArgs args)
    {
        if (Interlocked.Exchange(ref _raised, 1) == 0)
        {
            Raised?.Invoke();
        }
    }
}
