using Controller.Host.Commands;

namespace Controller.Tests.Host;

/// <summary><c>ssdhost bench</c>'s latency histogram as text: bars in proportion, none clipped.</summary>
[Trait("Category", "Unit")]
public sealed class BenchHistogramTests
{
    [Fact]
    public void TheFullestMergedBucketGetsTheWholeWidthAndTheOthersTheirShare()
    {
        // Fine buckets 1000-1023 ns fall into one power-of-two bucket (up to 1023 ns) holding 300;
        // the bucket up to 2047 ns holds 150 in one fine bucket, more than any fine one below it.
        (long, long)[] fine = [(1000, 100), (1010, 100), (1023, 100), (2000, 150), (4000, 30)];

        IReadOnlyList<string> lines = BenchCommand.HistogramLines(fine, 40);

        Assert.Equal(3, lines.Count);
        Assert.Equal([40, 20, 4], lines.Select(l => l.Count(c => c == '#')));
        Assert.Contains(" 300 ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("         1.0", lines[0], StringComparison.Ordinal);
    }
}
