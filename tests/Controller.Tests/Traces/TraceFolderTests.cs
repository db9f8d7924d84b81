using Controller.Traces;

namespace Controller.Tests.Traces;

/// <summary>
/// Putting a trace onto a device: sectors widened, addresses folded, long requests split, the end never crossed.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TraceFolderTests
{
    private const long Device = 1 << 20;

    [Fact]
    public void ATraceThatFitsKeepsItsAddressesAndIsNotWarnedAbout()
    {
        var folder = new TraceFolder(Device, TraceFit.Wrap, Device);

        Assert.False(folder.Folds);
        Assert.Null(folder.Warning);
        Assert.Equal([W(4096, 8192)], folder.Fold(W(4096, 8192)));
    }

    [Fact]
    public void ExtentsAreWidenedToWholeSectors()
    {
        var folder = new TraceFolder(Device, TraceFit.Wrap, Device);

        Assert.Equal([W(512, 1024)], folder.Fold(W(700, 600)));
    }

    [Fact]
    public void WrapTakesTheOffsetModuloTheDeviceAndScaleInProportion()
    {
        var wrap = new TraceFolder(Device, TraceFit.Wrap, 4 * Device);
        var scale = new TraceFolder(Device, TraceFit.Scale, 4 * Device);

        Assert.True(wrap.Folds);
        Assert.Contains("beyond the device's 1048576", wrap.Warning, StringComparison.Ordinal);
        Assert.Equal([W(4096, 4096)], wrap.Fold(W((3 * Device) + 4096, 4096)));
        Assert.Equal([W((3 * Device / 4) + 1024, 4096)], scale.Fold(W((3 * Device) + 4096, 4096)));
    }

    [Fact]
    public void ARequestThatWouldCrossTheEndIsMovedBackToEndThere()
    {
        var folder = new TraceFolder(Device, TraceFit.Wrap, 2 * Device);

        Assert.Equal([W(Device - 8192, 8192)], folder.Fold(W((2 * Device) - 4096, 8192)));
    }

    [Fact]
    public void LongRequestsAreSplitAtTheLargestTransferAndEmptyOnesDropped()
    {
        var folder = new TraceFolder(Device, TraceFit.Wrap, Device, maxTransferBytes: 64 * 1024);

        Assert.Equal([W(0, 65536), W(65536, 65536), W(131072, 4096)], folder.Fold(W(0, 135168)));
        Assert.Empty(folder.Fold(W(0, 0)));
        Assert.Equal(
            [new TraceRequest(1, 5, TraceOperation.Flush, 0, 0)],
            folder.Fold(new TraceRequest(1, 5, TraceOperation.Flush, 0, 0))
        );
    }

    [Fact]
    public void TheSummaryCountsTheCommandsAfterSplitting()
    {
        TraceSummary summary = TraceSummary.Scan(
            [W(0, 3 * 65536), W(0, 0), new TraceRequest(3, 9, TraceOperation.Flush, 0, 0)],
            maxTransferBytes: 65536
        );

        Assert.Equal(3, summary.Records);
        Assert.Equal(4, summary.Commands);
        Assert.Equal(1, summary.Empty);
        Assert.Equal(3 * 65536, summary.EndBytes);
        Assert.Equal(9, summary.DurationNanoseconds);
    }

    [Fact]
    public void ALengthThatIsAMultipleOfTheLargestTransferSplitsIntoWholePiecesOnly()
    {
        var folder = new TraceFolder(Device, TraceFit.Wrap, Device, maxTransferBytes: 64 * 1024);

        Assert.Equal([W(0, 65536), W(65536, 65536)], folder.Fold(W(0, 131072)));
    }

    [Fact]
    public void TheSummaryCountsFuaAndLeavesEmptyRequestsOutOfTheExtent()
    {
        TraceSummary summary = TraceSummary.Scan([W(0, 4096) with { Fua = true }, W(1 << 20, 0), W(8192, 4096)]);

        Assert.Equal(1, summary.Fua);
        Assert.Equal(1, summary.Empty);
        Assert.Equal(12288, summary.EndBytes);
        Assert.Equal(2, summary.Commands);
        Assert.Equal(
            "3 requests (0 reads, 3 writes, 0 trims, 0 flushes, 1 FUA, 1 empty passed over) over 12288 bytes in 0 s",
            summary.Describe()
        );
        Assert.Equal(
            "1 requests (0 reads, 1 writes, 0 trims, 0 flushes) over 4096 bytes in 0.002 s",
            TraceSummary.Scan([W(0, 4096) with { TimeNanoseconds = 2_000_000 }]).Describe()
        );
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(256)]
    public void AnAlignmentThatIsNotAPowerOfTwoFrom512IsRefused(long alignment)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new TraceFolder(Device, TraceFit.Wrap, Device, alignmentBytes: alignment)
        );
    }

    [Fact]
    public void ADeviceOrATransferSmallerThanOneBlockIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new TraceFolder(2048, TraceFit.Wrap, Device, alignmentBytes: 4096)
        );
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new TraceFolder(Device, TraceFit.Wrap, Device, maxTransferBytes: 2048, alignmentBytes: 4096)
        );
        Assert.Equal(
            [W(4096, 8192)],
            new TraceFolder(Device, TraceFit.Wrap, Device, alignmentBytes: 4096).Fold(W(5000, 4000))
        );
    }

    private static TraceRequest W(long offset, long length) => new(1, 0, TraceOperation.Write, offset, length);
}
