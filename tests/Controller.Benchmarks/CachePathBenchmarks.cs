using BenchmarkDotNet.Attributes;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;

namespace Controller.Benchmarks;

/// <summary>
/// The cache's hot paths per host command: a 4 KiB read that hits, a 4 KiB write that hits, and a
/// 4 KiB TRIM inside a cached large page (followed by the write that fills the hole again, so
/// every iteration starts from the same state). The store below is a null store, so what is
/// measured is the cache alone. Target: 0 bytes allocated per command, for every policy.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 3, iterationCount: 15)]
public class CachePathBenchmarks
{
    private const int Sector = 4096;
    private const int LargePage = 64 * 1024;
    private readonly byte[] _buffer = new byte[Sector];
    private LargePageCache _cache = null!;
    private int _next;

    [Params(TrimPolicy.ZeroFill, TrimPolicy.Split, TrimPolicy.Migrate, TrimPolicy.Evict)]
    public TrimPolicy Policy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new LargePageCache(
            new NullStore(1 << 20),
            new CacheOptions
            {
                Bytes = 16L << 20,
                LargePageBytes = LargePage,
                TrimPolicy = Policy,
            }
        );
        byte[] page = new byte[LargePage];
        for (int i = 0; i < 64; i++)
        {
            _cache.Write((long)i * LargePage, page, forceUnitAccess: false);
        }
    }

    [Benchmark(Description = "read 4 KiB, hit")]
    public bool ReadHit() => _cache.Read(NextOffset(), _buffer);

    [Benchmark(Description = "write 4 KiB, hit")]
    public bool WriteHit() => _cache.Write(NextOffset(), _buffer, forceUnitAccess: false);

    [Benchmark(Description = "trim 4 KiB in a large page, then refill it")]
    public bool TrimThenRefill()
    {
        long offset = NextOffset();
        _cache.Trim(offset, Sector);
        return _cache.Write(offset, _buffer, forceUnitAccess: false);
    }

    /// <summary>Walks sectors 1 to 14 of the 64 cached large pages, never a page's first or last sector.</summary>
    private long NextOffset()
    {
        _next = (_next + 1) % (64 * 14);
        return ((long)(_next / 14) * LargePage) + (((_next % 14) + 1) * Sector);
    }

    /// <summary>A store that holds nothing: reads return zeros, writes and trims are dropped.</summary>
    private sealed class NullStore(long sectors) : ISectorStore
    {
        public long Sectors => sectors;

        public FtlReadResult ReadSector(long sector, Span<byte> destination)
        {
            destination.Clear();
            return new FtlReadResult(true, 0);
        }

        public void WriteSector(long sector, ReadOnlySpan<byte> data) { }

        public void TrimSectors(long sector, long count) { }

        public void Flush() { }

        public bool IsMapped(long sector) => false;
    }
}
