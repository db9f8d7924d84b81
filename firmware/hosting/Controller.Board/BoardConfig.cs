using Controller.Emulator;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;

namespace Controller.Board;

/// <summary>
/// The board's keys (<c>board.*</c>, in <c>hw-config/boards/NAME.json</c>) on top of the
/// firmware's. A board profile includes its chip description (<c>"include"</c>) and says how the
/// chip is wired: which SPI (a Linux spidev, an FT232H adapter, or the emulated chip), the bus and
/// chip select, the clock, and the GPIO pins driving WP# and HOLD#. The emulator's fault keys are
/// taken only by a profile whose SPI is emulated: real hardware has its own faults.
/// </summary>
public static class BoardConfig
{
    /// <summary>Where the chip is.</summary>
    public static readonly TextKey Spi = new(
        "board.spi",
        "spidev: a Linux SPI device (a Raspberry Pi's SPI0); ft232h: an FT232H USB adapter; emulated: the emulated chip",
        "spidev",
        "spidev",
        "ft232h",
        "emulated"
    );

    /// <summary>The board's name, for the banner.</summary>
    public static readonly TextKey Name = new("board.name", "the board's name, as the banner shows it", "a board");

    /// <summary>The SPI bus (spidevBUS.CS).</summary>
    public static readonly IntegerKey SpiBus = new(
        "board.spiBus",
        "SPI bus number (spidev: /dev/spidevBUS.CS)",
        0,
        0,
        15
    );

    /// <summary>The chip select line.</summary>
    public static readonly IntegerKey ChipSelect = new(
        "board.chipSelect",
        "chip select line (spidev: /dev/spidevBUS.CS; FT232H: 3 is D3, the usual CS)",
        0,
        0,
        15
    );

    /// <summary>The SPI clock.</summary>
    public static readonly IntegerKey ClockHertz = new(
        "board.clockHz",
        "SPI clock in Hz (the chip allows up to 104 MHz; wiring on a breadboard wants 1-20 MHz)",
        10_000_000,
        100_000,
        104_000_000
    );

    /// <summary>GPIO driving WP#, or -1.</summary>
    public static readonly IntegerKey WriteProtectPin = new(
        "board.writeProtectPin",
        "GPIO (logical number) driving the chip's WP# high, or -1 when WP# is tied high",
        -1,
        -1,
        255
    );

    /// <summary>GPIO driving HOLD#, or -1.</summary>
    public static readonly IntegerKey HoldPin = new(
        "board.holdPin",
        "GPIO (logical number) driving the chip's HOLD# high, or -1 when HOLD# is tied high",
        -1,
        -1,
        255
    );

    /// <summary>The GPIO chip of the pins, or -1.</summary>
    public static readonly IntegerKey GpioChip = new(
        "board.gpioChip",
        "the gpiochip (libgpiod) of the WP# and HOLD# pins, or -1 to let System.Device.Gpio choose its driver",
        -1,
        -1,
        15
    );

    /// <summary>The activity LED.</summary>
    public static readonly TextKey Led = new(
        "board.led",
        "the LED under /sys/class/leds to light on NAND activity, or a comma-separated list tried in order (ACT,led0 on a Raspberry Pi); empty for none",
        string.Empty
    );

    /// <summary>The power-fail input.</summary>
    public static readonly IntegerKey PowerFailPin = new(
        "board.powerFailPin",
        "GPIO (logical number) of a power-fail signal (a supercapacitor monitor's power-good output): its edge starts the save of the cache on hold-up energy; -1 for none",
        -1,
        -1,
        255
    );

    /// <summary>The edge that means the power is failing.</summary>
    public static readonly TextKey PowerFailEdge = new(
        "board.powerFailEdge",
        "the edge of board.powerFailPin that means the power is failing: falling (a power-good output going low) or rising",
        "falling",
        "falling",
        "rising"
    );

    /// <summary>The pin's bias.</summary>
    public static readonly TextKey PowerFailPull = new(
        "board.powerFailPull",
        "the bias of board.powerFailPin: up (an open-drain power-good output), down or none",
        "up",
        "up",
        "down",
        "none"
    );

    /// <summary>The emulator's keys a real chip does not take.</summary>
    private static readonly ConfigKey[] s_emulatorOnly =
    [
        EmulatorConfig.FactoryBadBlockFraction,
        EmulatorConfig.RawBitErrorRate,
        EmulatorConfig.WearBitErrorGrowth,
        EmulatorConfig.ProgramFailProbability,
        EmulatorConfig.EraseFailProbability,
        EmulatorConfig.WeakBlocks,
        EmulatorConfig.SpiPath,
        EmulatorConfig.SpiJedecId,
    ];

    /// <summary>
    /// The board's schema: the firmware's keys, the emulator's (for an emulated chip) and the board's.
    /// </summary>
    public static ConfigSchema Schema { get; } =
        EmulatorConfig.Schema.Extend(
            [
                Spi,
                Name,
                SpiBus,
                ChipSelect,
                ClockHertz,
                WriteProtectPin,
                HoldPin,
                GpioChip,
                Led,
                PowerFailPin,
                PowerFailEdge,
                PowerFailPull,
            ],
            [
                new(
                    PowerFailPin,
                    c =>
                        c.Get(PowerFailPin) < 0 || c.Get(CacheConfig.Plp)
                            ? null
                            : "a power-fail pin starts the save on hold-up energy, which needs power-loss protection: set power.plp=true and power.plpBudgetPages",
                    CacheConfig.Plp
                ),
                new(
                    PowerFailPin,
                    c =>
                        c.Get(PowerFailPin) < 0
                        || (c.Get(PowerFailPin) != c.Get(WriteProtectPin) && c.Get(PowerFailPin) != c.Get(HoldPin))
                            ? null
                            : $"GPIO {c.Get(PowerFailPin)} is also board.writeProtectPin or board.holdPin, which are driven as outputs",
                    WriteProtectPin,
                    HoldPin
                ),
                new(
                    Spi,
                    c =>
                        c.Get(Spi) != "emulated" || c.Get(EmulatorConfig.SpiPath)
                            ? null
                            : "an emulated chip is reached over the SPI path: the profile sets emulator.spi true (include hw-config/emulated/w25n01gv-spi.json)",
                    EmulatorConfig.SpiPath
                ),
                new(Spi, c =>
                    c.Get(Spi) == "emulated"
                    || s_emulatorOnly.FirstOrDefault(k => c.SourceOf(k) != "default") is not { } set
                        ? null
                        : $"{set.Path} is the emulator's; a real chip ({c.Get(Spi)}) has its own faults and no emulated path"
                ),
                new(
                    Spi,
                    c =>
                        c.Get(Spi) == "emulated" || c.Get(FirmwareConfig.ChipName).Length > 0
                            ? null
                            : "a real chip needs its description (chip.name, chip.jedecId): include one of hw-config/chips",
                    FirmwareConfig.ChipName
                ),
            ]
        );
}
