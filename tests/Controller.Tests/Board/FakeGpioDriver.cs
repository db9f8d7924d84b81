using System.Device.Gpio;

namespace Controller.Tests.Board;

/// <summary>A GPIO driver that records pin modes and values, and can refuse one pin.</summary>
internal sealed class FakeGpioDriver : GpioDriver
{
    public Dictionary<int, PinMode> Modes { get; } = [];

    public Dictionary<int, PinValue> Values { get; } = [];

    /// <summary>A pin whose open fails as a busy line does.</summary>
    public int Refused { get; init; } = -1;

    protected override int PinCount => 28;

    protected override void OpenPin(int pinNumber)
    {
        if (pinNumber == Refused)
        {
            throw new IOException($"line {pinNumber} is busy");
        }
    }

    protected override void ClosePin(int pinNumber) { }

    protected override void SetPinMode(int pinNumber, PinMode mode) => Modes[pinNumber] = mode;

    protected override PinMode GetPinMode(int pinNumber) => Modes.GetValueOrDefault(pinNumber, PinMode.Input);

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => true;

    protected override PinValue Read(int pinNumber) => Values.GetValueOrDefault(pinNumber, PinValue.Low);

    protected override void Write(int pinNumber, PinValue value) => Values[pinNumber] = value;

    protected override WaitForEventResult WaitForEvent(
        int pinNumber,
        PinEventTypes eventTypes,
        CancellationToken cancellationToken
    ) => throw new NotSupportedException();

    /// <summary>The callbacks registered, by pin, with the edges each listens for.</summary>
    public Dictionary<int, List<(PinEventTypes Events, PinChangeEventHandler Callback)>> Callbacks { get; } = [];

    /// <summary>
    /// The pin changes as a signal on it would: its value, then the callbacks listening for that edge.
    /// </summary>
    public void Drive(int pinNumber, PinValue value)
    {
        PinValue before = Values.GetValueOrDefault(pinNumber, PinValue.High);
        Values[pinNumber] = value;
        PinEventTypes edge = value == PinValue.Low ? PinEventTypes.Falling : PinEventTypes.Rising;
        if (before == value)
        {
            return;
        }

        foreach (
            (PinEventTypes events, PinChangeEventHandler callback) in Callbacks
                .GetValueOrDefault(pinNumber, [])
                .ToList()
        )
        {
            if ((events & edge) != 0)
            {
                callback(this, new PinValueChangedEventArgs(edge, pinNumber));
            }
        }
    }

    protected override void AddCallbackForPinValueChangedEvent(
        int pinNumber,
        PinEventTypes eventTypes,
        PinChangeEventHandler callback
    )
    {
        if (!Callbacks.TryGetValue(pinNumber, out List<(PinEventTypes, PinChangeEventHandler)>? list))
        {
            Callbacks[pinNumber] = list = [];
        }

        list.Add((eventTypes, callback));
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback) =>
        Callbacks.GetValueOrDefault(pinNumber)?.RemoveAll(c => c.Callback == callback);
}
