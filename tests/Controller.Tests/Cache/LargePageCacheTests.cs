using System.Reflection;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Invariants;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Cache;

[Trait("Category", "Unit")]
public sealed class LargePageCacheTests
{
    private const int Sector = 4096;

    public static TheoryData<TrimPolicy> Policies() =>
        [TrimPolicy.ZeroFill, TrimPolicy.Split, TrimPolicy.Migrate, TrimPolicy.Evict];

    /// <summary>
    /// The scenario of the seed thread: punch inside a cached large page, write into the hole, flush, drop the cache,
    /// read back.
    /// </summary>
    [Theory]
    [MemberData(nameof(Policies))]
    public void AWriteIntoAPunchedHoleSurvivesFlushAndDroppingTheCache(TrimPolicy policy)
    {
        using var rig = new CacheRig(policy);
        byte[] page = Pattern(16 * Sector, 1);
        rig.Cache.Write(0, page, forceUnitAccess: false);
        rig.Cache.Flush();
        rig.Cache.Read(0, new byte[16 * Sector]);

        rig.Cache.Trim(4 * Sector, 4 * Sector);
        byte[] written = Pattern(2 * Sector, 2);
        rig.Cache.Write(5 * Sector, written, forceUnitAccess: false);
        rig.Cache.Flush();
        LargePageCache fresh = rig.DropCache();

        byte[] read = new byte[16 * Sector];
        Assert.True(fresh.Read(0, read));
        Assert.Equal(page.AsSpan(0, 4 * Sector).ToArray(), read[..(4 * Sector)]);
        Assert.All(read[(4 * Sector)..(5 * Sector)], b => Assert.Equal(0, b));
        Assert.Equal(written, read[(5 * Sector)..(7 * Sector)]);
        Assert.All(read[(7 * Sector)..(8 * Sector)], b => Assert.Equal(0, b));
        Assert.Equal(page.AsSpan(8 * Sector).ToArray(), read[(8 * Sector)..]);
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void AWriteIntoAPunchedHoleSurvivesAPowerCutAfterTheFlush(TrimPolicy policy)
    {
        using var rig = new CacheRig(policy);
        rig.Cache.Write(0, Pattern(16 * Sector, 1), forceUnitAccess: false);
        rig.Cache.Flush();
        rig.Cache.Trim(2 * Sector, 8 * Sector);
        byte[] written = Pattern(Sector, 3);
        rig.Cache.Write(6 * Sector, written, forceUnitAccess: false);
        rig.Cache.Flush();

        LargePageCache recovered = rig.PowerCycle();

        byte[] read = new byte[Sector];
        Assert.True(recovered.Read(6 * Sector, read));
        Assert.Equal(written, read);
        Assert.True(recovered.Read(3 * Sector, read));
        Assert.All(read, b => Assert.Equal(0, b));
    }

    [Fact]
    public void AWrittenSectorThatIsNotDirtyStopsTheCacheInEveryBuild()
    {
        // The canary of the write path's check, which is on without cache.checkInvariants: it
        // runs after every sector written, and throws where that sector is not dirty (here a
        // sector of a punched hole, which a trim left clean).
        using var rig = new CacheRig(TrimPolicy.ZeroFill, checkInvariants: false);
        rig.Cache.Write(0, Pattern(16 * Sector, 1), forceUnitAccess: false);
        rig.Cache.Trim(4 * Sector, 4 * Sector);
        MethodInfo check = typeof(LargePageCache).GetMethod(
            "CheckWrittenSectorDirty",
            BindingFlags.NonPublic | BindingFlags.Instance
        )!;

        check.Invoke(rig.Cache, [0, 3, 3L, false]);
        var error = Assert.Throws<TargetInvocationException>(() => check.Invoke(rig.Cache, [0, 5, 5L, true]));

        var broken = Assert.IsType<InvariantViolationException>(error.InnerException);
        Assert.Equal("a write into the punched hole at sector 5 did not dirty its page", broken.Message);
    }

    [Fact]
    public void APunchThatForgetsTheDirtyDataAroundItIsCaught()
    {
        // The canary of the scenario above, a bug no local check sees: the data written next to
        // a hole punched inside a page never reaches the store.
        using var rig = new CacheRig(TrimPolicy.ZeroFill, broken: store => Sabotage.PunchForgettingStore(store, 16));
        byte[] written = Pattern(16 * Sector, 1);
        rig.Cache.Write(0, written, forceUnitAccess: false);
        rig.Cache.Trim(4 * Sector, 4 * Sector);
        rig.Cache.Flush();

        byte[] read = new byte[Sector];
        rig.DropCache().Read(0, read);

        Assert.NotEqual(written[..Sector], read);
    }

    [Fact]
    public void AtTheEndOfItsLifeAReadThatFindsNoRoomReadsPastTheCacheAndTheDirtyDataStays()
    {
        // A store with no space left (grown bad blocks used up the spare) cannot take the dirty
        // pages eviction would write back: a miss is then read from the store past the cache.
        var store = new FullStore(sectors: 1024);
        var cache = new LargePageCache(store, new CacheOptions { Bytes = 4 * 64 * 1024, CheckInvariants = true });
        for (int page = 0; page < 4; page++)
        {
            cache.Write(page * 64L * 1024, Pattern(Sector, (byte)(page + 1)), forceUnitAccess: false);
        }

        store.Full = true;
        Pattern(Sector, 0x77).CopyTo(store.Data.AsSpan(100 * Sector));
        byte[] missed = new byte[Sector];
        byte[] dirty = new byte[Sector];

        Assert.True(cache.Read(100 * Sector, missed));
        Assert.True(cache.Read(2 * 64 * 1024, dirty));

        Assert.Equal(Pattern(Sector, 0x77), missed);
        Assert.Equal(Pattern(Sector, 3), dirty);
        Assert.Equal(1, cache.Statistics.ReadsPastTheCache);
        Assert.Equal(4, cache.DirtySectors);
        cache.CheckInvariants();
        Assert.Throws<FtlException>(() => cache.Write(200 * Sector, Pattern(Sector, 9), forceUnitAccess: false));
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void RandomUnalignedOperationsMatchAReference(TrimPolicy policy)
    {
        for (int seed = 1; seed <= 6; seed++)
        {
            RunModel(policy, seed, operations: 1500);
        }
    }

    [Fact]
    public void AnAllDirtyCacheMakesWritesWaitForWriteBackAndThenProceed()
    {
        using var rig = new CacheRig(TrimPolicy.Split, cacheBytes: 8 * 64 * 1024);
        byte[] data = Pattern(64 * 1024, 5);
        for (int page = 0; page < 8; page++)
        {
            rig.Cache.Write(page * 64L * 1024, data, forceUnitAccess: false);
        }

        Assert.Equal(8 * 16, rig.Cache.DirtySectors);
        long before = rig.Clock.NowNanoseconds;
        for (int page = 8; page < 24; page++)
        {
            rig.Cache.Write(page * 64L * 1024, data, forceUnitAccess: false);
        }

        Assert.True(rig.Cache.Statistics.SectorsWrittenBack >= 16 * 16);
        Assert.True(rig.Clock.NowNanoseconds > before, "write-back took NAND time");
        byte[] read = new byte[64 * 1024];
        for (int page = 0; page < 24; page++)
        {
            rig.Cache.Read(page * 64L * 1024, read);
            Assert.Equal(data, read);
        }
    }

    [Fact]
    public void APartialSectorWriteReadsTheSectorFirstAndAWholeSectorWriteDoesNot()
    {
        using var rig = new CacheRig(TrimPolicy.Split);
        rig.Cache.Write(0, new byte[Sector], forceUnitAccess: false);
        Assert.Equal(0, rig.Cache.Statistics.ReadsBeforePartialWrite);

        rig.Cache.Write(Sector + 512, new byte[1024], forceUnitAccess: false);

        Assert.Equal(1, rig.Cache.Statistics.ReadsBeforePartialWrite);
    }

    [Fact]
    public void ReadingHolesCostsNoNandRead()
    {
        using var rig = new CacheRig(TrimPolicy.Split);
        long reads = rig.Nand.Statistics.PagesRead;

        rig.Cache.Read(0, new byte[64 * 1024]);

        Assert.Equal(reads, rig.Nand.Statistics.PagesRead);
    }

    [Fact]
    public void SplitFallsBackToKeepingTheLargePageWhenFramesRunOut()
    {
        // A large page of 2 MiB is 512 sectors: a split needs 511 more descriptors than an
        // arena of 8 such pages has spare, so it keeps the page whole with its holes recorded.
        using var rig = new CacheRig(
            TrimPolicy.Split,
            cacheBytes: 8 * 2 * 1024 * 1024,
            largePageBytes: 2 * 1024 * 1024
        );
        byte[] data = Pattern(2 * 1024 * 1024, 7);
        for (int page = 0; page < 4; page++)
        {
            rig.Cache.Write(page * 2L * 1024 * 1024, data, forceUnitAccess: false);
        }

        for (int page = 0; page < 4; page++)
        {
            rig.Cache.Trim((page * 2L * 1024 * 1024) + Sector, Sector);
        }

        Assert.True(rig.Cache.Statistics.SplitFallbacks > 0);
        rig.Cache.CheckInvariants();
        rig.Cache.Flush();
        byte[] read = new byte[2 * 1024 * 1024];
        rig.DropCache().Read(2L * 1024 * 1024, read);
        Assert.All(read[Sector..(2 * Sector)], b => Assert.Equal(0, b));
        Assert.Equal(data[(2 * Sector)..], read[(2 * Sector)..]);
    }

    [Fact]
    public void AFragmentedArenaServesSectorFramesInsteadOfALargeFrame()
    {
        using var rig = new CacheRig(TrimPolicy.Split, cacheBytes: 4 * 64 * 1024);
        byte[] data = Pattern(64 * 1024, 9);
        for (int page = 0; page < 4; page++)
        {
            rig.Cache.Write(page * 64L * 1024, data, forceUnitAccess: false);
        }

        // Punch every other sector of every page: each large frame splits and half of it is freed.
        for (int page = 0; page < 4; page++)
        {
            for (int s = 0; s < 16; s += 2)
            {
                rig.Cache.Trim((page * 64L * 1024) + (s * Sector), Sector);
            }
        }

        rig.Cache.Write(10 * 64L * 1024, data, forceUnitAccess: false);

        Assert.True(rig.Cache.Statistics.LargeFrameFallbacks > 0);
        rig.Cache.CheckInvariants();
        byte[] read = new byte[64 * 1024];
        rig.Cache.Read(10 * 64L * 1024, read);
        Assert.Equal(data, read);
    }

    [Fact]
    public void FreeingADirtyFrameUnwrittenIsCaught()
    {
        // The canary of the free-time check: drop a page with a dirty sector behind the cache's back.
        using var rig = new CacheRig(TrimPolicy.Split);
        rig.Cache.Write(0, new byte[Sector], forceUnitAccess: false);
        var drop = typeof(LargePageCache).GetMethod(
            "DropEntry",
            System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance
        )!;

        var error = Assert.Throws<System.Reflection.TargetInvocationException>(() => drop.Invoke(rig.Cache, [0]));

        Assert.IsType<InvariantViolationException>(error.InnerException);
        Assert.Contains("dirty and unwritten", error.InnerException!.Message, StringComparison.Ordinal);
    }

    private static void RunModel(TrimPolicy policy, int seed, int operations)
    {
        using var rig = new CacheRig(
            policy,
            cacheBytes: 12 * 64 * 1024,
            checkInvariants: true,
            eviction: seed % 2 == 0 ? EvictionPolicy.Lru : EvictionPolicy.Clock
        );
        var prng = new Prng((ulong)seed);
        long deviceBytes = Math.Min(rig.Cache.DeviceBytes, 64L * 64 * 1024);
        var reference = new byte[deviceBytes];
        byte[] buffer = new byte[96 * 1024];
        for (int op = 0; op < operations; op++)
        {
            long offset = (long)prng.NextUInt64((ulong)(deviceBytes / 512)) * 512;
            int length = (int)Math.Min(deviceBytes - offset, 512 * (1 + prng.NextInt(160)));
            string context = $"policy {policy} seed {seed} op {op} at {offset} length {length}";
            switch (prng.NextInt(100))
            {
                case < 35:
                    Span<byte> data = buffer.AsSpan(0, length);
                    FillRandom(prng, data);
                    data.CopyTo(reference.AsSpan((int)offset));
                    rig.Cache.Write(offset, data, forceUnitAccess: prng.NextInt(10) == 0);
                    break;
                case < 50:
                    rig.Cache.Trim(offset, length);
                    reference.AsSpan((int)offset, length).Clear();
                    break;
                case < 58:
                    rig.Cache.WriteZeroes(offset, length, noHole: prng.NextInt(2) == 0);
                    reference.AsSpan((int)offset, length).Clear();
                    break;
                case < 63:
                    rig.Cache.Flush();
                    break;
                case < 65:
                    rig.Cache.Flush();
                    rig.DropCache();
                    break;
                default:
                    Assert.True(rig.Cache.Read(offset, buffer.AsSpan(0, length)), context);
                    Assert.True(
                        buffer.AsSpan(0, length).SequenceEqual(reference.AsSpan((int)offset, length)),
                        $"{context}: read differs from the reference"
                    );
                    break;
            }

            rig.Cache.CheckInvariants();
        }

        byte[] all = new byte[deviceBytes];
        rig.Cache.Read(0, all);
        Assert.True(
            all.AsSpan().SequenceEqual(reference),
            $"policy {policy} seed {seed}: the device differs from the reference at the end"
        );
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        FillRandom(new Prng((ulong)seed), bytes);
        return bytes;
    }

    private static void FillRandom(Prng prng, Span<byte> bytes)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)prng.NextUInt64();
        }
    }

    /// <summary>Sectors in memory; with <see cref="Full"/>, writes fail as an FTL with no space left does.</summary>
    private sealed class FullStore(long sectors) : ISectorStore
    {
        public byte[] Data { get; } = new byte[sectors * Sector];

        public bool Full { get; set; }

        public long Sectors => sectors;

        public FtlReadResult ReadSector(long sector, Span<byte> destination)
        {
            Data.AsSpan((int)(sector * Sector), Sector).CopyTo(destination);
            return new FtlReadResult(true, 0);
        }

        public void WriteSector(long sector, ReadOnlySpan<byte> data)
        {
            if (Full)
            {
                throw new FtlException("no free block is left");
            }

            data.CopyTo(Data.AsSpan((int)(sector * Sector), Sector));
        }

        public void TrimSectors(long sector, long count) =>
            Data.AsSpan((int)(sector * Sector), (int)(count * Sector)).Clear();

        public void Flush() { }

        public bool IsMapped(long sector) => true;
    }
}
