using Controller.Tests.Support;
using Controller.Traces;

namespace Controller.Tests.Traces;

/// <summary>
/// Each format read as its writers write it: every operation it has, times, units, and errors that name the line.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TraceReaderTests
{
    private static List<TraceRequest> Read(TraceFormat format, string text) =>
        [.. TraceReader.Read(new StringReader(text), format, "t")];

    [Fact]
    public void BlkparseTakesOnlyDEventsAndReadsRwbsAsTheKernelWritesIt()
    {
        const string text = """
              8,0    3        1     0.000100000   697  Q   W 100 + 8 [jbd2]
              8,0    3        2     0.000200000   697  D   W 100 + 8 [jbd2]
              8,0    3        3     0.000300000   697  D  RA 200 + 16 [cat]
              8,0    0        4     0.000400000   697  D  DS 4096 + 2048 [fstrim]
              8,0    0        5     0.000500000   697  D FWS 300 + 8 [jbd2]
              8,0    0        6     0.000600000   697  D WFS 400 + 8 [jbd2]
              8,0    0        7     0.000700000   697  D  FN [kworker]
              8,0    0        8     0.000800000   697  C   W 100 + 8 [0]
              8,0    1        9     0.000900000   697  D   F [kworker]
            CPU0 (8,0):
             Reads Queued:           0,        0KiB	 Writes Queued:           1,        4KiB
            """;

        List<TraceRequest> requests = Read(TraceFormat.Blkparse, text);

        Assert.Equal(
            [
                new TraceRequest(2, 0, TraceOperation.Write, 100 * 512, 8 * 512),
                new TraceRequest(3, 100_000, TraceOperation.Read, 200 * 512, 16 * 512),
                new TraceRequest(4, 200_000, TraceOperation.Trim, 4096 * 512, 2048 * 512),
                new TraceRequest(5, 300_000, TraceOperation.Flush, 0, 0),
                new TraceRequest(5, 300_000, TraceOperation.Write, 300 * 512, 8 * 512),
                new TraceRequest(6, 400_000, TraceOperation.Write, 400 * 512, 8 * 512, Fua: true),
                new TraceRequest(7, 500_000, TraceOperation.Flush, 0, 0),
                new TraceRequest(9, 700_000, TraceOperation.Flush, 0, 0),
            ],
            requests
        );
    }

    [Fact]
    public void FioIologVersion3HasMicrosecondTimesAndVersion2IsPacedByWaits()
    {
        const string v3 = """
            fio version 3 iolog
            19 /dev/nbd0 add
            100 /dev/nbd0 open
            106 /dev/nbd0 trim 0 4096
            150 /dev/nbd0 write 8192 4096
            183 /dev/nbd0 sync 8192 0
            190 /dev/nbd0 datasync 8192 0
            200 /dev/nbd0 read 8192 4096
            300 /dev/nbd0 close
            """;
        const string v2 = """
            fio version 2 iolog
            /dev/nbd0 add
            /dev/nbd0 open
            /dev/nbd0 write 0 4096
            /dev/nbd0 wait 250
            /dev/nbd0 read 0 4096
            /dev/nbd0 close
            """;

        Assert.Equal(
            [
                new TraceRequest(4, 0, TraceOperation.Trim, 0, 4096),
                new TraceRequest(5, 44_000, TraceOperation.Write, 8192, 4096),
                new TraceRequest(6, 77_000, TraceOperation.Flush, 0, 0),
                new TraceRequest(7, 84_000, TraceOperation.Flush, 0, 0),
                new TraceRequest(8, 94_000, TraceOperation.Read, 8192, 4096),
            ],
            Read(TraceFormat.FioIolog, v3)
        );
        Assert.Equal(
            [
                new TraceRequest(4, 0, TraceOperation.Write, 0, 4096),
                new TraceRequest(6, 250_000, TraceOperation.Read, 0, 4096),
            ],
            Read(TraceFormat.FioIolog, v2)
        );
    }

    [Fact]
    public void MqSimMsrAndSpcReadTheirUnits()
    {
        Assert.Equal(
            [
                new TraceRequest(1, 0, TraceOperation.Write, 264719034L * 512, 16 * 512),
                new TraceRequest(2, 1500, TraceOperation.Read, 8 * 512, 512),
            ],
            Read(TraceFormat.MqSim, "938513000 4 264719034 16 0\n938514500 4 8 1 1\n")
        );
        Assert.Equal(
            [
                new TraceRequest(2, 0, TraceOperation.Read, 4096, 8192),
                new TraceRequest(3, 1_234_500, TraceOperation.Write, 0, 512),
            ],
            Read(
                TraceFormat.Msr,
                "Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime\n128166372000000000,hm,0,Read,4096,8192,100\n128166372000012345,hm,0,write,0,512,100\n"
            )
        );
        Assert.Equal(
            [
                new TraceRequest(1, 0, TraceOperation.Read, 303567L * 512, 3584),
                new TraceRequest(2, 26_214_000, TraceOperation.Write, 55590L * 512, 3072),
            ],
            Read(TraceFormat.Spc, "0,303567,3584,r,0.000000\n1,55590,3072,W,0.026214,extra\n")
        );
    }

    [Theory]
    [InlineData(TraceFormat.MqSim, "10 0 5 8 2\n", "t:1: type '2' is neither 0 (write) nor 1 (read)")]
    [InlineData(TraceFormat.MqSim, "10 0 -5 8 0\n", "t:1: lba '-5' is not a whole number")]
    [InlineData(TraceFormat.MqSim, "10 0 5\n", "t:1: '10 0 5' is not 'time device lba sectors type'")]
    [InlineData(TraceFormat.FioIolog, "fio version 1 iolog\n", "t:1: the first line is 'fio version 1 iolog'")]
    [InlineData(TraceFormat.FioIolog, "fio version 3 iolog\n5 f write 0\n", "t:2: 'write' needs its length")]
    [InlineData(
        TraceFormat.FioIolog,
        "fio version 2 iolog\nf append 0 4096\n",
        "t:2: action 'append' is not one fio writes"
    )]
    [InlineData(TraceFormat.Blkparse, "  8,0 0 1 0.1 7 D X 5 + 8 [a]\n", "t:1: RWBS 'X' has no operation")]
    [InlineData(TraceFormat.Blkparse, "  8,0 0 1 0.1x 7 D W 5 + 8 [a]\n", "t:1: time '0.1x' is not seconds")]
    [InlineData(TraceFormat.Msr, "1,h,0,Erase,0,512,1\n", "t:1: type 'Erase' is neither Read nor Write")]
    [InlineData(TraceFormat.Spc, "0,1,512,x,0.5\n", "t:1: opcode 'x' is neither r nor w")]
    [InlineData(TraceFormat.Spc, "0,1,512,r\n", "t:1: '0,1,512,r' is not 'ASU,LBA,Size,Opcode,Timestamp'")]
    [InlineData(
        TraceFormat.Blkparse,
        "938513000 4 264719034 16 0\n",
        "t: not a single blkparse request in it; is the file in another format?"
    )]
    [InlineData(TraceFormat.Msr, "", "t: not a single msr request in it")]
    public void ABadRecordIsRefusedWithItsLineAndValue(TraceFormat format, string text, string message)
    {
        var e = Assert.Throws<TraceFormatException>(() => Read(format, text));

        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("12", 12_000_000_000L)]
    [InlineData("1.5", 1_500_000_000L)]
    [InlineData("0.000000001", 1L)]
    [InlineData("999999999.999999999", 999_999_999_999_999_999L)]
    public void SecondsAreReadExactly(string seconds, long nanoseconds)
    {
        List<TraceRequest> requests = Read(TraceFormat.Spc, $"0,0,512,r,0\n0,0,512,r,{seconds}\n");

        Assert.Equal(nanoseconds, requests[1].TimeNanoseconds);
    }

    [Theory]
    [InlineData("1.2.3")]
    [InlineData("1234567890.5")]
    [InlineData("1.1234567891")]
    [InlineData(".5")]
    [InlineData("1e3")]
    public void SecondsThatAreNotDigitsAPointAndAtMostNineDecimalsAreRefused(string seconds)
    {
        var e = Assert.Throws<TraceFormatException>(() => Read(TraceFormat.Spc, $"0,0,512,r,{seconds}\n"));

        Assert.Equal($"t:1: timestamp '{seconds}' is not seconds such as 12.000345", e.Message);
    }

    [Fact]
    public void CommentLinesArePassedOver()
    {
        Assert.Single(Read(TraceFormat.MqSim, "# time device lba sectors type\n\n10 0 5 8 0\n"));
        Assert.Single(Read(TraceFormat.Spc, "# ASU,LBA,Size,Opcode,Timestamp\n\n0,1,512,r,0.5\n"));
    }

    [Fact]
    public void AFioVersion3LineWithoutItsActionIsRefused()
    {
        var e = Assert.Throws<TraceFormatException>(() =>
            Read(TraceFormat.FioIolog, "fio version 3 iolog\n5 /dev/nbd0\n")
        );

        Assert.Equal("t:2: '5 /dev/nbd0' is not 'time file action [offset length]'", e.Message);
    }

    [Fact]
    public void AGzippedTraceIsReadThroughGzip()
    {
        using var temp = new TempDirectory();
        string path = temp.File("t.trace.gz");
        using (var file = File.Create(path))
        using (var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest))
        using (var text = new StreamWriter(gzip))
        {
            text.Write("100 0 8 16 0\n250 0 8 16 1\n");
        }

        Assert.Equal(
            [
                new TraceRequest(1, 0, TraceOperation.Write, 4096, 8192),
                new TraceRequest(2, 150, TraceOperation.Read, 4096, 8192),
            ],
            TraceReader.Open(path, TraceFormat.MqSim)
        );
        Assert.Throws<FileNotFoundException>(() => TraceReader.Open(temp.File("none.trace"), TraceFormat.MqSim));
    }

    [Fact]
    public void FormatsAreNamedAsTheCommandLinesTakeThem()
    {
        Assert.Equal(TraceFormat.FioIolog, TraceFormats.Parse("FIO"));
        Assert.Equal(TraceFormat.FioIolog, TraceFormats.Parse("iolog"));
        Assert.All(TraceFormats.Names, name => Assert.Equal(name, TraceFormats.NameOf(TraceFormats.Parse(name))));
        var e = Assert.Throws<ArgumentException>(() => TraceFormats.Parse("csv"));
        Assert.Contains("'csv'", e.Message, StringComparison.Ordinal);
        Assert.Contains("blkparse, fio, mqsim, msr, spc", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("blkparse.txt", TraceFormat.Blkparse, 300)]
    [InlineData("fio-trimwrite.iolog", TraceFormat.FioIolog, 1024)]
    [InlineData("mqsim_tpcc-small.trace", TraceFormat.MqSim, 6999)]
    [InlineData("msr.csv", TraceFormat.Msr, 400)]
    [InlineData("spc.csv", TraceFormat.Spc, 400)]
    public void TheShippedSamplesReadWhole(string file, TraceFormat format, long requests)
    {
        TraceSummary summary = TraceSummary.Scan(TraceReader.Open(Sample(file), format));

        // A blkparse preflush write is two requests; every other record is one.
        Assert.Equal(
            requests,
            summary.Records - (format == TraceFormat.Blkparse ? CountLines(Sample(file), " D FWS ") : 0)
        );
        Assert.True(summary.Reads + summary.Writes + summary.Trims + summary.Flushes == summary.Records);
        Assert.True(summary.DurationNanoseconds > 0);
    }

    [Fact]
    public void TheDiscardRichSampleIsHalfTrims()
    {
        TraceSummary summary = TraceSummary.Scan(TraceReader.Open(Sample("fio-trimwrite.iolog"), TraceFormat.FioIolog));

        Assert.Equal(512, summary.Trims);
        Assert.Equal(512, summary.Writes);
    }

    internal static string Sample(string file) =>
        Repository.PathOf("tests", "Controller.Tests", "TestData", "Traces", file);

    private static long CountLines(string path, string containing) =>
        File.ReadLines(path).LongCount(l => l.Contains(containing, StringComparison.Ordinal));
}
