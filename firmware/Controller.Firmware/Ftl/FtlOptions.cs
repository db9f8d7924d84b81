namespace Controller.Firmware.Ftl;

/// <summary>How garbage collection picks the block to reclaim.</summary>
public enum GcVictimPolicy
{
    /// <summary>The closed block with the fewest valid sectors.</summary>
    Greedy,

    /// <summary>The closed block with the best (1 - u) * age / (1 + u), u its valid fraction (Rosenblum and Ousterhout).</summary>
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
    /// A deliberately broken variant for the tests' oracles: FLUSH returns without waiting for
    /// its programs to complete. Reachable only from tests.
    /// </summary>
    internal bool CanaryFlushBeforeDurable { get; init; }
}
