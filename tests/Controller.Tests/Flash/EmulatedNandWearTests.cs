using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

[Trait("Category", "Unit")]
public sealed class EmulatedNandWearTests
{
    private readonly VirtualClock _clock = new();

    [Fact]
    public void BitErrorsGrowWithWear()
    {
        using EmulatedNand nand = Nands.Tiny(
            _clock,
            "faults.rawBitErrorRate=2e-6",
            "faults.wearBitErrorGrowth=100",
            "nand.enduranceCycles=100",
            "nand.eccCorrectableBits=64"
        );
        for (int i = 0; i < 100; i++)
        {
            _clock.Await(nand.EraseBlock(1));
        }

        long fresh = CorrectedBitsOverReads(nand, block: 0, reads: 400);
        long worn = CorrectedBitsOverReads(nand, block: 1, reads: 400);

        Assert.Equal(100u, nand.EraseCount(1));
        Assert.True(fresh > 0, "a fresh block at this error rate still shows some bit errors");
        Assert.True(worn > 10 * fresh, $"worn block corrected {worn} bits, fresh block {fresh}");
    }

    [Fact]
    public void EccCorrectsUpToItsLimitAndReportsUncorrectableBeyond()
    {
        using EmulatedNand weak = Nands.Tiny(_clock, "faults.rawBitErrorRate=1e-3", "nand.eccCorrectableBits=0");
        using EmulatedNand strong = Nands.Tiny(_clock, "faults.rawBitErrorRate=1e-3", "nand.eccCorrectableBits=200");
        byte[] data = Nands.Pattern(weak.Geometry, 1);
        weak.ProgramPage(new PageAddress(0, 0), data, Nands.Spare(weak.Geometry));
        strong.ProgramPage(new PageAddress(0, 0), data, Nands.Spare(strong.Geometry));
        var read = new byte[data.Length];

        NandCompletion failed = weak.ReadPage(new PageAddress(0, 0), read, []);
        Assert.Equal(NandStatus.Uncorrectable, failed.Status);
        Assert.NotEqual(data, read);

        NandCompletion corrected = strong.ReadPage(new PageAddress(0, 0), read, []);
        Assert.Equal(NandStatus.Corrected, corrected.Status);
        Assert.InRange(corrected.CorrectedBits, 1, 200);
        Assert.Equal(data, read);
    }

    [Fact]
    public void FactoryBadBlocksCarryAMarkerInTheSpareAreaOfTheirFirstPage()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "faults.factoryBadBlockFraction=0.25", "faults.seed=7");
        var spare = new byte[nand.Geometry.SpareBytes];
        var bad = new List<int>();
        for (int block = 0; block < nand.Geometry.Blocks; block++)
        {
            nand.ReadPage(new PageAddress(block, 0), [], spare);
            if (spare[0] != 0xFF)
            {
                bad.Add(block);
            }
        }

        Assert.InRange(bad.Count, 16, 48);
        Assert.DoesNotContain(0, bad);
        int marked = bad[0];
        Assert.Equal(NandStatus.EraseFailed, _clock.Await(nand.EraseBlock(marked)).Status);
        nand.ReadPage(new PageAddress(marked, 0), [], spare);
        Assert.NotEqual(0xFF, spare[0]);
        Assert.Equal(
            NandStatus.ProgramFailed,
            nand.ProgramPage(
                new PageAddress(marked, 1),
                Nands.Pattern(nand.Geometry, 1),
                Nands.Spare(nand.Geometry)
            ).Status
        );
    }

    [Fact]
    public void APowerCutDuringTheEraseOfAFactoryBadBlockKeepsItsMarker()
    {
        for (int seed = 1; seed <= 30; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, "faults.factoryBadBlockFraction=0.25", $"faults.seed={seed}");
            var spare = new byte[nand.Geometry.SpareBytes];
            int marked = Enumerable
                .Range(1, nand.Geometry.Blocks - 1)
                .First(block =>
                {
                    nand.ReadPage(new PageAddress(block, 0), [], spare);
                    return spare[0] != 0xFF;
                });
            NandCompletion erase = nand.EraseBlock(marked);
            clock.AdvanceTo(erase.CompletesAtNanoseconds - 1);

            nand.PowerCut();
            nand.PowerOn();

            NandCompletion read = nand.ReadPage(new PageAddress(marked, 0), [], spare);
            Assert.Equal(NandStatus.Ok, read.Status);
            Assert.NotEqual(0xFF, spare[0]);
        }
    }

    [Fact]
    public void AWeakBlockFailsEveryEraseAfterItsLimit()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "faults.weakBlocks=5:3");

        NandStatus[] statuses = [.. Enumerable.Range(0, 5).Select(_ => _clock.Await(nand.EraseBlock(5)).Status)];

        Assert.Equal(
            [NandStatus.Ok, NandStatus.Ok, NandStatus.Ok, NandStatus.EraseFailed, NandStatus.EraseFailed],
            statuses
        );
        Assert.Equal(NandStatus.Ok, nand.EraseBlock(6).Status);
    }

    [Fact]
    public void AnInjectedProgramFailureLeavesThePageUnreadable()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        nand.InjectProgramFailure(new PageAddress(2, 0));

        NandCompletion program = nand.ProgramPage(
            new PageAddress(2, 0),
            Nands.Pattern(nand.Geometry, 1),
            Nands.Spare(nand.Geometry)
        );
        NandCompletion again = nand.ProgramPage(
            new PageAddress(2, 1),
            Nands.Pattern(nand.Geometry, 1),
            Nands.Spare(nand.Geometry)
        );

        Assert.Equal(NandStatus.ProgramFailed, program.Status);
        Assert.Equal(NandStatus.Ok, again.Status);
        Assert.Equal(
            NandStatus.Uncorrectable,
            nand.ReadPage(new PageAddress(2, 0), new byte[nand.Geometry.PageBytes], []).Status
        );
        Assert.Equal(1, nand.Statistics.ProgramFailures);
    }

    [Fact]
    public void AnInjectedEraseFailureHappensOnce()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        nand.InjectEraseFailure(8);

        Assert.Equal(NandStatus.EraseFailed, _clock.Await(nand.EraseBlock(8)).Status);
        Assert.Equal(NandStatus.Ok, _clock.Await(nand.EraseBlock(8)).Status);
    }

    [Theory]
    [InlineData("faults.programFailProbability=1", NandOperationKind.Program)]
    [InlineData("faults.eraseFailProbability=1", NandOperationKind.Erase)]
    public void FailureProbabilitiesApplyToEveryOperation(string setting, NandOperationKind kind)
    {
        using EmulatedNand nand = Nands.Tiny(_clock, setting);
        for (int block = 0; block < 10; block++)
        {
            NandStatus status =
                kind == NandOperationKind.Program
                    ? nand.ProgramPage(
                        new PageAddress(block, 0),
                        Nands.Pattern(nand.Geometry, block),
                        Nands.Spare(nand.Geometry)
                    ).Status
                    : nand.EraseBlock(block).Status;
            Assert.Equal(kind == NandOperationKind.Program ? NandStatus.ProgramFailed : NandStatus.EraseFailed, status);
        }
    }

    private long CorrectedBitsOverReads(EmulatedNand nand, int block, int reads)
    {
        var address = new PageAddress(block, 0);
        nand.ProgramPage(address, Nands.Pattern(nand.Geometry, block), Nands.Spare(nand.Geometry));
        var data = new byte[nand.Geometry.PageBytes];
        long total = 0;
        for (int i = 0; i < reads; i++)
        {
            NandCompletion read = _clock.Await(nand.ReadPage(address, data, []));
            Assert.NotEqual(NandStatus.Uncorrectable, read.Status);
            total += read.CorrectedBits;
        }

        return total;
    }
}
