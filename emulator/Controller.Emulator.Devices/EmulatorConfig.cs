using Controller.Emulator.Nand;
using Controller.Firmware.Config;

namespace Controller.Emulator;

/// <summary>
/// The emulator's keys on top of the firmware's: the fault model of the emulated NAND. Real
/// hardware has its own faults, so the board does not accept these.
/// </summary>
public static class EmulatorConfig
{
    /// <summary>Seed of the NAND model's PRNG.</summary>
    public static readonly IntegerKey FaultSeed = new(
        "faults.seed",
        "seed of the emulated NAND's bit errors, failures and power-cut outcomes",
        1,
        0,
        long.MaxValue
    );

    /// <summary>Fraction of blocks marked bad at the factory.</summary>
    public static readonly NumberKey FactoryBadBlockFraction = new(
        "faults.factoryBadBlockFraction",
        "fraction of blocks marked bad when a new array is made",
        0,
        0,
        0.5
    );

    /// <summary>RBER of a fresh block.</summary>
    public static readonly NumberKey RawBitErrorRate = new(
        "faults.rawBitErrorRate",
        "raw bit error rate of a fresh block, per bit read",
        0,
        0,
        0.01
    );

    /// <summary>RBER growth at rated endurance.</summary>
    public static readonly NumberKey WearBitErrorGrowth = new(
        "faults.wearBitErrorGrowth",
        "factor by which the bit error rate has grown at the rated endurance",
        1000,
        1,
        1e9
    );

    /// <summary>P-FAIL probability.</summary>
    public static readonly NumberKey ProgramFailProbability = new(
        "faults.programFailProbability",
        "probability that a page program fails",
        0,
        0,
        1
    );

    /// <summary>E-FAIL probability.</summary>
    public static readonly NumberKey EraseFailProbability = new(
        "faults.eraseFailProbability",
        "probability that a block erase fails",
        0,
        0,
        1
    );

    /// <summary>Weak blocks, nandsim style.</summary>
    public static readonly TextKey WeakBlocks = new(
        "faults.weakBlocks",
        "blocks whose erases fail from a given erase count on, as block:erases,... (nandsim's weakblocks)",
        string.Empty
    );

    /// <summary>
    /// Whether the firmware reaches the emulated array through the SPI NAND driver and an emulated SPI chip.
    /// </summary>
    public static readonly BooleanKey SpiPath = new(
        "emulator.spi",
        "drive the emulated NAND through the SPI NAND driver and an emulated SPI chip that the chip.* keys describe (a one-die array)",
        false
    );

    /// <summary>The ID the emulated chip answers with, when it is not the description's.</summary>
    public static readonly HexBytesKey SpiJedecId = new(
        "emulator.spiJedecId",
        "the ID the emulated SPI chip answers READ ID with, when not its description's chip.jedecId: a substituted or miswired part (empty: the description's)",
        8
    );

    /// <summary>The emulator's schema: the firmware's keys and the fault keys.</summary>
    public static ConfigSchema Schema { get; } =
        FirmwareConfig.Schema.Extend(
            [
                FaultSeed,
                FactoryBadBlockFraction,
                RawBitErrorRate,
                WearBitErrorGrowth,
                ProgramFailProbability,
                EraseFailProbability,
                WeakBlocks,
                SpiPath,
                SpiJedecId,
            ],
            [
                new(
                    SpiPath,
                    c =>
                        !c.Get(SpiPath)
                        || (
                            c.Get(FirmwareConfig.ChipName).Length > 0
                            && c.Get(FirmwareConfig.Channels) == 1
                            && c.Get(FirmwareConfig.DiesPerChannel) == 1
                        )
                            ? null
                            : "the SPI path needs a chip description (chip.name, chip.jedecId) and a one-die array (nand.channels 1, nand.diesPerChannel 1)",
                    FirmwareConfig.ChipName,
                    FirmwareConfig.Channels,
                    FirmwareConfig.DiesPerChannel
                ),
                new(WeakBlocks, c =>
                    NandFaultOptions.ParseWeakBlocks(c.Get(WeakBlocks), out string reason) is null ? reason : null
                ),
                new(
                    WeakBlocks,
                    c =>
                    {
                        long blocks =
                            c.Get(FirmwareConfig.Channels)
                            * c.Get(FirmwareConfig.DiesPerChannel)
                            * c.Get(FirmwareConfig.BlocksPerDie);
                        int? outside = NandFaultOptions
                            .ParseWeakBlocks(c.Get(WeakBlocks), out _)!
                            .Keys.Where(b => b >= blocks)
                            .Select(b => (int?)b)
                            .FirstOrDefault();
                        return outside is null ? null : $"block {outside} is outside the array of {blocks} blocks";
                    },
                    FirmwareConfig.Channels,
                    FirmwareConfig.DiesPerChannel,
                    FirmwareConfig.BlocksPerDie
                ),
            ]
        );
}
