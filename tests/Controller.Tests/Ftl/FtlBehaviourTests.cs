using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

public sealed class FtlBehaviourTests
{
    private readonly VirtualClock _clock = new();
    private readonly byte[] _buffer = new byte[SectorContent.Bytes];

    [Fact]
    public void ABlankNandIsFormattedAndItsCapacityFollowsTheSpareFactor()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);

        FlashTranslationLayer ftl = Mount(nand, new FtlOptions { SpareFactor = 0.2 });

        Assert.True(ftl.LastMount.Formatted);
        FtlCapacity capacity = ftl.Capacity;
        Assert.Equal(capacity.LogicalSectors, ftl.LogicalSectors);
        Assert.InRange(capacity.SpareFactor, 0.2, 0.2 + (1.0 / capacity.PhysicalSectors));
        Assert.Equal(capacity.DataBlocks * ftl.Layout.SectorsPerBlock, capacity.PhysicalSectors);
        Assert.True(capacity.DataBlocks < nand.Geometry.Blocks);
    }

    [Fact]
    public void AnUnwrittenOrTrimmedSectorReadsAsZerosWithoutANandRead()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        FlashTranslationLayer ftl = Mount(nand, new FtlOptions());
        SectorContent.Fill(_buffer, 7, 1);
        ftl.Write(7, _buffer);
        ftl.Flush();
        ftl.Trim(7, 1);
        long readsBefore = nand.Statistics.PagesRead;

        Assert.True(ftl.Read(7, _buffer).Ok);
        Assert.True(ftl.Read(8, _buffer).Ok);

        Assert.All(_buffer, b => Assert.Equal(0, b));
        Assert.Equal(readsBefore, nand.Statistics.PagesRead);
        Assert.False(ftl.IsMapped(7));
    }

    [Fact]
    public void FlushedDataSurvivesARemountAndRecoveryStartsFromACheckpointReadingLittle()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var options = new FtlOptions { CheckpointIntervalPages = 64 };
        FlashTranslationLayer ftl = Mount(nand, options);
        for (long sector = 0; sector < 600; sector++)
        {
            SectorContent.Fill(_buffer, sector, (int)sector + 1);
            ftl.Write(sector, _buffer);
        }

        ftl.Flush();
        nand.PowerCut();
        nand.PowerOn();
        FlashTranslationLayer remounted = Mount(nand, options);

        Assert.False(remounted.LastMount.Formatted);
        Assert.True(remounted.LastMount.FromCheckpoint);
        Assert.Equal((1, 0), (remounted.Statistics.Recoveries, remounted.Statistics.FullScans));
        Assert.True(remounted.LastMount.RecoveryPageReads < nand.Geometry.Pages / 4, $"recovery read {remounted.LastMount.RecoveryPageReads} of {nand.Geometry.Pages} pages");
        for (long sector = 0; sector < 600; sector++)
        {
            Assert.True(remounted.Read(sector, _buffer).Ok);
            Assert.Equal((true, sector, (int)sector + 1), SectorContent.Decode(_buffer));
        }
    }

    [Fact]
    public void ATrimOfMappedSectorsIsJournaledAndATrimOfNothingIsNot()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        FlashTranslationLayer ftl = Mount(nand, new FtlOptions());
        for (long sector = 0; sector < 8; sector++)
        {
            Write(ftl, sector, 3);
        }

        ftl.Flush();
        long journalUnits = ftl.Statistics.JournalUnitsProgrammed;

        ftl.Trim(100, 4);
        ftl.Flush();
        Assert.Equal((0L, journalUnits), (ftl.Statistics.SectorsTrimmed, ftl.Statistics.JournalUnitsProgrammed));

        ftl.Trim(0, 4);
        ftl.Flush();
        Assert.Equal((4L, journalUnits + 1), (ftl.Statistics.SectorsTrimmed, ftl.Statistics.JournalUnitsProgrammed));

        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => ftl.Trim(ftl.LogicalSectors - 2, 3));
        Assert.Contains($"sectors {ftl.LogicalSectors - 2}..{ftl.LogicalSectors} are outside", outside.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => ftl.Trim(-1, 1));

        nand.PowerCut();
        nand.PowerOn();
        FlashTranslationLayer remounted = Mount(nand, new FtlOptions());
        for (long sector = 0; sector < 8; sector++)
        {
            Assert.Equal(sector >= 4, remounted.IsMapped(sector));
        }
    }

    [Fact]
    public void WithoutAValidCheckpointRecoveryScansEveryBlock()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var options = new FtlOptions { CheckpointIntervalPages = 1 << 20 };
        FlashTranslationLayer ftl = Mount(nand, options);
        for (long sector = 0; sector < 300; sector++)
        {
            SectorContent.Fill(_buffer, sector, 5);
            ftl.Write(sector, _buffer);
        }

        ftl.Flush();
        IReadOnlyList<int> checkpointBlocks = ftl.CheckpointBlocks;
        nand.PowerCut();
        nand.PowerOn();
        foreach (int block in checkpointBlocks)
        {
            _clock.Await(nand.EraseBlock(block));
        }

        FlashTranslationLayer remounted = Mount(nand, options);

        Assert.False(remounted.LastMount.FromCheckpoint);
        Assert.Equal(1, remounted.Statistics.FullScans);
        Assert.False(remounted.IsMapped(300), "a sector never written is unmapped after a full scan");
        for (long sector = 0; sector < 300; sector++)
        {
            Assert.True(remounted.Read(sector, _buffer).Ok);
            Assert.Equal((true, sector, 5), SectorContent.Decode(_buffer));
        }
    }

    [Fact]
    public void ANandHoldingSomethingElseIsRefusedAndLeftAlone()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] foreign = Nands.Pattern(nand.Geometry, 3);
        nand.ProgramPage(new PageAddress(40, 0), foreign, Nands.Spare(nand.Geometry, 0x11));

        var error = Assert.Throws<FtlMountException>(() => Mount(nand, new FtlOptions()));

        Assert.Contains("block 40 page 0", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, nand.Statistics.BlocksErased);
        Assert.Equal(1, nand.Statistics.PagesProgrammed);
    }

    [Fact]
    public void GarbageCollectionKeepsAFullDeviceWritableAndCorrect()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        FlashTranslationLayer ftl = Mount(nand, new FtlOptions { SpareFactor = 0.1 });
        var prng = new Prng(5);
        var generations = new int[ftl.LogicalSectors];
        for (long sector = 0; sector < ftl.LogicalSectors; sector++)
        {
            Write(ftl, sector, generations[sector] = 1);
        }

        for (int i = 0; i < 8 * ftl.LogicalSectors; i++)
        {
            long sector = (long)prng.NextUInt64((ulong)ftl.LogicalSectors);
            Write(ftl, sector, ++generations[sector]);
        }

        Assert.True(ftl.Statistics.GcVictims > 100);
        for (long sector = 0; sector < ftl.LogicalSectors; sector++)
        {
            Assert.True(ftl.Read(sector, _buffer).Ok);
            Assert.Equal((true, sector, generations[sector]), SectorContent.Decode(_buffer));
        }
    }

    [Fact]
    public void AJournalOfManySmallFlushedTrimsNeverOutgrowsTheMetadataReserve()
    {
        // Each flush with a trim pending programs a journal unit; without a checkpoint when the
        // journal fills its share of the reserve, this ran the device out of free blocks.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FlashTranslationLayer ftl = Mount(nand, new FtlOptions { SpareFactor = 0.1 });
        var prng = new Prng(4);
        for (int i = 0; i < 20_000; i++)
        {
            long sector = (long)prng.NextUInt64((ulong)ftl.LogicalSectors - 4);
            Write(ftl, sector, i + 1);
            ftl.Trim(sector, 4);
            ftl.Flush();
        }

        Assert.True(ftl.Statistics.JournalUnitsProgrammed > 1000);
        Assert.True(ftl.Statistics.Checkpoints > 10);
    }

    [Fact]
    public void BlocksThatFailAreRetiredAndNoDataIsLost()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "faults.programFailProbability=0.0003", "faults.eraseFailProbability=0.001");
        var options = new FtlOptions { SpareFactor = 0.25, CheckpointIntervalPages = 128 };
        FlashTranslationLayer ftl = Mount(nand, options);
        var prng = new Prng(9);
        var generations = new int[ftl.LogicalSectors];
        for (int i = 0; i < 6 * ftl.LogicalSectors; i++)
        {
            long sector = (long)prng.NextUInt64((ulong)ftl.LogicalSectors);
            Write(ftl, sector, ++generations[sector]);
        }

        ftl.Flush();
        Assert.True(ftl.Wear().BadBlocks > 0, "some blocks failed and were retired");
        Assert.True(nand.Statistics.ProgramFailures > 0);
        nand.PowerCut();
        nand.PowerOn();
        FlashTranslationLayer remounted = Mount(nand, options);
        Assert.True(remounted.Wear().BadBlocks >= ftl.Wear().BadBlocks - 1, "the bad-block table survived the power cut");
        for (long sector = 0; sector < remounted.LogicalSectors; sector++)
        {
            Assert.True(remounted.Read(sector, _buffer).Ok);
            Assert.Equal(generations[sector], SectorContent.Decode(_buffer).Generation);
        }
    }

    [Fact]
    public void StaticWearLevellingBoundsTheEraseSpreadUnderASkewedWorkload()
    {
        (uint levelled, uint unlevelled) = (Spread(16), Spread(1_000_000));

        Assert.True(levelled <= 3 * 16, $"erase spread {levelled} with wear levelling at 16");
        Assert.True(unlevelled > levelled, $"without static levelling the spread is {unlevelled}, with it {levelled}");

        uint Spread(int spread)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock);
            FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, new Prng(1), new FtlOptions { SpareFactor = 0.15, WearLevelingSpread = spread });
            var prng = new Prng(2);
            long hot = ftl.LogicalSectors / 10;
            byte[] buffer = new byte[SectorContent.Bytes];
            for (long sector = 0; sector < ftl.LogicalSectors; sector++)
            {
                SectorContent.Fill(buffer, sector, 1);
                ftl.Write(sector, buffer);
            }

            for (int i = 0; i < 40 * ftl.LogicalSectors; i++)
            {
                long sector = (long)prng.NextUInt64((ulong)hot);
                SectorContent.Fill(buffer, sector, 2 + i);
                ftl.Write(sector, buffer);
            }

            WearReport wear = ftl.Wear();
            return wear.MaxErases - wear.MinErases;
        }
    }

    private void Write(FlashTranslationLayer ftl, long sector, int generation)
    {
        SectorContent.Fill(_buffer, sector, generation);
        ftl.Write(sector, _buffer);
    }

    private FlashTranslationLayer Mount(EmulatedNand nand, FtlOptions options) =>
        FlashTranslationLayer.Mount(nand, _clock, new Prng(1), options);
}
