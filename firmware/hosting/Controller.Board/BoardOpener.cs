using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using System.Device.Spi;
using Controller.Firmware.Config;
using Iot.Device.Board;
using Iot.Device.Ft232H;

namespace Controller.Board;

/// <summary>What the board image asks of the machine it runs on, so the checks can be tested off a board.</summary>
internal interface IBoardEnvironment
{
    /// <summary>What board this is (Iot.Device.Board's detection), for messages.</summary>
    string BoardName { get; }

    /// <summary>Whether it is a Raspberry Pi.</summary>
    bool IsRaspberryPi { get; }

    /// <summary>On a Raspberry Pi: whether SPI0 is enabled (dtparam=spi=on); null when it cannot be told.</summary>
    bool? IsSpiActivated { get; }

    /// <summary>Whether a device node exists.</summary>
    bool Exists(string path);
}

/// <summary>The machine as Iot.Device.Board sees it.</summary>
internal sealed class MachineEnvironment : IBoardEnvironment
{
    private MachineEnvironment(string name, bool isPi, bool? spi)
    {
        BoardName = name;
        IsRaspberryPi = isPi;
        IsSpiActivated = spi;
    }

    public string BoardName { get; }

    public bool IsRaspberryPi { get; }

    public bool? IsSpiActivated { get; }

    /// <summary>
    /// Detects the board once. Iot.Device.Board's <c>Board.Create</c> knows the Raspberry Pi 3 and 4
    /// (a <see cref="RaspberryPiBoard"/>) but gives a Pi 5 a generic board, so the device tree's
    /// model names the Pi too. Whether SPI is on is <see cref="RaspberryPiBoard.IsSpiActivated"/>,
    /// which reads config.txt and works on every Pi.
    /// </summary>
    public static MachineEnvironment Detect()
    {
        string model = ReadModel();
        Iot.Device.Board.Board? board = null;
        try
        {
            board = Iot.Device.Board.Board.Create();
        }
        catch (Exception e)
            when (e
                    is PlatformNotSupportedException
                        or NotSupportedException
                        or IOException
                        or UnauthorizedAccessException
            )
        {
            // No driver for this machine: it is not a Raspberry Pi; the device node decides.
        }

        try
        {
            bool isPi = board is RaspberryPiBoard || model.StartsWith("Raspberry Pi", StringComparison.Ordinal);
            if (!isPi)
            {
                return new MachineEnvironment(
                    model.Length > 0
                        ? $"{board?.GetType().Name ?? "no board"}, {model}"
                        : board?.GetType().Name ?? "no board",
                    false,
                    null
                );
            }

            using RaspberryPiBoard? own = board is RaspberryPiBoard ? null : new RaspberryPiBoard();
            RaspberryPiBoard pi = board as RaspberryPiBoard ?? own!;
            bool? spi;
            try
            {
                spi = pi.IsSpiActivated();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                spi = null; // config.txt unreadable: the device node tells instead
            }

            return new MachineEnvironment(model.Length > 0 ? model : "a Raspberry Pi", true, spi);
        }
        finally
        {
            board?.Dispose();
        }
    }

    private static string ReadModel()
    {
        try
        {
            return File.Exists("/proc/device-tree/model")
                ? File.ReadAllText("/proc/device-tree/model").TrimEnd('\0', '\n')
                : string.Empty;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    public bool Exists(string path) => File.Exists(path);
}

/// <summary>
/// Opens the SPI device and GPIO a board profile describes, with messages that say what to do when they are missing.
/// </summary>
internal static class BoardOpener
{
    /// <summary>The instructions printed when a Raspberry Pi's SPI is off.</summary>
    public const string EnableSpi = """
        SPI is not enabled on this Raspberry Pi. Enable it, then reboot:
          sudo raspi-config nonint do_spi 0
        or add this line to /boot/firmware/config.txt (see hw-config/raspberrypi/config.txt):
          dtparam=spi=on
        After the reboot /dev/spidev0.0 exists and ssd-board can open the chip.
        """;

    /// <summary>The Linux device node of the profile's SPI bus and chip select.</summary>
    public static string SpidevPath(ResolvedConfig config) =>
        $"/dev/spidev{config.Get(BoardConfig.SpiBus)}.{config.Get(BoardConfig.ChipSelect)}";

    /// <summary>
    /// Why a spidev profile cannot open its chip here, or null when it can try. The device node
    /// decides; config.txt (<see cref="IBoardEnvironment.IsSpiActivated"/>) says what to do about it.
    /// </summary>
    public static string? SpidevProblem(ResolvedConfig config, IBoardEnvironment machine)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(machine);
        string node = SpidevPath(config);
        if (machine.Exists(node))
        {
            return null;
        }

        if (!machine.IsRaspberryPi)
        {
            return $"{node} does not exist: this is not a Raspberry Pi (Iot.Device.Board found {machine.BoardName}). On a PC, wire the chip to an FT232H and use hw-config/boards/ft232h.json; without a chip, hw-config/boards/emulated.json runs the emulated one.";
        }

        return machine.IsSpiActivated == true
            ? $"{node} does not exist on {machine.BoardName}, though config.txt turns SPI on: reboot after changing config.txt, and check that the overlay makes chip select {config.Get(BoardConfig.ChipSelect)} (dtparam=spi=on makes CE0 and CE1)."
            : $"{node} does not exist on {machine.BoardName}.\n{EnableSpi}";
    }

    /// <summary>Opens the chip's SPI device and holds WP# and HOLD# high.</summary>
    public static BoardHardware Open(ResolvedConfig config, IBoardEnvironment machine)
    {
        ArgumentNullException.ThrowIfNull(config);
        var settings = new SpiConnectionSettings(
            (int)config.Get(BoardConfig.SpiBus),
            (int)config.Get(BoardConfig.ChipSelect)
        )
        {
            ClockFrequency = (int)config.Get(BoardConfig.ClockHertz),
            Mode = SpiMode.Mode0,
            DataBitLength = 8,
        };
        (string, int)[] pins =
        [
            ("WP#", (int)config.Get(BoardConfig.WriteProtectPin)),
            ("HOLD#", (int)config.Get(BoardConfig.HoldPin)),
        ];
        return config.Get(BoardConfig.Spi) switch
        {
            "ft232h" => OpenFt232H(config, settings, pins),
            _ => OpenSpidev(config, machine, settings, pins),
        };
    }

    private static BoardHardware OpenSpidev(
        ResolvedConfig config,
        IBoardEnvironment machine,
        SpiConnectionSettings settings,
        (string, int)[] pins
    )
    {
        if (SpidevProblem(config, machine) is { } problem)
        {
            throw new BoardException(problem);
        }

        string node = SpidevPath(config);
        long chip = config.Get(BoardConfig.GpioChip);
        (GpioController? gpio, PowerFailInput? powerFail) = BoardHardware.OpenPins(
            () => chip < 0 ? new GpioController() : new GpioController(new LibGpiodDriver((int)chip)),
            config,
            pins
        );
        try
        {
            // SpiDevice.Create does not open the node; the driver's first transfer does, and
            // BoardDevice turns an IOException there into the board's error.
            return new BoardHardware(
                SpiDevice.Create(settings),
                $"{node} at {settings.ClockFrequency / 1e6:0.###} MHz",
                gpio is null ? [] : [gpio],
                powerFail
            );
        }
        catch
        {
            powerFail?.Dispose();
            gpio?.Dispose();
            throw;
        }
    }

    private static BoardHardware OpenFt232H(ResolvedConfig config, SpiConnectionSettings settings, (string, int)[] pins)
    {
        List<Ft232HDevice> found;
        try
        {
            found = Ft232HDevice.GetFt232H();
        }
        catch (Exception e)
            when (e is DllNotFoundException or IOException or InvalidOperationException or EntryPointNotFoundException)
        {
            string why = e is DllNotFoundException ? "FTDI's D2XX library was not found" : e.Message;
            throw new BoardException(
                $"cannot look for an FT232H: {why}. The adapter is reached through FTDI's D2XX library (libftd2xx.so on Linux, ftd2xx.dll on Windows): install it, and on Linux unload the ftdi_sio driver (sudo rmmod ftdi_sio) or add a udev rule for the adapter."
            );
        }

        if (found.Count == 0)
        {
            throw new BoardException(
                "no FT232H adapter found: plug it in (and on Linux unload ftdi_sio: sudo rmmod ftdi_sio)"
            );
        }

        // The first adapter is used; the others are let go at once.
        Ft232HDevice adapter = found[0];
        found.Skip(1).ToList().ForEach(other => other.Dispose());
        GpioController? gpio = null;
        PowerFailInput? powerFail = null;
        try
        {
            (gpio, powerFail) = BoardHardware.OpenPins(adapter.CreateGpioController, config, pins);
            SpiDevice spi = adapter.CreateSpiDevice(settings);
            return new BoardHardware(
                spi,
                $"an FT232H ({adapter.SerialNumber}) at {settings.ClockFrequency / 1e6:0.###} MHz",
                gpio is null ? [adapter] : [adapter, gpio],
                powerFail
            );
        }
        catch (Exception e)
        {
            powerFail?.Dispose();
            gpio?.Dispose();
            adapter.Dispose();
            if (e is IOException or InvalidOperationException or ArgumentException)
            {
                throw new BoardException(
                    $"cannot open the FT232H's SPI (chip select D{settings.ChipSelectLine}): {e.Message}"
                );
            }

            throw;
        }
    }
}
