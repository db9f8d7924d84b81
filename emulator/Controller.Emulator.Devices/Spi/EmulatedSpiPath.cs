using Controller.Common;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Spi;

/// <summary>
/// The SPI path of <c>emulator.spi</c>: the firmware's SPI NAND driver over an emulated chip over
/// the emulated array, as on a board. <see cref="Driver"/> is what the FTL mounts; after a power
/// cut, <see cref="PowerOn"/> brings the chip back to its power-up registers and the driver
/// initialises it again (reset, ID check, unlock, ECC on), as a board's boot does.
/// </summary>
public sealed class EmulatedSpiPath
{
    private EmulatedSpiPath(EmulatedSpiNandChip chip, SpiNandDevice driver)
    {
        Chip = chip;
        Driver = driver;
    }

    /// <summary>The emulated chip on the bus.</summary>
    public EmulatedSpiNandChip Chip { get; }

    /// <summary>The firmware's driver talking to it: the device the FTL mounts.</summary>
    public SpiNandDevice Driver { get; }

    /// <summary>
    /// The SPI path over <paramref name="array"/> when <paramref name="config"/> sets
    /// <c>emulator.spi</c>, initialised; otherwise null (the firmware mounts the array directly).
    /// </summary>
    public static EmulatedSpiPath? FromConfig(ResolvedConfig config, INandDevice array, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Get(EmulatorConfig.SpiPath))
        {
            return null;
        }

        SpiNandChip description = SpiNandChip.FromConfig(config);
        EmulatedSpiNandChip chip = EmulatedSpiNandChip.FromConfig(config, array, clock);
        var path = new EmulatedSpiPath(chip, new SpiNandDevice(chip, description, clock));
        path.Driver.Initialize();
        return path;
    }

    /// <summary>Power is back: the chip at its power-up state, initialised again by the driver.</summary>
    public void PowerOn()
    {
        Chip.PowerOn();
        Driver.Initialize();
    }
}
