using System.Numerics;
using Controller.Firmware.Config;

namespace Controller.Firmware.Cache;

/// <summary>How the cache treats a TRIM that covers part of a cached large page (DESIGN.md section 4).</summary>
public enum TrimPolicy
{
    /// <summary>Zero the range in place, mark its sectors holes, keep the large page.</summary>
    ZeroFill,

    /// <summary>
    /// Split the large page into sector frames and free those in the hole; keep it whole with holes recorded if frames
    /// run out.
    /// </summary>
    Split,

    /// <summary>Copy the surviving data into lower-order frames and free the large page.</summary>
    Migrate,

    /// <summary>Write back the dirty surviving sectors and drop the page.</summary>
    Evict,
}

/// <summary>Which cached large page makes room when the arena is full.</summary>
public enum EvictionPolicy
{
    /// <summary>Second chance: a page read or written since the hand last passed is skipped once.</summary>
    Clock,

    /// <summary>The page used least recently.</summary>
    Lru,
}

/// <summary>The cache's and power-loss protection's configuration keys.</summary>
public static class CacheConfig
{
    /// <summary>The DRAM arena.</summary>
    public static readonly IntegerKey Bytes = new(
        "cache.bytes",
        "DRAM arena of the cache, bytes (a whole number of large pages)",
        64L << 20,
        64L << 10,
        16L << 30,
        isByteSize: true
    );

    /// <summary>The large page.</summary>
    public static readonly IntegerKey LargePageBytes = new(
        "cache.largePageBytes",
        "large page of the cache, bytes: a power of two from 16k to 2M",
        64L << 10,
        16L << 10,
        2L << 20,
        isByteSize: true
    );

    /// <summary>The hole-punch policy.</summary>
    public static readonly TextKey TrimPolicyKey = new(
        "cache.trimPolicy",
        "how a TRIM inside a cached large page is handled: zero-fill, split, migrate, evict (DESIGN.md section 4)",
        "split",
        "zero-fill",
        "split",
        "migrate",
        "evict"
    );

    /// <summary>The eviction policy.</summary>
    public static readonly TextKey EvictionKey = new(
        "cache.eviction",
        "which large page makes room: clock or lru",
        "clock",
        "clock",
        "lru"
    );

    /// <summary>What DRAM copies and fills cost in time.</summary>
    public static readonly NumberKey DramNanosecondsPerKib = new(
        "cache.dramNanosecondsPerKib",
        "time the controller spends copying or zeroing 1 KiB of DRAM, nanoseconds (charged on the clock)",
        100,
        0,
        1e6
    );

    /// <summary>How long a sector may stay dirty before background write-back.</summary>
    public static readonly IntegerKey DirtyExpireMilliseconds = new(
        "cache.dirtyExpireMilliseconds",
        "a large page dirty for longer than this on the firmware's clock is written back and flushed in the background, oldest first, when no host command waits; 0: dirty data waits for eviction or a flush",
        5000,
        0,
        3_600_000
    );

    /// <summary>Whether the cache checks its invariants as it runs.</summary>
    public static readonly BooleanKey CheckInvariants = new(
        "cache.checkInvariants",
        "after every command, walk the cache and the FTL's map and check every invariant (cheap checks run always; sim and crashtest turn this on)",
        false
    );

    /// <summary>Power-loss protection.</summary>
    public static readonly BooleanKey Plp = new(
        "power.plp",
        "power-loss protection: on power fail, save every dirty sector within the budget below",
        false
    );

    /// <summary>The PLP energy budget, in NAND page programs.</summary>
    public static readonly IntegerKey PlpBudgetPages = new(
        "power.plpBudgetPages",
        "page programs the hold-up capacitor can power after a power fail",
        0,
        0,
        1L << 30
    );

    /// <summary>The keys above, to extend a schema with.</summary>
    public static IReadOnlyList<ConfigKey> Keys { get; } =
    [
        Bytes,
        LargePageBytes,
        TrimPolicyKey,
        EvictionKey,
        DramNanosecondsPerKib,
        DirtyExpireMilliseconds,
        CheckInvariants,
        Plp,
        PlpBudgetPages,
    ];

    /// <summary>The rules relating the keys above to each other and to the NAND.</summary>
    public static IReadOnlyList<ConfigRule> Rules { get; } =
    [
        new(LargePageBytes, c =>
            BitOperations.IsPow2(c.Get(LargePageBytes)) ? null : $"{c.Get(LargePageBytes)} is not a power of two"
        ),
        new(
            Bytes,
            c =>
                c.Get(Bytes) % c.Get(LargePageBytes) == 0 && c.Get(Bytes) / c.Get(LargePageBytes) >= 4
                    ? null
                    : $"{c.Get(Bytes)} is not a whole number of at least 4 large pages of {c.Get(LargePageBytes)} bytes",
            LargePageBytes
        ),
        new(
            PlpBudgetPages,
            c =>
                !c.Get(Plp) || c.Get(PlpBudgetPages) >= PlpPagesNeeded(c)
                    ? null
                    : $"{c.Get(PlpBudgetPages)} page programs cannot save a cache of {c.Get(Bytes) / FirmwareConfig.SectorBytes} dirty sectors; power-loss protection needs at least {PlpPagesNeeded(c)}",
            Plp,
            Bytes,
            FirmwareConfig.PageBytes
        ),
    ];

    /// <summary>
    /// Page programs needed to save a cache that is all dirty: its sectors packed into NAND pages,
    /// plus one page in eight for the journal, checkpoint and padding around them.
    /// </summary>
    public static long PlpPagesNeeded(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long pageBytes = Math.Max(config.Get(FirmwareConfig.PageBytes), FirmwareConfig.SectorBytes);
        long pagesPerUnit = Math.Max(1, FirmwareConfig.SectorBytes / config.Get(FirmwareConfig.PageBytes));
        long pages = config.Get(Bytes) / pageBytes * pagesPerUnit;
        return pages + (pages / 8) + 16;
    }

    /// <summary>The options a configuration describes.</summary>
    public static CacheOptions Options(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new CacheOptions
        {
            Bytes = config.Get(Bytes),
            LargePageBytes = (int)config.Get(LargePageBytes),
            TrimPolicy = config.Get(TrimPolicyKey) switch
            {
                "zero-fill" => TrimPolicy.ZeroFill,
                "migrate" => TrimPolicy.Migrate,
                "evict" => TrimPolicy.Evict,
                _ => TrimPolicy.Split,
            },
            Eviction = config.Get(EvictionKey) == "lru" ? EvictionPolicy.Lru : EvictionPolicy.Clock,
            DramNanosecondsPerKib = config.Get(DramNanosecondsPerKib),
            DirtyExpireNanoseconds = config.Get(DirtyExpireMilliseconds) * 1_000_000,
            CheckInvariants = config.Get(CheckInvariants),
        };
    }
}

/// <summary>The cache's options.</summary>
public sealed record CacheOptions
{
    /// <summary>The DRAM arena, bytes.</summary>
    public long Bytes { get; init; } = 64L << 20;

    /// <summary>The large page, bytes.</summary>
    public int LargePageBytes { get; init; } = 64 << 10;

    /// <summary>How a partial TRIM of a cached large page is handled.</summary>
    public TrimPolicy TrimPolicy { get; init; } = TrimPolicy.Split;

    /// <summary>Which page makes room.</summary>
    public EvictionPolicy Eviction { get; init; } = EvictionPolicy.Clock;

    /// <summary>Time charged on the clock per KiB the cache copies or zeroes (0: DRAM work is free).</summary>
    public double DramNanosecondsPerKib { get; init; }

    /// <summary>
    /// A large page dirty for longer than this (on the cache's clock) is written back in the
    /// background; 0 (the default here, not in the configuration) turns the expiry off.
    /// </summary>
    public long DirtyExpireNanoseconds { get; init; }

    /// <summary>Check the invariants as the cache runs.</summary>
    public bool CheckInvariants { get; init; }
}
