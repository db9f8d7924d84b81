namespace Controller.Firmware.Ftl;

/// <summary>How garbage collection picks the block to reclaim.</summary>
public enum GcVictimPolicy
{
    /// <summary>The closed block with the fewest valid sectors.</summary>
    Greedy,

    /// <summary>
    /// The closed block with the best (1 - u) * age / (1 + u), u its valid fraction (Rosenblum and Ousterhout).
    /// </summary>
    CostBenefit,
}

/// <summary>The flash translation layer's options.</summary>
public sealed record FtlOptions
{
    /// <summary>Sf: the fraction of user-capable flash held back as spare.</summary>
    public double SpareFactor { get; init; } = 0.10;

    /// <summary>How GC picks its victim.</summary>
    public GcVictimPolicy GcPolicy { get; init; } = GcVictimPolicy.Greedy;

    /// <summary>NAND pages programmed between checkpoints.</summary>
    public int CheckpointIntervalPages { get; init; } = 4096;

    /// <summary>Erase-count spread above which static wear levelling moves cold data.</summary>
    public int WearLevelingSpread { get; init; } = 100;

    /// <summary>
    /// Free blocks held back for a save on hold-up energy (power-loss protection): foreground GC
    /// keeps them free, and the save writes into them without collecting garbage.
    /// </summary>
    public int HoldUpReserveBlocks { get; init; }

    /// <summary>
    /// Mount without changing the NAND: no format (a blank NAND is refused), no checkpoint after
    /// recovery; any program or erase asked of the FTL afterwards is refused with an exception.
    /// </summary>
    public bool ReadOnly { get; init; }
}

/// <summary>What the FTL is doing, for tools that cut the power and want to say where it struck.</summary>
public enum FtlActivity
{
    /// <summary>Serving host writes, reads, trims and flushes.</summary>
    Host,

    /// <summary>Mounting: reading the superblocks, a checkpoint and the log after it, or formatting.</summary>
    Recovery,

    /// <summary>Garbage collection: relocating a victim's valid data.</summary>
    GarbageCollection,

    /// <summary>Static wear levelling: moving cold data off a little-worn block.</summary>
    WearLeveling,

    /// <summary>Relocating the data of a block whose program or erase failed.</summary>
    Retirement,

    /// <summary>Writing journal records (trims, bad blocks).</summary>
    Journal,

    /// <summary>Writing a checkpoint of the map and its superblock pointer.</summary>
    Checkpoint,
}
