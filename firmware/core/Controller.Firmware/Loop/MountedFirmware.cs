using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;

namespace Controller.Firmware.Loop;

/// <summary>
/// The firmware as one piece, mounted on a NAND: the FTL, the cache over it and the controller loop
/// over both, all on one <see cref="CommandClock"/>. The emulator's serve, the sim and the board
/// mount it the same way; a power cut throws the stack away and the next boot mounts a new one.
/// </summary>
public sealed class MountedFirmware
{
    private MountedFirmware(CommandClock clock, FlashTranslationLayer ftl, LargePageCache cache, ControllerLoop loop)
    {
        Clock = clock;
        Ftl = ftl;
        Cache = cache;
        Loop = loop;
    }

    /// <summary>The clock the firmware runs on; its <see cref="CommandClock.Device"/> is the device's.</summary>
    public CommandClock Clock { get; }

    /// <summary>The flash translation layer.</summary>
    public FlashTranslationLayer Ftl { get; }

    /// <summary>The DRAM cache over the FTL.</summary>
    public LargePageCache Cache { get; }

    /// <summary>The controller loop: the only way host commands reach the cache.</summary>
    public ControllerLoop Loop { get; }

    /// <summary>
    /// Mounts (formats or recovers) the FTL on <paramref name="nand"/> and builds the cache and the
    /// loop over it, with room for <paramref name="queueDepth"/> commands in flight.
    /// <paramref name="plpBudgetPages"/> above zero turns power-loss protection on. For commands to
    /// overlap on emulated flash, the NAND books its operations on <paramref name="clock"/>. The
    /// cache writes to the FTL's sector store, or to what <paramref name="store"/> makes of it.
    /// </summary>
    public static MountedFirmware Mount(
        INandDevice nand,
        CommandClock clock,
        Prng prng,
        FtlOptions ftlOptions,
        CacheOptions cacheOptions,
        int queueDepth,
        long plpBudgetPages,
        Func<ISectorStore, ISectorStore>? store = null
    )
    {
        ArgumentNullException.ThrowIfNull(clock);
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, prng, ftlOptions);
        ISectorStore sectors = new FtlSectorStore(ftl);
        var cache = new LargePageCache(store?.Invoke(sectors) ?? sectors, cacheOptions, clock);
        return new MountedFirmware(
            clock,
            ftl,
            cache,
            new ControllerLoop(cache, ftl, clock, queueDepth, plpBudgetPages)
        );
    }
}
