using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

[Trait("Category", "Unit")]
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
        Assert.True(
            remounted.LastMount.RecoveryPageReads < nand.Geometry.Pages / 4,
            $"recovery read {remounted.LastMount.RecoveryPageReads} of {nand.Geometry.Pages} pages"
        );
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
        WriteAll(ftl, 8, 3);

        ftl.Flush();
        long journalUnits = ftl.Statistics.JournalUnitsProgrammed;

        ftl.Trim(100, 4);
        ftl.Flush();
        Assert.Equal((0L, journalUnits), (ftl.Statistics.SectorsTrimmed, ftl.Statistics.JournalUnitsProgrammed));

        ftl.Trim(0, 4);
        ftl.Flush();
        Assert.Equal((4L, journalUnits + 1), (ftl.Statistics.SectorsTrimmed, ftl.Statistics.JournalUnitsProgrammed));
        ftl.Flush();
        Assert.Equal(journalUnits + 1, ftl.Statistics.JournalUnitsProgrammed);

        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => ftl.Trim(ftl.LogicalSectors - 2, 3));
        Assert.Contains(
            $"sectors {ftl.LogicalSectors - 2}..{ftl.LogicalSectors} are outside",
            outside.Message,
            StringComparison.Ordinal
        );
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
    public void TrimsThatFillJournalUnitsAreSplitOverThemAndAllSurvive()
    {
        // A 4 KiB unit holds 170 journal records of 24 bytes: 340 trims between two flushes fill
        // exactly two, and nothing is left over for a third.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, 680, 4);

        ftl.Flush();
        long journalUnits = ftl.Statistics.JournalUnitsProgrammed;
        for (long sector = 0; sector < 680; sector += 2)
        {
            ftl.Trim(sector, 1);
        }

        ftl.Flush();
        Assert.Equal(journalUnits + 2, ftl.Statistics.JournalUnitsProgrammed);
        nand.PowerCut();
        nand.PowerOn();
        FlashTranslationLayer remounted = Mount(nand, options);
        Assert.True(remounted.LastMount.FromCheckpoint);
        Assert.Equal(ftl.Capacity, remounted.Capacity);
        for (long sector = 0; sector < 680; sector++)
        {
            Assert.Equal(sector % 2 == 1, remounted.IsMapped(sector));
        }
    }

    [Fact]
    public void WithoutAValidCheckpointRecoveryScansEveryBlock()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
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
        AssertReadsBack(remounted, 300, _ => 5);
    }

    [Fact]
    public void RecoveriesNeverGiveASequenceNumberTwiceAndAppendSuperblocksInOrder()
    {
        // Replay orders units by sequence number, so one handed out twice lets an old unit win
        // over a newer one. Cut after host writes (the newest sequence is in a data unit) and
        // right after a mount's checkpoint (the newest is the superblock's), enough times for the
        // superblock to move from its first block to its second, and look at the NAND each time.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        int superblockBlocksSeen = 0;
        NandUnit? newestSuperblock = null;
        for (int round = 0; round < 12; round++)
        {
            WriteAll(ftl, 40, round + 1);

            ftl.Flush();
            for (int cut = 0; cut < 2; cut++)
            {
                nand.PowerCut();
                nand.PowerOn();
                ftl = Mount(nand, options);
                List<NandUnit> units = ReadUnits(nand, ftl.Layout);
                AssertSequencesUnique(units);
                superblockBlocksSeen = Math.Max(superblockBlocksSeen, AssertSuperblocksInOrder(units, ftl.Layout));

                // A mount writes one superblock unit, right after the newest one before the cut.
                NandUnit newest = units
                    .Where(u => u.Metadata.Kind == UnitKind.Superblock)
                    .MaxBy(u => u.Metadata.Sequence)!;
                if (newestSuperblock is { } before)
                {
                    Assert.True(
                        Follows(before, newest, ftl.Layout),
                        $"after the cut the superblock went to block {newest.Block} unit {newest.Unit}; the newest before was block {before.Block} unit {before.Unit}"
                    );
                }

                newestSuperblock = newest;
            }
        }

        Assert.Equal(2, superblockBlocksSeen);
        AssertReadsBack(ftl, 40, _ => 12);
    }

    [Fact]
    public void MetadataUnitsCarryNoSectorsAndNoStaleBytes()
    {
        // Journal and checkpoint units are written from the FTL's scratch unit, which has held
        // host data: what they do not fill must be zeros, and their slots must name no sector.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, 64, 9);

        ftl.Flush();
        for (long sector = 0; sector < 64; sector++)
        {
            Assert.True(ftl.Read(sector, _buffer).Ok);
        }

        ftl.Trim(3, 5);
        ftl.Flush();
        ftl.CheckpointNow();

        // Recovery reads data units (and their slots) into the same scratch, then checkpoints.
        for (long sector = 100; sector < 120; sector++)
        {
            Write(ftl, sector, 10);
        }

        ftl.Flush();
        nand.PowerCut();
        nand.PowerOn();
        ftl = Mount(nand, options);
        Assert.True(ftl.LastMount.ReplayedUnits > 0);
        List<NandUnit> units = ReadUnits(nand, ftl.Layout);
        List<NandUnit> journals = units.Where(u => u.Metadata.Kind == UnitKind.Journal).ToList();
        Assert.NotEmpty(journals);
        Assert.Contains(units, u => u.Metadata.Kind == UnitKind.Checkpoint);
        foreach (NandUnit unit in units.Where(u => u.Metadata.Kind != UnitKind.Data))
        {
            Assert.True(
                unit.Slots.All(slot => slot == PageMetadata.EmptySlot),
                $"{unit.Metadata.Kind} unit at block {unit.Block} unit {unit.Unit} names sectors {string.Join(',', unit.Slots)}"
            );
        }

        foreach (NandUnit journal in journals)
        {
            int used = (int)journal.Metadata.Aux * JournalRecord.Bytes;
            Assert.True(used > 0);
            Assert.False(
                journal.Data.AsSpan(used).ContainsAnyExcept((byte)0),
                $"journal unit at block {journal.Block} unit {journal.Unit} has stale bytes after its {journal.Metadata.Aux} records"
            );
        }
    }

    [Fact]
    public void ACheckpointWithAPartUnreadableIsPassedOverForTheOneBefore()
    {
        using EmulatedNand emulated = Nands.Tiny(_clock);
        var nand = new UnreadablePagesNand(emulated);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, 300, 1);

        ftl.CheckpointNow();
        WriteAll(ftl, 50, 2);

        ftl.CheckpointNow();
        emulated.PowerCut();
        emulated.PowerOn();

        // The newest checkpoint's second part: the newest checkpoint unit with part number 1.
        NandUnit part = ReadUnits(emulated, ftl.Layout)
            .Where(u => u.Metadata.Kind == UnitKind.Checkpoint && u.Metadata.Aux == 1)
            .MaxBy(u => u.Metadata.Sequence)!;
        Assert.NotNull(part);
        nand.Unreadable.Add(ftl.Layout.PageOf(part.Block, part.Unit, 0));
        FlashTranslationLayer remounted = Mount(nand, options);

        Assert.True(remounted.LastMount.FromCheckpoint, "the checkpoint before is whole and is used");
        Assert.Equal(0, remounted.Statistics.FullScans);
        AssertReadsBack(remounted, 300, sector => sector < 50 ? 2 : 1);
    }

    [Fact]
    public void ABlockRetiredAfterTheCheckpointIsReplayedAsBadAndTrimsNothing()
    {
        // The journal's bad-block record names a block in the field a trim record uses for a
        // sector: replayed as a trim, it would unmap the sector whose number is the block's.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, 300, 1);

        ftl.CheckpointNow();
        nand.FailNext(programs: 1, erases: 0);
        WriteAll(ftl, 300, 2);

        while (ftl.DoBackgroundWork()) { }

        ftl.Flush();
        int bad = ftl.Wear().BadBlocks;
        Assert.Equal(1, bad);
        nand.PowerCut();
        nand.PowerOn();
        FlashTranslationLayer remounted = Mount(nand, options);

        Assert.Equal(bad, remounted.Wear().BadBlocks);
        AssertReadsBack(remounted, 300, _ => 2);
    }

    [Fact]
    public void AJournalUnitIsReadNoFurtherThanItsCountOrItsUnit()
    {
        // Two journal units the FTL did not write, each with a valid CRC: one holds two trim
        // records but counts one; the other counts more records than a unit holds and is full.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = WriteCheckpointAndCut(nand, options, 300);
        int perUnit = ftl.Layout.UnitBytes / JournalRecord.Bytes;
        ForgeJournalUnits(
            nand,
            ftl.Layout,
            (1, [(JournalRecordKind.Trim, 5, 1), (JournalRecordKind.Trim, 7, 1)]),
            (1000, [.. Enumerable.Range(100, perUnit).Select(s => (JournalRecordKind.Trim, (uint)s, 1u))])
        );
        FlashTranslationLayer remounted = Mount(nand, options);

        for (long sector = 0; sector < 300; sector++)
        {
            bool trimmed = sector == 5 || (sector >= 100 && sector < 100 + perUnit);
            Assert.True(
                trimmed != remounted.IsMapped(sector),
                $"sector {sector} should be {(trimmed ? "trimmed" : "mapped")}"
            );
        }

        Assert.Equal(0, remounted.Statistics.SectorsLost);
    }

    [Fact]
    public void AMapEntryIntoARetiredBlockIsDroppedAndCountedAsLost()
    {
        // Never written by the FTL itself: a bad-block record for a block that still holds
        // mapped sectors. Recovery must drop those entries, count them and keep the map whole.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = WriteCheckpointAndCut(nand, options, 300);
        List<NandUnit> units = ReadUnits(nand, ftl.Layout);
        NandUnit first = units.Where(u => u.Metadata.Kind == UnitKind.Data).MinBy(u => u.Metadata.Sequence)!;
        var lost = units
            .Where(u => u.Block == first.Block && u.Metadata.Kind == UnitKind.Data)
            .SelectMany(u => u.Slots)
            .Where(s => s != PageMetadata.EmptySlot)
            .Select(s => (long)s)
            .ToHashSet();
        Assert.NotEmpty(lost);
        ForgeJournalUnits(nand, ftl.Layout, (1, [(JournalRecordKind.BadBlock, (uint)first.Block, 1)]));
        FlashTranslationLayer remounted = Mount(nand, options);

        Assert.Equal(lost.Count, remounted.Statistics.SectorsLost);
        Assert.Equal(1, remounted.Wear().BadBlocks);
        remounted.CheckInvariants();
        for (long sector = 0; sector < 300; sector++)
        {
            Assert.True(lost.Contains(sector) != remounted.IsMapped(sector), $"sector {sector}");
        }
    }

    [Fact]
    public void RemountingAgainAndAgainLeaksNoMetadataBlock()
    {
        // Each recovery checkpoints into a metadata block of its own; the blocks it found holding
        // older journal and checkpoint units must be let go once that checkpoint is durable, or a
        // device that is remounted often runs out of free blocks. Twice as many remounts as blocks.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        int remounts = 2 * nand.Geometry.Blocks;
        for (int i = 0; i < remounts; i++)
        {
            Write(ftl, i % 40, i + 1);
            Write(ftl, 40 + (i % 40), i + 1);
            ftl.Trim(40 + (i % 40), 1);
            ftl.Flush();
            nand.PowerCut();
            nand.PowerOn();
            ftl = Mount(nand, options);
        }

        ftl.CheckInvariants();
        AssertReadsBack(ftl, 40, sector => (int)sector + (40 * ((remounts - 1 - (int)sector) / 40)) + 1);
        Assert.False(ftl.IsMapped(40));
    }

    [Fact]
    public void MetadataBlocksFoundByRecoveryAreLetGoAndReused()
    {
        // The blocks holding the journal and checkpoints from before the cut are superseded by
        // the mount's own checkpoint: they go back to the free pool and are reused like any other.
        using EmulatedNand nand = Nands.Tiny(_clock);
        FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, 300, 1);

        ftl.CheckpointNow();
        ftl.Trim(0, 10);
        ftl.Flush();
        nand.PowerCut();
        nand.PowerOn();
        List<NandUnit> beforeMount = ReadUnits(nand, ftl.Layout);
        ulong newestBeforeMount = beforeMount.Max(u => u.Metadata.Sequence);
        HashSet<int> oldMetadata = beforeMount
            .Where(u => u.Metadata.Kind is UnitKind.Checkpoint or UnitKind.Journal)
            .Select(u => u.Block)
            .ToHashSet();
        ftl = Mount(nand, options);
        for (long i = 0; i < 3 * ftl.LogicalSectors; i++)
        {
            Write(ftl, i % ftl.LogicalSectors, 2 + (int)(i / ftl.LogicalSectors));
        }

        ftl.Flush();
        List<NandUnit> left = ReadUnits(nand, ftl.Layout)
            .Where(u => oldMetadata.Contains(u.Block) && u.Metadata.Sequence <= newestBeforeMount)
            .ToList();
        Assert.True(
            left.Count == 0,
            $"units from before the mount are still on blocks {string.Join(',', left.Select(u => u.Block).Distinct())}, never reused"
        );
    }

    [Fact]
    public void AJournalBlockFoundByRecoveryIsNotReusedBeforeTheNewCheckpointIsDurable()
    {
        // A journal unit that opened a never-used block (erase count 0, the lowest index): the
        // block the allocator would take first. Recovery must keep it as metadata until its own
        // checkpoint is durable; a cut walked through every NAND operation of that recovery then
        // never loses the trim it holds.
        bool recoveryFinished = false;
        for (int operation = 1; !recoveryFinished; operation++)
        {
            Assert.True(operation < 500, "a recovery of a tiny device takes fewer than 500 NAND operations");
            using EmulatedNand inner = Nands.Tiny(_clock);
            var nand = new FaultingNand(inner, _clock, new Prng(1), new Controller.Hosting.ExecutionTrace(null));
            FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
            FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, _clock, new Prng(2), options);
            WriteAll(ftl, 100, 1);
            ftl.CheckpointNow();
            inner.PowerCut();
            inner.PowerOn();
            List<NandUnit> onNand = ReadUnits(inner, ftl.Layout);
            var used = onNand.Select(u => u.Block).ToHashSet();
            int neverUsed = Enumerable
                .Range(FtlLayout.SuperblockBlocks, inner.Geometry.Blocks - FtlLayout.SuperblockBlocks)
                .First(b => !used.Contains(b));
            ForgeJournalUnits(inner, ftl.Layout, onNand, (neverUsed, 0, 0), (1, [(JournalRecordKind.Trim, 5, 1)]));
            (recoveryFinished, ftl) = RecoveryCuts.MountCutAt(inner, nand, _clock, options, operation);
            Assert.False(
                ftl.IsMapped(5),
                $"cut at operation {operation} of the recovery: the journaled trim of sector 5 was lost"
            );
            Assert.True(ftl.IsMapped(6));
        }
    }

    [Fact]
    public void EraseCountsSurviveARemount()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var options = new FtlOptions { SpareFactor = 0.2 };
        FlashTranslationLayer ftl = Mount(nand, options);
        for (int i = 0; i < 4 * ftl.LogicalSectors; i++)
        {
            Write(ftl, i % ftl.LogicalSectors, 1 + (i / (int)ftl.LogicalSectors));
        }

        ftl.Flush();
        WearReport before = ftl.Wear();
        Assert.True(before.MeanErases > 1, $"blocks were erased and reused: {before}");
        nand.PowerCut();
        nand.PowerOn();
        WearReport after = Mount(nand, options).Wear();

        Assert.True(
            after.MinErases >= before.MinErases
                && after.MeanErases >= before.MeanErases
                && after.MaxErases <= before.MaxErases + 1,
            $"before the cut {before}, after {after}"
        );
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
        using EmulatedNand nand = Nands.Tiny(
            _clock,
            "faults.programFailProbability=0.0003",
            "faults.eraseFailProbability=0.001"
        );
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
        Assert.True(
            remounted.Wear().BadBlocks >= ftl.Wear().BadBlocks - 1,
            "the bad-block table survived the power cut"
        );
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
            FlashTranslationLayer ftl = FlashTranslationLayer.Mount(
                nand,
                clock,
                new Prng(1),
                new FtlOptions { SpareFactor = 0.15, WearLevelingSpread = spread }
            );
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

    /// <summary>
    /// Formats, writes generation 1 of the first <paramref name="sectors"/> sectors, checkpoints and cuts the power;
    /// returns the FTL that was cut off.
    /// </summary>
    private FlashTranslationLayer WriteCheckpointAndCut(EmulatedNand nand, FtlOptions options, long sectors)
    {
        FlashTranslationLayer ftl = Mount(nand, options);
        WriteAll(ftl, sectors, 1);

        ftl.CheckpointNow();
        nand.PowerCut();
        nand.PowerOn();
        return ftl;
    }

    /// <summary>Every whole unit on the NAND: all its pages read back with their CRC and one sequence number.</summary>
    private List<NandUnit> ReadUnits(EmulatedNand nand, FtlLayout layout)
    {
        var units = new List<NandUnit>();
        byte[] spare = new byte[nand.Geometry.SpareBytes];
        for (int block = 0; block < nand.Geometry.Blocks; block++)
        {
            for (int unit = 0; unit < layout.UnitsPerBlock; unit++)
            {
                byte[] data = new byte[layout.UnitBytes];
                uint[] slots = new uint[layout.SectorsPerUnit];
                PageMetadata? first = null;
                for (int page = 0; page < layout.PagesPerUnit; page++)
                {
                    Span<byte> pageData = data.AsSpan(page * nand.Geometry.PageBytes, nand.Geometry.PageBytes);
                    NandCompletion read = _clock.Await(
                        nand.ReadPage(layout.PageOf(block, unit, page), pageData, spare)
                    );
                    if (
                        !read.Succeeded
                        || !PageMetadata.TryRead(spare, pageData, slots, out PageMetadata metadata)
                        || (first is { } f && f.Sequence != metadata.Sequence)
                    )
                    {
                        first = null;
                        break;
                    }

                    first ??= metadata;
                }

                if (first is { } whole)
                {
                    units.Add(new NandUnit(block, unit, whole, slots, data));
                }
            }
        }

        Assert.True(units.Count > 3, $"only {units.Count} units found on the NAND");
        return units;
    }

    private static void AssertSequencesUnique(List<NandUnit> units)
    {
        foreach (IGrouping<ulong, NandUnit> same in units.GroupBy(u => u.Metadata.Sequence).Where(g => g.Count() > 1))
        {
            Assert.Fail(
                $"sequence {same.Key} is on {string.Join(" and ", same.Select(u => $"{u.Metadata.Kind} block {u.Block} unit {u.Unit}"))}"
            );
        }
    }

    /// <summary>
    /// The superblock units, in sequence order, follow each other in their block and move to the
    /// other block only from the last unit of one. Returns how many superblock blocks hold units.
    /// </summary>
    private static int AssertSuperblocksInOrder(List<NandUnit> units, FtlLayout layout)
    {
        List<NandUnit> superblocks = units
            .Where(u => u.Metadata.Kind == UnitKind.Superblock)
            .OrderBy(u => u.Metadata.Sequence)
            .ToList();
        for (int i = 1; i < superblocks.Count; i++)
        {
            (NandUnit before, NandUnit after) = (superblocks[i - 1], superblocks[i]);
            Assert.True(
                Follows(before, after, layout),
                $"superblock sequence {after.Metadata.Sequence} at block {after.Block} unit {after.Unit} does not follow sequence {before.Metadata.Sequence} at block {before.Block} unit {before.Unit}"
            );
        }

        return superblocks.Select(u => u.Block).Distinct().Count();
    }

    /// <summary>A NAND whose listed pages read as uncorrectable, as a page past its ECC would.</summary>
    private sealed class UnreadablePagesNand(EmulatedNand inner) : INandDevice
    {
        public HashSet<PageAddress> Unreadable { get; } = [];

        public NandGeometry Geometry => inner.Geometry;

        public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
        {
            NandCompletion read = inner.ReadPage(address, data, spare);
            return Unreadable.Contains(address) ? read with { Status = NandStatus.Uncorrectable } : read;
        }

        public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) =>
            inner.ProgramPage(address, data, spare);

        public NandCompletion EraseBlock(int block) => inner.EraseBlock(block);

        public NandDieStatus GetDieStatus(int die) => inner.GetDieStatus(die);
    }

    /// <summary>
    /// Programs journal units the FTL did not write, with valid CRCs, right after the newest unit
    /// of the open metadata block and with sequences above every unit's, so recovery replays them:
    /// each is (the record count its metadata states, the records it holds).
    /// </summary>
    private void ForgeJournalUnits(
        EmulatedNand nand,
        FtlLayout layout,
        params (uint Count, (JournalRecordKind Kind, uint First, uint Count)[] Records)[] units
    )
    {
        List<NandUnit> onNand = ReadUnits(nand, layout);
        NandUnit last = onNand
            .Where(u => u.Metadata.Kind is UnitKind.Checkpoint or UnitKind.Journal)
            .MaxBy(u => u.Metadata.Sequence)!;
        ForgeJournalUnits(nand, layout, onNand, (last.Block, last.Unit + 1, last.Metadata.EraseCount), units);
    }

    /// <summary>
    /// The same, from a given unit of a given block, whose units say it was erased that many
    /// times; <paramref name="onNand"/> is what <see cref="ReadUnits"/> found there before.
    /// </summary>
    private void ForgeJournalUnits(
        EmulatedNand nand,
        FtlLayout layout,
        List<NandUnit> onNand,
        (int Block, int FirstUnit, uint EraseCount) at,
        params (uint Count, (JournalRecordKind Kind, uint First, uint Count)[] Records)[] units
    )
    {
        ulong sequence = onNand.Max(u => u.Metadata.Sequence);
        uint[] slots = Enumerable.Repeat(PageMetadata.EmptySlot, layout.SectorsPerUnit).ToArray();
        byte[] spare = new byte[nand.Geometry.SpareBytes];
        for (int i = 0; i < units.Length; i++)
        {
            int unit = at.FirstUnit + i;
            Assert.True(unit < layout.UnitsPerBlock, "the forged units fit in the metadata block");
            byte[] data = new byte[layout.UnitBytes];
            ulong unitSequence = ++sequence;
            for (int r = 0; r < units[i].Records.Length; r++)
            {
                (JournalRecordKind kind, uint first, uint count) = units[i].Records[r];
                new JournalRecord(kind, first, count, unitSequence).WriteTo(
                    data.AsSpan(r * JournalRecord.Bytes, JournalRecord.Bytes)
                );
            }

            for (int page = 0; page < layout.PagesPerUnit; page++)
            {
                ReadOnlySpan<byte> pageData = data.AsSpan(page * nand.Geometry.PageBytes, nand.Geometry.PageBytes);
                new PageMetadata(UnitKind.Journal, (byte)page, unitSequence, at.EraseCount, units[i].Count).Write(
                    spare,
                    slots,
                    pageData
                );
                Assert.True(
                    _clock.Await(nand.ProgramPage(layout.PageOf(at.Block, unit, page), pageData, spare)).Succeeded
                );
            }
        }
    }

    /// <summary>
    /// The unit written next after <paramref name="before"/>: the next in its block, or the first of another once it is
    /// full.
    /// </summary>
    private static bool Follows(NandUnit before, NandUnit after, FtlLayout layout) =>
        after.Block == before.Block
            ? after.Unit == before.Unit + 1
            : after.Unit == 0 && before.Unit == layout.UnitsPerBlock - 1;

    /// <summary>
    /// Every sector below <paramref name="sectors"/> reads back whole, as the generation given for it.
    /// </summary>
    private void AssertReadsBack(FlashTranslationLayer ftl, long sectors, Func<long, int> generation)
    {
        for (long sector = 0; sector < sectors; sector++)
        {
            Assert.True(ftl.Read(sector, _buffer).Ok);
            Assert.Equal((true, sector, generation(sector)), SectorContent.Decode(_buffer));
        }
    }

    private sealed record NandUnit(int Block, int Unit, PageMetadata Metadata, uint[] Slots, byte[] Data);

    /// <summary>Writes <paramref name="generation"/> of every sector below <paramref name="sectors"/>.</summary>
    private void WriteAll(FlashTranslationLayer ftl, long sectors, int generation)
    {
        for (long sector = 0; sector < sectors; sector++)
        {
            Write(ftl, sector, generation);
        }
    }

    private void Write(FlashTranslationLayer ftl, long sector, int generation)
    {
        SectorContent.Fill(_buffer, sector, generation);
        ftl.Write(sector, _buffer);
    }

    private FlashTranslationLayer Mount(INandDevice nand, FtlOptions options) =>
        FlashTranslationLayer.Mount(nand, _clock, new Prng(1), options);
}
