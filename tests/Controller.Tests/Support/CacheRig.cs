using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;

namespace Controller.Tests.Support;

/// <summary>A cache over the FTL over the tiny emulated NAND.</summary>
internal sealed class CacheRig : IDisposable
{
    private readonly CacheOptions _options;
    private readonly FtlOptions _ftlOptions = new() { SpareFactor = 0.2 };

    /// <summary>What the cache writes to: the FTL's store, or a canary's decorator of it.</summary>
    private readonly Func<ISectorStore, ISectorStore> _broken;

    public CacheRig(
        TrimPolicy policy,
        long cacheBytes = 16 * 64 * 1024,
        int largePageBytes = 64 * 1024,
        bool checkInvariants = true,
        EvictionPolicy eviction = EvictionPolicy.Clock,
        Func<ISectorStore, ISectorStore>? broken = null
    )
    {
        Nand = Nands.Tiny(Clock, "nand.blocksPerDie=256");
        Ftl = FlashTranslationLayer.Mount(Nand, Clock, new Prng(1), _ftlOptions);
        _options = new CacheOptions
        {
            Bytes = cacheBytes,
            LargePageBytes = largePageBytes,
            TrimPolicy = policy,
            Eviction = eviction,
            CheckInvariants = checkInvariants,
        };
        _broken = broken ?? (store => store);
        Cache = new LargePageCache(_broken(new FtlSectorStore(Ftl)), _options);
    }

    public VirtualClock Clock { get; } = new();

    public EmulatedNand Nand { get; }

    public FlashTranslationLayer Ftl { get; private set; }

    public LargePageCache Cache { get; private set; }

    /// <summary>Forgets the cache (its DRAM), keeping the FTL: what was not written back is gone.</summary>
    public LargePageCache DropCache() => Cache = new LargePageCache(_broken(new FtlSectorStore(Ftl)), _options);

    /// <summary>Cuts the power, powers on, mounts the FTL again and starts an empty cache.</summary>
    public LargePageCache PowerCycle()
    {
        Nand.PowerCut();
        Nand.PowerOn();
        Ftl = FlashTranslationLayer.Mount(Nand, Clock, new Prng(2), _ftlOptions);
        return DropCache();
    }

    public void Dispose() => Nand.Dispose();
}
