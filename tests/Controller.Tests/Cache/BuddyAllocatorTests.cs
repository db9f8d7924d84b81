using System.Reflection;
using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Invariants;
using Controller.Firmware.Loop;

namespace Controller.Tests.Cache;

[Trait("Category", "Unit")]
public sealed class BuddyAllocatorTests
{
    [Fact]
    public void FreeingEverythingMergesBackIntoLargeBlocks()
    {
        var buddy = new BuddyAllocator(64, 4);
        var blocks = new List<(int Block, int Order)>();
        for (int i = 0; i < 64; i++)
        {
            blocks.Add((buddy.Allocate(0), 0));
        }

        Assert.Equal(0, buddy.FreeUnits);
        Assert.Equal(-1, buddy.Allocate(0));
        foreach ((int block, int order) in blocks)
        {
            buddy.Free(block, order);
        }

        buddy.CheckConsistency();
        Assert.Equal(64, buddy.FreeUnits);
        Assert.All(Enumerable.Range(0, 4), _ => Assert.NotEqual(-1, buddy.Allocate(4)));
    }

    [Fact]
    public void BlocksAreAlignedToTheirSize()
    {
        var buddy = new BuddyAllocator(256, 6);
        var prng = new Prng(3);
        for (int i = 0; i < 40; i++)
        {
            int order = prng.NextInt(7);
            int block = buddy.Allocate(order);
            if (block >= 0)
            {
                Assert.Equal(0, block % (1 << order));
            }
        }
    }

    [Fact]
    public void FragmentationCanDenyALargeBlockWhileSectorsAreFree()
    {
        var buddy = new BuddyAllocator(32, 4);
        int[] sectors = [.. Enumerable.Range(0, 32).Select(_ => buddy.Allocate(0))];
        for (int i = 0; i < 32; i += 2)
        {
            buddy.Free(sectors[i], 0);
        }

        Assert.Equal(16, buddy.FreeUnits);
        Assert.Equal(-1, buddy.Allocate(1));
        Assert.Equal(-1, buddy.Allocate(4));
        Assert.NotEqual(-1, buddy.Allocate(0));
    }

    [Fact]
    public void AFrameFreedTwiceIsCaught()
    {
        var buddy = new BuddyAllocator(16, 4);
        int block = buddy.Allocate(2);
        buddy.Free(block, 2);

        var error = Assert.Throws<InvariantViolationException>(() => buddy.Free(block, 2));

        Assert.Contains("freed twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFrameFreedWithTheWrongOrderIsCaught()
    {
        var buddy = new BuddyAllocator(16, 4);
        int block = buddy.Allocate(2);

        Assert.Throws<InvariantViolationException>(() => buddy.Free(block, 1));
    }

    [Fact]
    public void ASplitBlockIsFreedPartByPartAndMergesBack()
    {
        var buddy = new BuddyAllocator(16, 4);
        int block = buddy.Allocate(4);

        buddy.Split(block, 4, 0);
        for (int part = 15; part >= 0; part--)
        {
            buddy.Free(block + part, 0);
        }

        buddy.CheckConsistency();
        Assert.Equal(0, buddy.Allocate(4));
    }

    [Fact]
    public void RandomAllocationsAndFreesKeepTheFreeListsConsistent()
    {
        var buddy = new BuddyAllocator(512, 5);
        var prng = new Prng(11);
        var live = new List<(int Block, int Order)>();
        for (int step = 0; step < 5000; step++)
        {
            if (live.Count > 0 && prng.NextInt(2) == 0)
            {
                int index = prng.NextInt(live.Count);
                buddy.Free(live[index].Block, live[index].Order);
                live.RemoveAt(index);
            }
            else
            {
                int order = prng.NextInt(6);
                int block = buddy.Allocate(order);
                if (block >= 0)
                {
                    Assert.DoesNotContain(live, b =>
                        block < b.Block + (1 << b.Order) && b.Block < block + (1 << order)
                    );
                    live.Add((block, order));
                }
            }

            if (step % 250 == 0)
            {
                buddy.CheckConsistency();
            }
        }

        Assert.Equal(512 - live.Sum(b => 1 << b.Order), buddy.FreeUnits);
    }

    [Theory]
    [InlineData(0, 2, "an arena of 0 units is not a whole number of blocks of 2^2 units")]
    [InlineData(6, 2, "an arena of 6 units is not a whole number of blocks of 2^2 units")]
    public void AnArenaThatIsNotWholeBlocksIsRefused(int units, int maxOrder, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => new BuddyAllocator(units, maxOrder));

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1, 0, "frame at unit -1 freed as order 0, allocated as order -1")]
    [InlineData(16, 0, "frame at unit 16 freed as order 0, allocated as order -1")]
    [InlineData(8, 1, "frame at unit 8 of order 1 freed twice, or never allocated")]
    [InlineData(0, 1, "frame at unit 0 freed as order 1, allocated as order 2")]
    public void AFreeOfABlockThatIsNotAllocatedAsSaidNamesWhatIsWrong(int block, int order, string message)
    {
        var buddy = new BuddyAllocator(16, 2);
        Assert.Equal(0, buddy.Allocate(2));

        var error = Assert.Throws<InvariantViolationException>(() => buddy.Free(block, order));

        Assert.Equal(message, error.Message);
        Assert.Equal(12, buddy.FreeUnits);
    }

    [Theory]
    [InlineData(0, 1, 0)]
    [InlineData(0, 2, 3)]
    [InlineData(0, 2, -1)]
    [InlineData(16, 2, 0)]
    [InlineData(4, 2, 0)]
    public void ASplitOfABlockThatIsNotAllocatedAsSaidIsRefused(int block, int order, int into)
    {
        var buddy = new BuddyAllocator(16, 2);
        Assert.Equal(0, buddy.Allocate(2));

        var error = Assert.Throws<InvariantViolationException>(() => buddy.Split(block, order, into));

        Assert.Equal($"cannot split the block at unit {block} of order {order} into order {into}", error.Message);
        buddy.Free(0, 2);
        buddy.CheckConsistency();
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(21)]
    public void AMaximumOrderOutsideZeroToTwentyIsRefusedByName(int maxOrder)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyAllocator(1 << 21, maxOrder));

        Assert.Equal("maxOrder", error.ParamName);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3)]
    public void AnAllocationOfAnOrderOutsideTheArenasIsRefusedByName(int order)
    {
        var buddy = new BuddyAllocator(16, 2);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => buddy.Allocate(order));

        Assert.Equal("order", error.ParamName);
        Assert.Equal(16, buddy.FreeUnits);
    }

    [Fact]
    public void ASplitIntoHalvesFreesAsTwoHalvesAndASplitIntoItsOwnOrderChangesNothing()
    {
        var buddy = new BuddyAllocator(16, 2);
        Assert.Equal(0, buddy.Allocate(2));

        buddy.Split(0, 2, 2);
        buddy.Split(0, 2, 1);
        buddy.Free(0, 1);
        buddy.CheckConsistency();
        buddy.Free(2, 1);

        buddy.CheckConsistency();
        Assert.Equal(16, buddy.FreeUnits);
        Assert.Equal(0, buddy.Allocate(2));
    }

    /// <summary>Each breach the consistency check looks for, made by hand, is named (the check's canaries).</summary>
    [Theory]
    [InlineData("two lists", "unit 5 is on two free lists")]
    [InlineData("overlap", "allocated frame at unit 5 overlaps a free block")]
    [InlineData("overlap of two units", "allocated frame at unit 6 overlaps a free block")]
    [InlineData("count", "free lists hold 12 units, the count says 13")]
    [InlineData("linkage", "free list of order 2 is inconsistent at unit 8")]
    public void TheConsistencyCheckNamesEachBreach(string breach, string message)
    {
        var buddy = new BuddyAllocator(16, 2);
        Assert.Equal(0, buddy.Allocate(2));
        T Field<T>(string name) =>
            (T)typeof(BuddyAllocator).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buddy)!;
        buddy.CheckConsistency();
        switch (breach)
        {
            case "two lists":
                // Unit 5, inside the free block at 4 of order 2, listed again alone at order 0.
                Field<int[]>("_heads")[0] = 5;
                Field<sbyte[]>("_freeOrder")[5] = 0;
                Field<int[]>("_next")[5] = -1;
                Field<int[]>("_previous")[5] = -1;
                break;
            case "overlap":
                Field<sbyte[]>("_allocatedOrder")[5] = 0;
                break;
            case "overlap of two units":
                // A frame of order 1 at unit 6, inside the free block at 4 of order 2.
                Field<sbyte[]>("_allocatedOrder")[6] = 1;
                break;
            case "count":
                typeof(BuddyAllocator).GetProperty(nameof(BuddyAllocator.FreeUnits))!.SetValue(buddy, 13);
                break;
            default:
                Field<int[]>("_previous")[8] = 12;
                break;
        }

        var error = Assert.Throws<InvariantViolationException>(buddy.CheckConsistency);

        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void TheConsistencyCheckCatchesADamagedFreeList()
    {
        // The canary of the check: mark a listed free block with the wrong order, as a bug would.
        var buddy = new BuddyAllocator(16, 2);
        buddy.Allocate(0);
        var freeOrder = (sbyte[])
            typeof(BuddyAllocator)
                .GetField("_freeOrder", BindingFlags.NonPublic | BindingFlags.Instance)!
                .GetValue(buddy)!;
        int listed = Array.FindIndex(freeOrder, order => order == 1);
        freeOrder[listed] = 0;

        Assert.Throws<InvariantViolationException>(buddy.CheckConsistency);
    }
}
