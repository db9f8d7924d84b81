using System.Reflection;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Invariants;

namespace Controller.Tests.Ftl;

/// <summary>
/// The FTL's state owners on their own: what each change does to the map, the reverse map and the
/// valid counts (<see cref="SectorMap"/>) or to the block states and the free count
/// (<see cref="BlockTable"/>), and that every check they hold throws on the damage it is for.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FtlStateTests
{
    // 4 blocks of 4 pages of 4 KiB: one sector per unit, 16 physical sectors, 4 per block.
    private static readonly FtlLayout s_layout = new(new NandGeometry(1, 1, 4, 4, 4096, 128));

    [Fact]
    public void PlacingCountsTheSectorInItsBlockAndTakingItOffUncountsIt()
    {
        SectorMap map = Map(8);
        map.Place(3, 5);

        Assert.Equal((5u, 3u, 1), (map[3], map.OwnerOf(5), map.ValidIn(1)));
        Assert.True(map.AnyInUnit(5));
        Assert.False(map.AnyInUnit(6));
        Assert.Equal(1, map.CountMapped());

        Assert.Equal(1, map.TakeOff(3, 5));
        map.Mark(3, SectorMap.InHostBuffer);
        Assert.Equal((SectorMap.InHostBuffer, SectorMap.Unmapped, 0), (map[3], map.OwnerOf(5), map.ValidIn(1)));
        map.CheckInvariants(Buffer(3), Buffer());
    }

    [Fact]
    public void ResetForgetsEverythingPlacedBefore()
    {
        SectorMap map = Map(8);
        map.Place(0, 2);
        map.Reset(8);

        map.Place(1, 2);
        Assert.Equal(1, map.ValidIn(0));
        Assert.Equal(SectorMap.Unmapped, map[0]);
    }

    [Fact]
    public void EachChangeRefusesWhatWouldBreakTheMap()
    {
        SectorMap map = Map(8);
        map.Place(0, 2);

        Assert.Contains(
            "already holds sector 0",
            Assert.Throws<InvariantViolationException>(() => map.Place(1, 2)).Message
        );
        Assert.Contains(
            "never as a physical sector",
            Assert.Throws<InvariantViolationException>(() => map.Mark(1, 7)).Message
        );
        Assert.Contains(
            "no physical copy still linked",
            Assert.Throws<InvariantViolationException>(() => map.Mark(0, SectorMap.Unmapped)).Message
        );
        Assert.Contains("disagree", Assert.Throws<InvariantViolationException>(() => map.TakeOff(1, 2)).Message);
        Field<int[]>(map, "_valid")[0] = 0;
        Assert.Contains(
            "fewer than zero valid sectors",
            Assert.Throws<InvariantViolationException>(() => map.TakeOff(0, 2)).Message
        );
    }

    [Fact]
    public void AMarkerOrAnEntryPastTheDeviceIsNotALinkedCopy()
    {
        SectorMap map = Map(8);
        map.Replay(4, (uint)s_layout.PhysicalSectors);

        map.Mark(4, SectorMap.Unmapped);

        Assert.Equal(SectorMap.Unmapped, map[4]);
    }

    [Fact]
    public void DropUnmapsOnlyTheSectorsInDroppedBlocks()
    {
        SectorMap map = Map(8);
        map.Replay(0, 1);
        map.Replay(1, 5);
        map.Replay(7, 9);
        map.Replay(2, SectorMap.InHostBuffer);

        map.Drop([false, true, false, false]);

        Assert.Equal([1u, SectorMap.Unmapped, SectorMap.InHostBuffer, 9u], new[] { map[0], map[1], map[2], map[7] });
    }

    [Fact]
    public void RebuildCountsFromTheMapAloneAndLosesWhatCannotBeRight()
    {
        SectorMap map = Map(8);
        map.Place(0, 4);
        map.Replay(0, 8);
        map.Replay(1, 8);
        map.Replay(2, 12);
        map.Replay(3, (uint)s_layout.PhysicalSectors);
        map.Replay(4, 1);

        long lost = map.Rebuild(badBlocks: [3]);

        Assert.Equal(3, lost);
        Assert.Equal((8u, 0u), (map[0], map.OwnerOf(8)));
        Assert.Equal([SectorMap.Unmapped, SectorMap.Unmapped, SectorMap.Unmapped], new[] { map[1], map[2], map[3] });
        Assert.Equal((1, 1, 0), (map.ValidIn(0), map.ValidIn(2), map.ValidIn(1)));
        Assert.Equal(SectorMap.Unmapped, map.OwnerOf(4));
        map.CheckInvariants(Buffer(), Buffer());
    }

    [Fact]
    public void TheFullCheckFindsEachKindOfDamage()
    {
        SectorMap map = Map(8);
        map.Place(0, 1);
        map.Mark(5, SectorMap.InHostBuffer);
        map.Mark(6, SectorMap.InColdBuffer);
        map.CheckInvariants(Buffer(5), Buffer(6));

        Assert.Contains("cold unit buffer", Damaged(map, m => m.CheckInvariants(Buffer(5), Buffer())));
        Assert.Contains("host unit buffer", Damaged(map, m => m.CheckInvariants(Buffer(), Buffer(6))));

        map.Replay(7, (uint)s_layout.PhysicalSectors);
        Assert.Contains(
            $"whose reverse entry is {SectorMap.Unmapped}",
            Damaged(map, m => m.CheckInvariants(Buffer(5), Buffer(6)))
        );
        map.Replay(7, SectorMap.Unmapped);

        Field<uint[]>(map, "_reverse")[9] = 3;
        Assert.Contains(
            "physical sector 9 names sector 3, which is not mapped to it",
            Damaged(map, m => m.CheckInvariants(Buffer(5), Buffer(6)))
        );
        Field<uint[]>(map, "_reverse")[9] = 100;
        Assert.Contains(
            "physical sector 9 names sector 100",
            Damaged(map, m => m.CheckInvariants(Buffer(5), Buffer(6)))
        );
        Field<uint[]>(map, "_reverse")[9] = 8;
        Assert.Contains("physical sector 9 names sector 8", Damaged(map, m => m.CheckInvariants(Buffer(5), Buffer(6))));
    }

    [Fact]
    public void TheBlockTableKeepsItsFreeCountThroughEveryChange()
    {
        var table = new BlockTable(4, 3);
        Assert.Equal(4, table.FreeCount);

        table.Take(0, BlockUse.HostData);
        table.MarkBad(1);
        table.SetState(2, BlockState.Superblock);
        Assert.Equal(1, table.FreeCount);
        Assert.Equal(
            (BlockState.Open, BlockUse.HostData, true),
            (table.StateOf(0), table.UseOf(0), table.HoldsData(0))
        );
        Assert.Contains(
            "only a free block is taken",
            Assert.Throws<InvariantViolationException>(() => table.Take(0, BlockUse.ColdData)).Message
        );

        table.Found(1, needsErase: true);
        table.Free(0, notBefore: 77);
        Assert.Equal((3, 0, BlockState.Free), (table.FreeCount, table.BadCount, table.StateOf(1)));
        Assert.Equal(
            (BlockState.Free, true, 77L, BlockUse.None),
            (table.StateOf(0), table.NeedsErase(0), table.FreeNotBefore(0), table.UseOf(0))
        );
        table.CheckInvariants();

        table.Erased(0);
        Assert.Equal((1u, false), (table.EraseCountOf(0), table.NeedsErase(0)));
        table.SawEraseCount(0, 5);
        table.SawEraseCount(0, 2);
        table.SawSequence(0, 9);
        table.SawSequence(0, 4);
        Assert.Equal((5u, 9ul), (table.EraseCountOf(0), table.LastWritten(0)));

        Field<BlockState[]>(table, "_states")[3] = BlockState.Closed;
        Assert.Contains(
            "blocks are free, the count says",
            Assert.Throws<InvariantViolationException>(table.CheckInvariants).Message
        );
    }

    private static SectorMap Map(long logicalSectors)
    {
        var map = new SectorMap(s_layout, s_layout.Nand.Blocks);
        map.Reset(logicalSectors);
        return map;
    }

    private static UnitBuffer Buffer(params uint[] sectors)
    {
        var buffer = new UnitBuffer(4);
        foreach (uint sector in sectors)
        {
            buffer.Add(sector, new byte[4096]);
        }

        return buffer;
    }

    private static string Damaged(SectorMap map, Action<SectorMap> check) =>
        Assert.Throws<InvariantViolationException>(() => check(map)).Message;

    private static T Field<T>(object owner, string name) =>
        (T)owner.GetType().GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(owner)!;
}
