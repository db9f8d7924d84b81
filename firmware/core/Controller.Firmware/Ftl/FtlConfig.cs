using Controller.Firmware.Config;
using Controller.Firmware.Flash;

namespace Controller.Firmware.Ftl;

/// <summary>The flash translation layer's configuration keys and the options they resolve to.</summary>
public static class FtlConfig
{
    /// <summary>Sf: the fraction of user-capable flash held back from the host.</summary>
    public static readonly NumberKey SpareFactor = new(
        "ftl.spareFactor",
        "Sf: fraction of the flash that can hold user data held back as spare (DESIGN.md section 7)",
        0.10,
        0.01,
        0.9
    );

    /// <summary>How GC picks its victim.</summary>
    public static readonly TextKey GcPolicyKey = new(
        "ftl.gcPolicy",
        "greedy: the block with fewest valid sectors; cost-benefit: weighs free space gained against the block's age",
        "greedy",
        "greedy",
        "cost-benefit"
    );

    /// <summary>Pages programmed between checkpoints.</summary>
    public static readonly IntegerKey CheckpointIntervalPages = new(
        "ftl.checkpointIntervalPages",
        "NAND pages programmed between checkpoints of the map (recovery replays at most about this many)",
        4096,
        16,
        1 << 24
    );

    /// <summary>Erase-count spread that triggers static wear levelling.</summary>
    public static readonly IntegerKey WearLevelingSpread = new(
        "ftl.wearLevelingSpread",
        "erase-count spread (max - min) above which cold data is moved off the least-worn block",
        100,
        1,
        1_000_000
    );

    /// <summary>A read-only mount.</summary>
    public static readonly BooleanKey ReadOnly = new(
        "ftl.readOnly",
        "mount without changing the NAND (serve --read-only): no format, no checkpoint, no background work; writes, trims and zeroing are refused",
        false
    );

    /// <summary>The keys above, to extend a schema with.</summary>
    public static IReadOnlyList<ConfigKey> Keys { get; } =
    [SpareFactor, GcPolicyKey, CheckpointIntervalPages, WearLevelingSpread, ReadOnly];

    /// <summary>The options a configuration describes.</summary>
    public static FtlOptions Options(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new FtlOptions
        {
            SpareFactor = config.Get(SpareFactor),
            GcPolicy = config.Get(GcPolicyKey) == "greedy" ? GcVictimPolicy.Greedy : GcVictimPolicy.CostBenefit,
            CheckpointIntervalPages = (int)config.Get(CheckpointIntervalPages),
            WearLevelingSpread = (int)config.Get(WearLevelingSpread),
            HoldUpReserveBlocks = HoldUpReserveBlocks(config),
            ReadOnly = config.Get(ReadOnly),
        };
    }

    /// <summary>
    /// With power-loss protection, the free blocks a save of a cache full of dirty sectors needs,
    /// held back so the save never waits for GC: its units go to the dies in turn, and each die's
    /// open block may have just filled, so every die it reaches may need fresh blocks for its
    /// share; plus one for the metadata stream (the journal the save ends with). Zero without.
    /// </summary>
    public static int HoldUpReserveBlocks(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Get(Cache.CacheConfig.Plp))
        {
            return 0;
        }

        NandGeometry geometry = FirmwareConfig.Geometry(config);
        var layout = new FtlLayout(geometry);
        long cacheSectors = config.Get(Cache.CacheConfig.Bytes) / FirmwareConfig.SectorBytes;
        long units = (cacheSectors + layout.SectorsPerUnit - 1) / layout.SectorsPerUnit;
        long dies = Math.Min(geometry.Dies, Math.Max(1, units));
        long unitsPerDie = (units + dies - 1) / dies;
        long blocksPerDie = (unitsPerDie + layout.UnitsPerBlock - 1) / layout.UnitsPerBlock;
        return (int)((dies * Math.Max(1, blocksPerDie)) + 1);
    }
}
