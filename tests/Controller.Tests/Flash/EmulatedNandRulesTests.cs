using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

[Trait("Category", "Unit")]
public sealed class EmulatedNandRulesTests
{
    private readonly VirtualClock _clock = new();

    [Fact]
    public void ErasedPageReadsAsAllOnes()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var data = new byte[nand.Geometry.PageBytes];
        var spare = new byte[nand.Geometry.SpareBytes];

        NandCompletion read = nand.ReadPage(new PageAddress(3, 5), data, spare);

        Assert.Equal(NandStatus.Ok, read.Status);
        Assert.All(data, b => Assert.Equal(0xFF, b));
        Assert.All(spare, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void ProgrammedPageReadsBackDataAndSpare()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] data = Nands.Pattern(nand.Geometry, 1);
        byte[] spare = Nands.Spare(nand.Geometry);
        var readData = new byte[data.Length];
        var readSpare = new byte[spare.Length];

        Assert.Equal(NandStatus.Ok, nand.ProgramPage(new PageAddress(7, 0), data, spare).Status);
        Assert.Equal(NandStatus.Ok, nand.ReadPage(new PageAddress(7, 0), readData, readSpare).Status);

        Assert.Equal(data, readData);
        Assert.Equal(spare, readSpare);
    }

    [Fact]
    public void SpareOnlyReadReturnsTheSpareArea()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] spare = Nands.Spare(nand.Geometry, 0x3C);
        nand.ProgramPage(new PageAddress(2, 0), Nands.Pattern(nand.Geometry, 2), spare);
        var readSpare = new byte[spare.Length];

        Assert.Equal(NandStatus.Ok, nand.ReadPage(new PageAddress(2, 0), [], readSpare).Status);

        Assert.Equal(spare, readSpare);
    }

    [Fact]
    public void ProgrammingAPageTwiceIsRejected()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] data = Nands.Pattern(nand.Geometry, 3);
        byte[] spare = Nands.Spare(nand.Geometry);
        nand.ProgramPage(new PageAddress(1, 0), data, spare);

        var error = Assert.Throws<NandRuleViolationException>(() =>
            nand.ProgramPage(new PageAddress(1, 0), data, spare)
        );

        Assert.Equal(NandRule.ProgramErasedPageOnly, error.Rule);
        Assert.Contains("block 1 page 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ProgrammingBelowTheLastProgrammedPageIsRejected()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] data = Nands.Pattern(nand.Geometry, 4);
        byte[] spare = Nands.Spare(nand.Geometry);
        nand.ProgramPage(new PageAddress(1, 4), data, spare);

        var error = Assert.Throws<NandRuleViolationException>(() =>
            nand.ProgramPage(new PageAddress(1, 2), data, spare)
        );

        Assert.Equal(NandRule.ProgramAscendingOrder, error.Rule);
    }

    [Fact]
    public void SkippingPagesUpwardsIsAllowed()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] data = Nands.Pattern(nand.Geometry, 5);
        byte[] spare = Nands.Spare(nand.Geometry);

        Assert.Equal(NandStatus.Ok, nand.ProgramPage(new PageAddress(1, 0), data, spare).Status);
        Assert.Equal(NandStatus.Ok, nand.ProgramPage(new PageAddress(1, 3), data, spare).Status);
    }

    [Fact]
    public void EraseMakesEveryPageOfTheBlockProgrammableAgainAndLeavesOtherBlocks()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] first = Nands.Pattern(nand.Geometry, 6);
        byte[] second = Nands.Pattern(nand.Geometry, 7);
        byte[] spare = Nands.Spare(nand.Geometry);
        nand.ProgramPage(new PageAddress(4, 0), first, spare);
        nand.ProgramPage(new PageAddress(4, 1), first, spare);
        nand.ProgramPage(new PageAddress(5, 0), first, spare);

        Assert.Equal(NandStatus.Ok, nand.EraseBlock(4).Status);
        var read = new byte[first.Length];
        nand.ReadPage(new PageAddress(4, 1), read, []);
        Assert.All(read, b => Assert.Equal(0xFF, b));
        Assert.Equal(NandStatus.Ok, nand.ProgramPage(new PageAddress(4, 0), second, spare).Status);
        nand.ReadPage(new PageAddress(5, 0), read, []);
        Assert.Equal(first, read);
        Assert.Equal(1u, nand.EraseCount(4));
        Assert.Equal(0u, nand.EraseCount(5));
    }

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(128, 0)]
    [InlineData(0, 16)]
    [InlineData(0, -1)]
    public void AddressesOutsideTheArrayAreRejected(int block, int page)
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var data = new byte[nand.Geometry.PageBytes];
        var spare = new byte[nand.Geometry.SpareBytes];

        Assert.Equal(
            NandRule.AddressInRange,
            Assert
                .Throws<NandRuleViolationException>(() => nand.ReadPage(new PageAddress(block, page), data, spare))
                .Rule
        );
        Assert.Equal(
            NandRule.AddressInRange,
            Assert
                .Throws<NandRuleViolationException>(() => nand.ProgramPage(new PageAddress(block, page), data, spare))
                .Rule
        );
    }

    [Fact]
    public void EraseOfABlockOutsideTheArrayIsRejected()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);

        Assert.Equal(
            NandRule.AddressInRange,
            Assert.Throws<NandRuleViolationException>(() => nand.EraseBlock(nand.Geometry.Blocks)).Rule
        );
    }

    [Fact]
    public void PartialPageProgramIsRejected()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        var half = new byte[nand.Geometry.PageBytes / 2];

        var error = Assert.Throws<NandRuleViolationException>(() =>
            nand.ProgramPage(new PageAddress(0, 0), half, Nands.Spare(nand.Geometry))
        );

        Assert.Equal(NandRule.BufferSize, error.Rule);
        Assert.Equal(0, nand.AllocatedBlocks);
    }

    [Fact]
    public void StorageIsAllocatedOnlyForBlocksThatWereProgrammed()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        byte[] data = Nands.Pattern(nand.Geometry, 8);
        byte[] spare = Nands.Spare(nand.Geometry);

        nand.ProgramPage(new PageAddress(10, 0), data, spare);
        nand.ProgramPage(new PageAddress(10, 1), data, spare);
        nand.ProgramPage(new PageAddress(90, 0), data, spare);
        nand.EraseBlock(40);

        Assert.Equal(2, nand.AllocatedBlocks);
    }

    [Fact]
    public void OperationsWithoutPowerAreRejected()
    {
        using EmulatedNand nand = Nands.Tiny(_clock);
        nand.PowerCut();

        Assert.Equal(NandRule.Powered, Assert.Throws<NandRuleViolationException>(() => nand.EraseBlock(0)).Rule);
        nand.PowerOn();
        Assert.Equal(NandStatus.Ok, nand.EraseBlock(0).Status);
    }
}
