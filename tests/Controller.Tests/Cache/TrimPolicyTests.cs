using Controller.Firmware.Cache;
using Controller.Tests.Support;

namespace Controller.Tests.Cache;

/// <summary>
/// Each hole-punch policy's own effect (DESIGN.md section 4), not only that data stays right:
/// what memory the page holds afterwards, what was zeroed, copied or written back, and what was
/// recorded when a policy could not do its work. A policy replaced by another fails here.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TrimPolicyTests
{
    private const int Sector = 4096;
    private const int PageSectors = 16;

    /// <summary>
    /// zero-fill keeps the large frame whole, zeroes the hole in place and marks it holes; the survivors stay as they
    /// were.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroFillKeepsTheLargeFrameAndZeroesTheHoleInPlace(bool dirty)
    {
        using var rig = Punched(TrimPolicy.ZeroFill, dirty);

        Assert.Equal([(0, PageSectors)], rig.Cache.FramesOf(0));
        Assert.Equal(4 * Sector, rig.Cache.Statistics.BytesZeroed);
        Assert.Equal(4, rig.Cache.HoleSectors);
        Assert.Equal(PageSectors, rig.Cache.SectorsHeld);
        Assert.Equal(dirty ? 12 : 0, rig.Cache.DirtySectors);
        Assert.Equal(
            (0L, 0L),
            (
                rig.Cache.Statistics.BytesMigrated,
                rig.Cache.Statistics.SectorsWrittenBack - WrittenBackBeforeThePunch(dirty)
            )
        );
        AssertReadsBack(rig);
    }

    /// <summary>split breaks the large frame in place into sector frames and frees those in the hole.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SplitFreesTheHolesSectorFramesAndKeepsTheRestInPlace(bool dirty)
    {
        using var rig = Punched(TrimPolicy.Split, dirty);

        (int, int)[] survivors = [.. Enumerable.Range(0, 4).Concat(Enumerable.Range(8, 8)).Select(s => (s, 1))];
        Assert.Equal(survivors, rig.Cache.FramesOf(0));
        Assert.Equal(12, rig.Cache.SectorsHeld);
        Assert.Equal(
            (0L, 0L, 0L),
            (rig.Cache.Statistics.BytesZeroed, rig.Cache.Statistics.BytesMigrated, rig.Cache.Statistics.SplitFallbacks)
        );
        Assert.Equal(dirty ? 12 : 0, rig.Cache.DirtySectors);
        AssertReadsBack(rig);
    }

    /// <summary>
    /// split with too few frame descriptors keeps the large page with its holes recorded (zero-fill
    /// for that frame) and counts the fallback, never dropping data.
    /// </summary>
    [Fact]
    public void SplitWithoutDescriptorsKeepsThePageWholeAndRecordsTheFallback()
    {
        // 2 MiB large pages of 512 sectors in an arena of eight: the frame table (a descriptor per
        // large page, and enough to split a quarter of them) takes two splits, not a third.
        using var rig = new CacheRig(TrimPolicy.Split, cacheBytes: 16L << 20, largePageBytes: 2 << 20);
        for (int page = 0; page < 3; page++)
        {
            rig.Cache.Write(page * (2L << 20), Pattern(512 * Sector, 1), forceUnitAccess: false);
        }

        for (int page = 0; page < 3; page++)
        {
            rig.Cache.Trim((page * (2L << 20)) + (4 * Sector), 4 * Sector);
        }

        Assert.Equal(1, rig.Cache.Statistics.SplitFallbacks);
        Assert.Equal(508, rig.Cache.FramesOf(1).Count);
        Assert.Equal([(0, 512)], rig.Cache.FramesOf(2));
        Assert.Equal(4 * Sector, rig.Cache.Statistics.BytesZeroed);
        Assert.Equal(3 * 508, rig.Cache.DirtySectors);
        rig.Cache.CheckInvariants();
    }

    /// <summary>
    /// migrate copies the survivors into the largest power-of-two frames they fill and frees the large frame.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MigrateCopiesTheSurvivorsIntoSmallerFramesAndFreesTheLargeOne(bool dirty)
    {
        using var rig = Punched(TrimPolicy.Migrate, dirty);

        Assert.Equal([(0, 4), (8, 8)], rig.Cache.FramesOf(0));
        Assert.Equal(12, rig.Cache.SectorsHeld);
        Assert.Equal(12 * Sector, rig.Cache.Statistics.BytesMigrated);
        Assert.Equal((0L, 0L), (rig.Cache.Statistics.BytesZeroed, rig.Cache.Statistics.MigrateFallbacks));
        Assert.Equal(dirty ? 12 : 0, rig.Cache.DirtySectors);
        AssertReadsBack(rig);
    }

    /// <summary>
    /// With the arena full (every page cached, the normal state of a busy cache), migrate makes
    /// room as the kernel's migration does, by dropping clean pages (no write-back), and migrates.
    /// When every other page is dirty there is nothing to drop: it keeps the page whole and counts
    /// the fallback.
    /// </summary>
    [Theory]
    [InlineData(false, 1, 0)]
    [InlineData(true, 0, 1)]
    public void MigrateInAFullArenaReclaimsCleanPagesAndFallsBackOnlyWhenAllAreDirty(
        bool othersClean,
        long fallbacks,
        long reclaimedAtLeast
    )
    {
        using var rig = new CacheRig(TrimPolicy.Migrate, cacheBytes: 4 * PageSectors * Sector);
        for (int page = 0; page < 4; page++)
        {
            rig.Cache.Write(
                page * PageSectors * (long)Sector,
                Pattern(PageSectors * Sector, (byte)(page + 1)),
                forceUnitAccess: false
            );
        }

        if (othersClean)
        {
            rig.Cache.Flush();
        }

        Assert.Equal(4 * PageSectors, rig.Cache.SectorsHeld);
        long writtenBack = rig.Cache.Statistics.SectorsWrittenBack;

        rig.Cache.Trim((3 * PageSectors * Sector) + (4 * Sector), 4 * Sector);

        Assert.Equal(fallbacks, rig.Cache.Statistics.MigrateFallbacks);
        Assert.True(
            rig.Cache.Statistics.CleanPagesReclaimed >= reclaimedAtLeast,
            $"{rig.Cache.Statistics.CleanPagesReclaimed} clean pages reclaimed"
        );
        Assert.Equal(othersClean ? [(0, 4), (8, 8)] : [(0, PageSectors)], rig.Cache.FramesOf(3));
        Assert.Equal(writtenBack, rig.Cache.Statistics.SectorsWrittenBack);
        Assert.Equal(othersClean ? 0 : 4 * Sector, rig.Cache.Statistics.BytesZeroed);
    }

    /// <summary>
    /// migrate tracks at most 64 pieces for one frame: a 2 MiB page whose survivors are 255
    /// separate sectors (every other one written) falls back, returns every piece it had taken, and
    /// keeps the page whole.
    /// </summary>
    [Fact]
    public void MigrateOfMoreSurvivingRunsThanItTracksFallsBackAndReturnsWhatItTook()
    {
        using var rig = new CacheRig(TrimPolicy.Migrate, cacheBytes: 8L << 20, largePageBytes: 2 << 20);
        for (int sector = 0; sector < 512; sector += 2)
        {
            rig.Cache.Write(sector * (long)Sector, Pattern(Sector, 3), forceUnitAccess: false);
        }

        Assert.Equal(512, rig.Cache.SectorsHeld);

        rig.Cache.Trim(256 * Sector, 2 * Sector);

        Assert.Equal(1, rig.Cache.Statistics.MigrateFallbacks);
        Assert.Equal(0, rig.Cache.Statistics.BytesMigrated);
        Assert.Equal([(0, 512)], rig.Cache.FramesOf(0));
        Assert.Equal(512, rig.Cache.SectorsHeld);
        Assert.Equal(255, rig.Cache.DirtySectors);
        rig.Cache.CheckInvariants();
    }

    /// <summary>evict writes back the dirty survivors and drops the page.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EvictWritesBackTheDirtySurvivorsAndDropsThePage(bool dirty)
    {
        using var rig = Punched(TrimPolicy.Evict, dirty);

        Assert.False(rig.Cache.IsCached(0));
        Assert.Equal(0, rig.Cache.SectorsHeld);
        Assert.Equal(0, rig.Cache.DirtySectors);
        Assert.Equal(dirty ? 12 : 0, rig.Cache.Statistics.SectorsWrittenBack - WrittenBackBeforeThePunch(dirty));
        Assert.Equal((0L, 0L), (rig.Cache.Statistics.BytesZeroed, rig.Cache.Statistics.BytesMigrated));
        AssertReadsBack(rig);
    }

    /// <summary>A TRIM covering the whole large page drops it under every policy, writing nothing back.</summary>
    [Theory]
    [InlineData(TrimPolicy.ZeroFill)]
    [InlineData(TrimPolicy.Split)]
    [InlineData(TrimPolicy.Migrate)]
    [InlineData(TrimPolicy.Evict)]
    public void AWholePageTrimDropsThePageInEveryPolicy(TrimPolicy policy)
    {
        using var rig = new CacheRig(policy);
        rig.Cache.Write(0, Pattern(PageSectors * Sector, 1), forceUnitAccess: false);

        rig.Cache.Trim(0, PageSectors * Sector);

        Assert.False(rig.Cache.IsCached(0));
        Assert.Equal((0, 0), (rig.Cache.SectorsHeld, rig.Cache.DirtySectors));
        Assert.Equal(
            (0L, 0L, 0L, 0L),
            (
                rig.Cache.Statistics.SectorsWrittenBack,
                rig.Cache.Statistics.BytesZeroed,
                rig.Cache.Statistics.BytesMigrated,
                rig.Cache.Statistics.PartialPagePunches
            )
        );
    }

    /// <summary>
    /// Sectors the flush of <see cref="Punched"/> wrote back: the whole page when it was flushed clean.
    /// </summary>
    private static long WrittenBackBeforeThePunch(bool dirty) => dirty ? 0 : PageSectors;

    /// <summary>Page 0 written (flushed when not <paramref name="dirty"/>), then sectors 4 to 7 punched.</summary>
    private static CacheRig Punched(TrimPolicy policy, bool dirty)
    {
        var rig = new CacheRig(policy);
        rig.Cache.Write(0, Pattern(PageSectors * Sector, 7), forceUnitAccess: false);
        if (!dirty)
        {
            rig.Cache.Flush();
        }

        Assert.Equal([(0, PageSectors)], rig.Cache.FramesOf(0));
        rig.Cache.Trim(4 * Sector, 4 * Sector);
        Assert.Equal(1, rig.Cache.Statistics.PartialPagePunches);
        rig.Cache.CheckInvariants();
        return rig;
    }

    /// <summary>
    /// The page reads as written with the hole as zeros, now and from the NAND after a flush and a drop of the cache.
    /// </summary>
    private static void AssertReadsBack(CacheRig rig)
    {
        byte[] expected = Pattern(PageSectors * Sector, 7);
        Array.Clear(expected, 4 * Sector, 4 * Sector);
        byte[] read = new byte[PageSectors * Sector];
        Assert.True(rig.Cache.Read(0, read));
        Assert.Equal(expected, read);
        rig.Cache.Flush();
        Assert.True(rig.DropCache().Read(0, read));
        Assert.Equal(expected, read);
    }

    private static byte[] Pattern(int length, byte seed)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(seed + (i / 512));
        }

        return bytes;
    }
}
