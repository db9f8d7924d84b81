using System.Reflection;
using Controller.Firmware.Cache;
using Controller.Firmware.Invariants;

namespace Controller.Tests.Cache;

/// <summary>
/// The cache's dirty sectors: counts follow the bits, the order of expiry follows the instants
/// entries went dirty (written-back entries drop out of it), and the per-entry check catches a
/// count that disagrees with the bits.
/// </summary>
[Trait("Category", "Unit")]
public sealed class DirtyMapTests
{
    [Fact]
    public void CountsFollowTheBitsAndMarkingTwiceCountsOnce()
    {
        var map = new DirtyMap(entries: 4, words: 2, ordered: true);
        map.Reset(1);

        map.Mark(1, 3, now: 10);
        map.Mark(1, 3, now: 20);
        map.Mark(1, 70, now: 30);

        Assert.Equal(2, map.Count);
        Assert.True(map.IsDirty(1, 70));
        Assert.False(map.IsDirty(1, 4));
        Assert.True(map.AnyIn(1));
        map.Clean(1, 3);
        map.Clean(1, 3);
        map.Clean(1, 70);
        Assert.Equal(0, map.Count);
        Assert.False(map.AnyIn(1));
        map.CheckEntry(page: 5, entry: 1);
    }

    [Fact]
    public void TheOldestEntryComesFirstAndOneWrittenBackSinceIsPassedOver()
    {
        var map = new DirtyMap(entries: 4, words: 1, ordered: true);
        map.Mark(2, 0, now: 100);
        map.Mark(0, 0, now: 200);
        map.Mark(3, 0, now: 300);

        map.Clean(2, 0);

        Assert.Equal(200, map.OldestSince());
        Assert.Equal(0, map.TakeOldest());
        Assert.Equal(300, map.OldestSince());
        map.Mark(2, 1, now: 400);
        Assert.Equal(3, map.TakeOldest());
        Assert.Equal(400, map.OldestSince());
    }

    [Fact]
    public void ResetLeavesANewEntryClean()
    {
        var map = new DirtyMap(entries: 2, words: 2, ordered: false);
        map.Mark(1, 100, now: 1);
        map.Clean(1, 100);
        map.Mark(1, 3, now: 2);

        map.Reset(1);

        Assert.False(map.IsDirty(1, 3));
        Assert.False(map.AnyIn(1));
        map.CheckEntry(page: 4, entry: 1);
    }

    [Fact]
    public void TheCheckCountsTheEntrysOwnWords()
    {
        var map = new DirtyMap(entries: 2, words: 2, ordered: false);
        map.Mark(0, 1, now: 1);
        map.Mark(0, 2, now: 1);
        map.Mark(1, 65, now: 1);

        map.CheckEntry(page: 0, entry: 0);
        map.CheckEntry(page: 1, entry: 1);
    }

    [Fact]
    public void WithoutOrderNothingExpires()
    {
        var map = new DirtyMap(entries: 2, words: 1, ordered: false);
        map.Mark(0, 0, now: 1);

        Assert.Null(map.OldestSince());
        Assert.Equal(1, map.Count);
    }

    [Fact]
    public void ACountThatDisagreesWithTheBitsIsCaught()
    {
        var map = new DirtyMap(entries: 2, words: 1, ordered: false);
        map.Mark(1, 5, now: 7);
        map.CheckEntry(page: 9, entry: 1);

        ((int[])typeof(DirtyMap).GetField("_perEntry", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(map)!)[
            1
        ]++;

        var error = Assert.Throws<InvariantViolationException>(() => map.CheckEntry(page: 9, entry: 1));
        Assert.Equal("page 9 has 1 dirty sectors, its count says 2 (dirty since 7)", error.Message);
    }
}
