using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

[Trait("Category", "Unit")]
public sealed class EmulatedNandPowerCutTests
{
    private const int Seeds = 90;

    [Fact]
    public void CompletedOperationsSurviveAPowerCut()
    {
        var clock = new VirtualClock();
        using EmulatedNand nand = Nands.Tiny(clock);
        byte[] data = Nands.Pattern(nand.Geometry, 1);
        clock.Await(nand.ProgramPage(new PageAddress(1, 0), data, Nands.Spare(nand.Geometry)));
        clock.Await(nand.EraseBlock(2));

        IReadOnlyList<TornOperation> torn = nand.PowerCut();
        nand.PowerOn();

        Assert.Empty(torn);
        Assert.Equal(data, ReadData(nand, new PageAddress(1, 0)).Data);
        Assert.Equal(1u, nand.EraseCount(2));
    }

    [Fact]
    public void ProgramCutInProgressLeavesThePageProgrammedErasedOrCorruptedAndEachIsSeen()
    {
        var seen = new HashSet<PowerCutOutcome>();
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, $"faults.seed={seed}");
            byte[] neighbour = Nands.Pattern(nand.Geometry, 100);
            byte[] data = Nands.Pattern(nand.Geometry, seed);
            clock.Await(nand.ProgramPage(new PageAddress(5, 0), neighbour, Nands.Spare(nand.Geometry)));
            long issued = clock.NowNanoseconds;
            NandCompletion program = nand.ProgramPage(new PageAddress(5, 1), data, Nands.Spare(nand.Geometry));
            clock.AdvanceTo(program.CompletesAtNanoseconds - (nand.Timing.ProgramNanoseconds / 2));

            TornOperation torn = Assert.Single(nand.PowerCut());
            nand.PowerOn();

            (NandStatus status, byte[] read) = ReadData(nand, new PageAddress(5, 1));
            PowerCutOutcome observed = Classify(status, read, data);
            Assert.Equal(torn.Outcome, observed);
            Assert.Equal(neighbour, ReadData(nand, new PageAddress(5, 0)).Data);
            Assert.True(program.CompletesAtNanoseconds > issued);
            seen.Add(observed);
        }

        Assert.Equal([PowerCutOutcome.Programmed, PowerCutOutcome.LeftErased, PowerCutOutcome.Corrupted], seen.Order());
    }

    [Fact]
    public void CorruptedPagesSometimesFailEccAndSometimesReturnWrongBits()
    {
        var statuses = new HashSet<NandStatus>();
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, $"faults.seed={seed}");
            byte[] data = Nands.Pattern(nand.Geometry, seed);
            NandCompletion program = nand.ProgramPage(new PageAddress(0, 0), data, Nands.Spare(nand.Geometry));
            clock.AdvanceTo(program.CompletesAtNanoseconds - 1);
            if (nand.PowerCut()[0].Outcome != PowerCutOutcome.Corrupted)
            {
                nand.PowerOn();
                continue;
            }

            nand.PowerOn();
            (NandStatus status, byte[] read) = ReadData(nand, new PageAddress(0, 0));
            Assert.NotEqual(data, read);
            statuses.Add(status);
        }

        Assert.Equal([NandStatus.Ok, NandStatus.Uncorrectable], statuses.Order());
    }

    [Fact]
    public void ProgramCutDuringItsDataTransferLeavesThePageErased()
    {
        var clock = new VirtualClock();
        using EmulatedNand nand = Nands.Tiny(clock);
        nand.ProgramPage(new PageAddress(0, 0), Nands.Pattern(nand.Geometry, 1), Nands.Spare(nand.Geometry));
        clock.AdvanceTo(nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes) / 2);

        TornOperation torn = Assert.Single(nand.PowerCut());
        nand.PowerOn();

        Assert.Equal(PowerCutOutcome.NotStarted, torn.Outcome);
        Assert.All(ReadData(nand, new PageAddress(0, 0)).Data, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void OperationsQueuedBehindTheCutNeverHappen()
    {
        var clock = new VirtualClock();
        using EmulatedNand nand = Nands.Tiny(clock);
        NandCompletion first = nand.ProgramPage(
            new PageAddress(0, 0),
            Nands.Pattern(nand.Geometry, 1),
            Nands.Spare(nand.Geometry)
        );
        nand.ProgramPage(new PageAddress(0, 1), Nands.Pattern(nand.Geometry, 2), Nands.Spare(nand.Geometry));
        nand.ProgramPage(new PageAddress(0, 2), Nands.Pattern(nand.Geometry, 3), Nands.Spare(nand.Geometry));
        long transfer = nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes + nand.Geometry.SpareBytes);
        clock.AdvanceTo(first.CompletesAtNanoseconds + transfer + (nand.Timing.ProgramNanoseconds / 2));

        IReadOnlyList<TornOperation> torn = nand.PowerCut();
        nand.PowerOn();

        Assert.Equal(2, torn.Count);
        Assert.Equal(new PageAddress(0, 1), torn[0].Address);
        Assert.NotEqual(PowerCutOutcome.NotStarted, torn[0].Outcome);
        Assert.Equal(new PageAddress(0, 2), torn[1].Address);
        Assert.Equal(PowerCutOutcome.NotStarted, torn[1].Outcome);
        Assert.All(ReadData(nand, new PageAddress(0, 2)).Data, b => Assert.Equal(0xFF, b));
        Assert.Equal(
            NandStatus.Ok,
            nand.ProgramPage(new PageAddress(0, 2), Nands.Pattern(nand.Geometry, 4), Nands.Spare(nand.Geometry)).Status
        );
    }

    [Fact]
    public void EraseCutInProgressLeavesTheBlockErasedUntouchedOrUnreliableAndEachIsSeen()
    {
        var seen = new HashSet<PowerCutOutcome>();
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, $"faults.seed={seed}");
            byte[] old = Nands.Pattern(nand.Geometry, seed);
            clock.Await(nand.ProgramPage(new PageAddress(9, 0), old, Nands.Spare(nand.Geometry)));
            clock.Await(nand.ProgramPage(new PageAddress(9, 1), old, Nands.Spare(nand.Geometry)));
            NandCompletion erase = nand.EraseBlock(9);
            clock.AdvanceTo(erase.CompletesAtNanoseconds - (nand.Timing.EraseNanoseconds / 2));

            TornOperation torn = Assert.Single(nand.PowerCut());
            nand.PowerOn();

            (NandStatus status, byte[] read) = ReadData(nand, new PageAddress(9, 1));
            PowerCutOutcome observed =
                status == NandStatus.Uncorrectable ? PowerCutOutcome.Unreliable
                : read.SequenceEqual(old) ? PowerCutOutcome.Untouched
                : read.All(b => b == 0xFF) ? PowerCutOutcome.Erased
                : throw new Xunit.Sdk.XunitException($"seed {seed}: the block holds neither its old data nor FFh");
            Assert.Equal(torn.Outcome, observed);
            seen.Add(observed);
        }

        Assert.Equal([PowerCutOutcome.Erased, PowerCutOutcome.Untouched, PowerCutOutcome.Unreliable], seen.Order());
    }

    [Fact]
    public void AnUnreliableBlockCannotBeProgrammedUntilErasedAgain()
    {
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, $"faults.seed={seed}");
            NandCompletion erase = nand.EraseBlock(3);
            clock.AdvanceTo(erase.CompletesAtNanoseconds - 1);
            if (nand.PowerCut()[0].Outcome != PowerCutOutcome.Unreliable)
            {
                nand.PowerOn();
                continue;
            }

            nand.PowerOn();
            byte[] data = Nands.Pattern(nand.Geometry, 1);
            Assert.Equal(
                NandRule.ProgramErasedPageOnly,
                Assert
                    .Throws<NandRuleViolationException>(() =>
                        nand.ProgramPage(new PageAddress(3, 0), data, Nands.Spare(nand.Geometry))
                    )
                    .Rule
            );
            clock.Await(nand.EraseBlock(3));
            Assert.Equal(
                NandStatus.Ok,
                nand.ProgramPage(new PageAddress(3, 0), data, Nands.Spare(nand.Geometry)).Status
            );
            return;
        }

        Assert.Fail($"no seed in 1..{Seeds} left an erase unreliable");
    }

    [Fact]
    public void UndoingAnEraseBringsBackTheDataThatProgramsQueuedBehindItOverwrote()
    {
        var outcomes = new HashSet<PowerCutOutcome>();
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var clock = new VirtualClock();
            using EmulatedNand nand = Nands.Tiny(clock, $"faults.seed={seed}");
            byte[] old = Nands.Pattern(nand.Geometry, 1);
            byte[] fresh = Nands.Pattern(nand.Geometry, 2);
            clock.Await(nand.ProgramPage(new PageAddress(6, 0), old, Nands.Spare(nand.Geometry)));
            NandCompletion erase = nand.EraseBlock(6);
            nand.ProgramPage(new PageAddress(6, 0), fresh, Nands.Spare(nand.Geometry));
            clock.AdvanceTo(erase.CompletesAtNanoseconds - 1);

            IReadOnlyList<TornOperation> torn = nand.PowerCut();
            nand.PowerOn();

            Assert.Equal(PowerCutOutcome.NotStarted, torn[1].Outcome);
            (NandStatus status, byte[] read) = ReadData(nand, new PageAddress(6, 0));
            switch (torn[0].Outcome)
            {
                case PowerCutOutcome.Untouched:
                    Assert.Equal(old, read);
                    break;
                case PowerCutOutcome.Erased:
                    Assert.All(read, b => Assert.Equal(0xFF, b));
                    break;
                default:
                    Assert.Equal(NandStatus.Uncorrectable, status);
                    break;
            }

            outcomes.Add(torn[0].Outcome);
        }

        Assert.Contains(PowerCutOutcome.Untouched, outcomes);
    }

    private static PowerCutOutcome Classify(NandStatus status, byte[] read, byte[] written) =>
        status == NandStatus.Uncorrectable ? PowerCutOutcome.Corrupted
        : read.SequenceEqual(written) ? PowerCutOutcome.Programmed
        : read.All(b => b == 0xFF) ? PowerCutOutcome.LeftErased
        : PowerCutOutcome.Corrupted;

    private static (NandStatus Status, byte[] Data) ReadData(EmulatedNand nand, PageAddress address)
    {
        var data = new byte[nand.Geometry.PageBytes];
        NandCompletion read = nand.ReadPage(address, data, []);
        return (read.Status, data);
    }
}
