using Controller.Firmware.Config;

namespace Controller.Firmware.Ftl;

/// <summary>The flash translation layer's configuration keys and the options they resolve to.</summary>
public static class FtlConfig
{
    /// <summary>Sf: the fraction of user-capable flash held back from the host.</summary>
    public static readonly NumberKey SpareFactor = new("ftl.spareFactor", "Sf: fraction of the flash that can hold user data held back as spare (DESIGN.md section 7)", 0.10, 0.01, 0.9);

    /// <summary>How GC picks its victim.</summary>
    public static readonly TextKey GcPolicyKey = new("ftl.gcPolicy", "greedy: the block with fewest valid sectors; cost-benefit: weighs free space gained against the block's age", "greedy", "greedy", "cost-benefit");

    /// <summary>Pages programmed between checkpoints.</summary>
    public static readonly IntegerKey CheckpointIntervalPages = new("ftl.checkpointIntervalPages", "NAND pages programmed between checkpoints of the map (recovery replays at most about this many)", 4096, 16, 1 << 24);

    /// <summary>Erase-count spread that triggers static wear levelling.</summary>
    public static readonly IntegerKey WearLevelingSpread = new("ftl.wearLevelingSpread", "erase-count spread (max - min) above which cold data is moved off the least-worn block", 100, 1, 1_000_000);

    /// <summary>The keys above, to extend a schema with.</summary>
    public static IReadOnlyList<ConfigKey> Keys { get; } = [SpareFactor, GcPolicyKey, CheckpointIntervalPages, WearLevelingSpread];

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
        };
    }

    /// <summary>
    /// With power-loss protection, the free blocks a save of a cache full of dirty sectors needs,
    /// plus one for the stream's open block: held back so the save never waits for GC. Zero without.
    /// </summary>
    public static int HoldUpReserveBlocks(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Get(Cache.CacheConfig.Plp))
        {
            return 0;
        }

        long sectorsPerBlock = new FtlLayout(FirmwareConfig.Geometry(config)).SectorsPerBlock;
        long cacheSectors = config.Get(Cache.CacheConfig.Bytes) / FirmwareConfig.SectorBytes;
        return (int)((cacheSectors + sectorsPerBlock - 1) / sectorsPerBlock) + 1;
    }
}
