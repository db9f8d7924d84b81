using System.Device.Gpio;
using System.Device.Spi;
using Controller.Common;
using Controller.Emulator;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;
using Controller.Hosting;
using Controller.Hosting.Recording;
using Controller.Management;

namespace Controller.Board;

/// <summary>
/// A real SPI NAND chip as a served device: the firmware's SPI NAND driver over the SPI device the
/// board opened, on the monotonic clock, WP# and HOLD# held high, the activity LED lit while the
/// NAND works and put out when the loop goes idle. Its power and faults are its own: the management
/// endpoint's power cut and fault injection are refused.
/// </summary>
internal sealed class BoardDevice : IServedDevice
{
    private readonly BoardHardware _hardware;
    private readonly ActivityLed? _led;

    private BoardDevice(
        BoardHardware hardware,
        IClock clock,
        SpiNandDevice driver,
        ActivityLed? led,
        string description,
        ulong seed
    )
    {
        _hardware = hardware;
        Driver = driver;
        Clock = clock;
        _led = led;
        Nand = led is null ? driver : new ActivityNand(driver, led);
        Description = description;
        FirmwareSeed = seed;
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IClock Clock { get; }

    /// <inheritdoc />
    public INandDevice Nand { get; }

    /// <summary>The SPI NAND driver under the activity LED.</summary>
    public SpiNandDevice Driver { get; }

    /// <inheritdoc />
    public ulong FirmwareSeed { get; }

    /// <inheritdoc />
    public bool CanCutPower => false;

    /// <summary>
    /// Opens the chip on <paramref name="hardware"/> and initialises it through the driver (reset,
    /// ID check, unlock, ECC on). A wrong ID is a <see cref="SpiNandException"/> naming both IDs.
    /// </summary>
    public static BoardDevice Open(
        ResolvedConfig config,
        BoardHardware hardware,
        TextWriter log,
        SessionRecorder? recorder = null
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(hardware);
        ActivityLed? led = null;
        try
        {
            SpiNandChip chip = SpiNandChip.FromConfig(config);
            led = ActivityLed.TryOpen(config.Get(BoardConfig.Led), log);
            // Recorded, every reading of the clock the firmware makes is an input (the driver's own,
            // inside a NAND operation, are not: the operation's outcome is recorded instead).
            IClock clock = recorder is null ? new MonotonicClock() : new RecordingClock(new MonotonicClock(), recorder);
            var driver = new SpiNandDevice(hardware.Spi, chip, clock);
            try
            {
                driver.Initialize();
            }
            catch (IOException e)
            {
                throw new BoardException(
                    $"cannot talk to the chip on {hardware.Where}: {e.Message} (run as root, or add the user to the spi group)"
                );
            }

            string powerFail = hardware.PowerFail is { } input
                ? $"; power-fail input on GPIO {input.Pin} ({config.Get(BoardConfig.PowerFailEdge)} edge)"
                : string.Empty;
            return new BoardDevice(
                hardware,
                clock,
                driver,
                led,
                $"{config.Get(BoardConfig.Name)}, SPI NAND {chip.Name} on {hardware.Where}{powerFail}",
                (ulong)config.Get(EmulatorConfig.FaultSeed)
            );
        }
        catch
        {
            led?.Dispose();
            hardware.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Lets the power-fail input's edge raise the signal in <paramref name="controller"/>: the save
    /// on hold-up energy, after which the firmware stops. What happens is told on <paramref name="log"/>.
    /// </summary>
    public void AttachPowerFail(ServedController controller, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentNullException.ThrowIfNull(log);
        if (_hardware.PowerFail is not { } input)
        {
            return;
        }

        input.Raised = () =>
            controller
                .PowerFailAsync(CancellationToken.None)
                .ContinueWith(
                    done =>
                    {
                        if (done.Exception?.InnerException is { } failure)
                        {
                            log.WriteLine($"power-fail input on GPIO {input.Pin}: the save failed: {failure.Message}");
                        }
                    },
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default
                );
    }

    /// <inheritdoc />
    public bool JumpsToEvents => false;

    /// <inheritdoc />
    public void AttachFirmwareClock(IClock firmwareClock) { }

    /// <inheritdoc />
    public void JumpTo(long nanoseconds) => throw new NotSupportedException("a board's time passes by itself");

    /// <inheritdoc />
    public void FollowWallClock(bool quiet) { }

    /// <inheritdoc />
    public void Idle() => _led?.Off();

    /// <inheritdoc />
    public int CutPower() => throw new NotSupportedException("the power of a board is cut at its plug");

    /// <inheritdoc />
    public FaultSettings SetFaults(FaultRequest request) =>
        throw new NotSupportedException(
            $"{Description}: a real chip's faults are its own; fault injection is the emulator's (board.spi emulated)"
        );

    /// <inheritdoc />
    public void Dispose()
    {
        _led?.Dispose();
        _hardware.Dispose();
    }
}

/// <summary>What the board opened: the SPI device and the GPIO pins holding WP# and HOLD# high.</summary>
internal sealed class BoardHardware : IDisposable
{
    private readonly List<IDisposable> _owned;

    public BoardHardware(SpiDevice spi, string where, IEnumerable<IDisposable> owned, PowerFailInput? powerFail = null)
    {
        Spi = spi;
        Where = where;
        PowerFail = powerFail;
        _owned = [.. owned];
    }

    /// <summary>The power-fail input, when the profile names one.</summary>
    public PowerFailInput? PowerFail { get; }

    /// <summary>
    /// Opens the GPIO controller when any pin is named: WP# and HOLD# driven high, and the power-fail
    /// input (<c>board.powerFailPin</c>) watched. Returns nulls when no pin is named.
    /// </summary>
    public static (GpioController? Gpio, PowerFailInput? PowerFail) OpenPins(
        Func<GpioController> open,
        ResolvedConfig config,
        params (string Name, int Pin)[] outputs
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        int powerFailPin = (int)config.Get(BoardConfig.PowerFailPin);
        GpioController? gpio = HoldHigh(open, [.. outputs, ("the power-fail input", powerFailPin)]);
        if (gpio is null || powerFailPin < 0)
        {
            return (gpio, null);
        }

        try
        {
            return (
                gpio,
                PowerFailInput.Open(
                    gpio,
                    powerFailPin,
                    config.Get(BoardConfig.PowerFailEdge),
                    config.Get(BoardConfig.PowerFailPull)
                )
            );
        }
        catch
        {
            gpio.Dispose();
            throw;
        }
    }

    /// <summary>The chip's SPI device.</summary>
    public SpiDevice Spi { get; }

    /// <summary>Where the chip is, for the banner (/dev/spidev0.0, an FT232H).</summary>
    public string Where { get; }

    /// <summary>
    /// Drives the pins <paramref name="pins"/> names (a pin of -1 is tied high on the board) as outputs, high.
    /// </summary>
    public static GpioController? HoldHigh(Func<GpioController> open, params (string Name, int Pin)[] pins)
    {
        ArgumentNullException.ThrowIfNull(open);
        if (pins.All(p => p.Pin < 0))
        {
            return null;
        }

        GpioController gpio;
        try
        {
            gpio = open();
        }
        catch (Exception e)
            when (e
                    is DllNotFoundException
                        or IOException
                        or UnauthorizedAccessException
                        or PlatformNotSupportedException
                        or NotSupportedException
                        or InvalidOperationException
            )
        {
            string what = string.Join(" and ", pins.Where(p => p.Pin >= 0).Select(p => $"{p.Name} (GPIO {p.Pin})"));
            throw new BoardException(
                $"cannot open the GPIO controller for {what}: {e.Message}. On a Raspberry Pi 5 install libgpiod2 (and check board.gpioChip); or tie the pins to 3.3 V and set board.writeProtectPin and board.holdPin to -1."
            );
        }

        foreach (
            (string name, int pin) in pins.Where(p =>
                p.Pin >= 0 && !p.Name.StartsWith("the power-fail", StringComparison.Ordinal)
            )
        )
        {
            try
            {
                gpio.OpenPin(pin, PinMode.Output, PinValue.High);
            }
            catch (Exception e)
            {
                gpio.Dispose();
                if (
                    e
                    is InvalidOperationException
                        or IOException
                        or ArgumentException
                        or UnauthorizedAccessException
                        or NotSupportedException
                )
                {
                    throw new BoardException($"cannot drive {name} high on GPIO {pin}: {e.Message}");
                }

                throw;
            }
        }

        return gpio;
    }

    public void Dispose()
    {
        PowerFail?.Dispose();
        Spi.Dispose();
        foreach (IDisposable owned in Enumerable.Reverse(_owned))
        {
            owned.Dispose();
        }
    }
}

/// <summary>A problem of the board or its wiring; the message says what to do.</summary>
public sealed class BoardException : Exception
{
    /// <summary>Creates the error.</summary>
    public BoardException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers.</summary>
    public BoardException() { }

    /// <summary>Required by the analyzers.</summary>
    public BoardException(string message, Exception innerException)
        : base(message, innerException) { }
}
