using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

/// <summary>
/// The tiny profile has two channels with one die each (blocks 0-63 on die 0, channel 0; blocks
/// 64-127 on die 1, channel 1). The two-dies-per-channel case sets nand.diesPerChannel=2.
/// </summary>
[Trait("Category", "Unit")]
public sealed class EmulatedNandTimingTests
{
    private readonly VirtualClock _clock = new();

    [Fact]
    public void ProgramTakesTransferThenProgramTime()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        long transfer = nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes + nand.Geometry.SpareBytes);

        NandCompletion done = Program(nand, new PageAddress(0, 0));

        Assert.Equal(transfer + nand.Timing.ProgramNanoseconds, done.CompletesAtNanoseconds);
        Assert.True(transfer > 0);
    }

    [Fact]
    public void ProgramsOnDiesOfDifferentChannelsOverlapCompletely()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);

        NandCompletion first = Program(nand, new PageAddress(0, 0));
        NandCompletion second = Program(nand, new PageAddress(64, 0));

        Assert.Equal(first.CompletesAtNanoseconds, second.CompletesAtNanoseconds);
    }

    [Fact]
    public void ProgramsOnOneDieQueueOneAfterTheOther()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);

        NandCompletion first = Program(nand, new PageAddress(0, 0));
        NandCompletion second = Program(nand, new PageAddress(0, 1));

        Assert.Equal(2 * first.CompletesAtNanoseconds, second.CompletesAtNanoseconds);
        NandDieStatus status = nand.GetDieStatus(0);
        Assert.True(status.Busy);
        Assert.Equal(2, status.QueuedOperations);
        Assert.Equal(second.CompletesAtNanoseconds, status.ReadyAtNanoseconds);
    }

    [Fact]
    public void DiesSharingAChannelOverlapTheirProgramsButTakeTurnsOnTheBus()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "nand.channels=1", "nand.diesPerChannel=2");
        long transfer = nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes + nand.Geometry.SpareBytes);

        NandCompletion first = Program(nand, new PageAddress(0, 0));
        NandCompletion second = Program(nand, new PageAddress(64, 0));

        Assert.Equal(transfer + nand.Timing.ProgramNanoseconds, first.CompletesAtNanoseconds);
        Assert.Equal((2 * transfer) + nand.Timing.ProgramNanoseconds, second.CompletesAtNanoseconds);
    }

    [Fact]
    public void WorkQueuedOnOneDieDoesNotHoldUpAnotherDieOnTheSameChannel()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "nand.channels=1", "nand.diesPerChannel=2");
        long transfer = nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes + nand.Geometry.SpareBytes);

        // Die 0 is busy erasing, with a read queued behind the erase whose transfer comes later.
        nand.EraseBlock(0);
        nand.ReadPage(new PageAddress(0, 0), new byte[nand.Geometry.PageBytes], new byte[nand.Geometry.SpareBytes]);
        NandCompletion otherDie = Program(nand, new PageAddress(64, 0));

        Assert.Equal(transfer + nand.Timing.ProgramNanoseconds, otherDie.CompletesAtNanoseconds);
    }

    [Fact]
    public void TransfersOnOneChannelNeverOverlap()
    {
        using EmulatedNand nand = Nands.Tiny(_clock, "nand.channels=1", "nand.diesPerChannel=2");
        long transfer = nand.Timing.TransferNanoseconds(nand.Geometry.PageBytes + nand.Geometry.SpareBytes);

        NandCompletion[] programs =
        [
            .. Enumerable.Range(0, 6).Select(i => Program(nand, new PageAddress(i % 2 == 0 ? 0 : 64, i / 2))),
        ];

        // Programs alternate between the dies: the bus carries one page at a time, each die
        // programs while the other transfers.
        long[] arrayStarts =
        [
            .. programs.Select(p => p.CompletesAtNanoseconds - nand.Timing.ProgramNanoseconds).Order(),
        ];
        for (int i = 1; i < arrayStarts.Length; i++)
        {
            Assert.True(arrayStarts[i] - arrayStarts[i - 1] >= transfer, $"transfers {i - 1} and {i} overlap");
        }

        Assert.Equal(transfer + nand.Timing.ProgramNanoseconds, programs[0].CompletesAtNanoseconds);
        Assert.Equal((2 * transfer) + nand.Timing.ProgramNanoseconds, programs[1].CompletesAtNanoseconds);
    }

    [Fact]
    public void ReadTakesArrayTimeThenTransferOfWhatIsRead()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var data = new byte[nand.Geometry.PageBytes];
        var spare = new byte[nand.Geometry.SpareBytes];

        NandCompletion whole = nand.ReadPage(new PageAddress(0, 0), data, spare);
        _clock.AdvanceTo(whole.CompletesAtNanoseconds);
        NandCompletion spareOnly = nand.ReadPage(new PageAddress(0, 0), [], spare);

        Assert.Equal(
            nand.Timing.ReadNanoseconds + nand.Timing.TransferNanoseconds(data.Length + spare.Length),
            whole.CompletesAtNanoseconds
        );
        Assert.Equal(
            nand.Timing.ReadNanoseconds + nand.Timing.TransferNanoseconds(spare.Length),
            spareOnly.CompletesAtNanoseconds - whole.CompletesAtNanoseconds
        );
    }

    [Fact]
    public void EraseBlocksTheDieForTheEraseTime()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);

        NandCompletion erase = nand.EraseBlock(3);
        NandCompletion program = Program(nand, new PageAddress(4, 0));
        NandCompletion otherDie = Program(nand, new PageAddress(70, 0));

        Assert.Equal(nand.Timing.EraseNanoseconds, erase.CompletesAtNanoseconds);
        Assert.True(program.CompletesAtNanoseconds > erase.CompletesAtNanoseconds);
        Assert.True(otherDie.CompletesAtNanoseconds < erase.CompletesAtNanoseconds);
    }

    [Fact]
    public void AnOperationIssuedAfterTheDieIsIdleStartsAtTheCurrentTime()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        NandCompletion first = Program(nand, new PageAddress(0, 0));
        _clock.AdvanceTo(first.CompletesAtNanoseconds + 1_000_000);

        NandCompletion second = Program(nand, new PageAddress(0, 1));

        Assert.Equal(_clock.NowNanoseconds + first.CompletesAtNanoseconds, second.CompletesAtNanoseconds);
        Assert.True(nand.GetDieStatus(0).Busy);
        _clock.AdvanceTo(second.CompletesAtNanoseconds);
        Assert.Equal(new NandDieStatus(false, second.CompletesAtNanoseconds, 0), nand.GetDieStatus(0));
    }

    private static NandCompletion Program(EmulatedNand nand, PageAddress address) =>
        nand.ProgramPage(address, Nands.Pattern(nand.Geometry, address.Page), Nands.Spare(nand.Geometry));
}
