using Controller.Firmware.Flash;
using Controller.Firmware.Host;
using Controller.Hosting.Recording;
using Controller.Tests.Support;

namespace Controller.Tests.Recording;

/// <summary>
/// The recording file: every kind of record round trips, and a file cut anywhere reads as a prefix of its records.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SessionRecordingTests
{
    [Theory]
    [InlineData(RecordedData.Full)]
    [InlineData(RecordedData.Digest)]
    public void EveryKindOfRecordReadsBackAsWritten(RecordedData data)
    {
        using var temp = new TempDirectory();
        string path = temp.File("s.rec");
        byte[] written = [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 31))];
        using (var recorder = new SessionRecorder(path, "{\"nand\":{}}", "a device", data))
        {
            recorder.Clock(5);
            recorder.Clock(5);
            recorder.Command(1, 2, HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 8192, 4096, written);
            recorder.Command(2, 3, HostOpcode.Write, HostCommandOptions.None, 0, 4096, new byte[4096]);
            recorder.Command(3, 2, HostOpcode.Trim, HostCommandOptions.None, 0, 1 << 30, default);
            recorder.Clock(70_000_000_000);
            recorder.Step(background: true);
            recorder.Step(background: false);
            recorder.Management(SessionRecordKind.PowerCut);
            recorder.Faults("{\"rawBitErrorRate\":0.001}");
            recorder.Management(SessionRecordKind.Checkpoint);
            recorder.Management(SessionRecordKind.Shutdown);
            recorder.NandRead(
                new PageAddress(9, 3),
                new NandCompletion(NandStatus.Corrected, 123_456, 7),
                [1, 2, 3],
                [4, 5],
                modelled: false
            );
            recorder.NandRead(
                new PageAddress(9, 4),
                new NandCompletion(NandStatus.Ok, 123_999),
                [1, 2, 3],
                [4, 5],
                modelled: true
            );
            recorder.NandWrite(
                SessionRecordKind.NandProgram,
                new PageAddress(10, 0),
                new NandCompletion(NandStatus.ProgramFailed, 200_000)
            );
            recorder.NandWrite(
                SessionRecordKind.NandErase,
                new PageAddress(11, 0),
                new NandCompletion(NandStatus.EraseFailed, 300_000)
            );
            recorder.NandDie(5, new NandDieStatus(true, 400_000, 2));
            recorder.Finish(0xfeedface12345678);
        }

        using SessionRecording recording = SessionRecording.Open(path);
        List<SessionRecord> records = [.. recording.Records()];

        Assert.Equal("{\"nand\":{}}", recording.ConfigJson);
        Assert.Equal("a device", recording.Device);
        Assert.Equal(data, recording.Data);
        Assert.False(recording.Truncated);
        Assert.Equal(
            [
                SessionRecordKind.Clock,
                SessionRecordKind.Command,
                SessionRecordKind.Command,
                SessionRecordKind.Command,
                SessionRecordKind.Clock,
                SessionRecordKind.Step,
                SessionRecordKind.Step,
                SessionRecordKind.PowerCut,
                SessionRecordKind.Faults,
                SessionRecordKind.Checkpoint,
                SessionRecordKind.Shutdown,
                SessionRecordKind.NandRead,
                SessionRecordKind.NandRead,
                SessionRecordKind.NandProgram,
                SessionRecordKind.NandErase,
                SessionRecordKind.NandDie,
                SessionRecordKind.End,
            ],
            records.Select(r => r.Kind)
        );
        Assert.Equal(5, records[0].Nanoseconds);
        SessionRecord write = records[1];
        Assert.Equal(
            (1L, 2, HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 8192L, 4096L),
            (write.Id, write.Connection, write.Opcode, write.Flags, write.Offset, write.Length)
        );
        Assert.Equal((3L, HostOpcode.Trim, 1L << 30), (records[3].Id, records[3].Opcode, records[3].Length));
        Assert.Equal(70_000_000_000, records[4].Nanoseconds);
        Assert.True(records[5].Background);
        Assert.False(records[6].Background);
        Assert.Equal("{\"rawBitErrorRate\":0.001}", records[8].Text);
        Assert.Equal(
            (new PageAddress(9, 3), new NandCompletion(NandStatus.Corrected, 123_456, 7)),
            (records[11].Page, records[11].Completion)
        );
        Assert.Equal([1, 2, 3], records[11].Data);
        Assert.Equal([4, 5], records[11].Spare);
        Assert.Null(records[12].Data);
        Assert.Equal(
            (new PageAddress(10, 0), NandStatus.ProgramFailed, 200_000L),
            (records[13].Page, records[13].Completion.Status, records[13].Completion.CompletesAtNanoseconds)
        );
        Assert.Equal(
            (new PageAddress(11, 0), NandStatus.EraseFailed),
            (records[14].Page, records[14].Completion.Status)
        );
        Assert.Equal((5, new NandDieStatus(true, 400_000, 2)), (records[15].Page.Block, records[15].Die));
        Assert.Equal(0xfeedface12345678, records[16].Hash);
        byte[] replayed = new byte[4096];
        write.FillData(replayed);
        byte[] zeros = new byte[4096];
        records[2].FillData(zeros);
        Assert.Equal(new byte[4096], zeros);
        if (data == RecordedData.Full)
        {
            Assert.Equal(written, replayed);
        }
        else
        {
            // Data of its own, made from the digest: not zeros, the same every time.
            Assert.Contains(replayed, b => b != 0);
            byte[] again = new byte[4096];
            write.FillData(again);
            Assert.Equal(replayed, again);
        }
    }

    /// <summary>
    /// Every length the file could have been cut at (a kill at any instant) reads as a prefix of the records, never as
    /// an error.
    /// </summary>
    [Fact]
    public void AFileCutAtAnyByteReadsAsAPrefixOfItsRecords()
    {
        using var temp = new TempDirectory();
        string path = temp.File("s.rec");
        using (var recorder = new SessionRecorder(path, "{}", "d", RecordedData.Full))
        {
            for (int i = 1; i <= 40; i++)
            {
                recorder.Clock(i * 1000);
                recorder.Command(
                    i,
                    1,
                    i % 3 == 0 ? HostOpcode.Read : HostOpcode.Write,
                    HostCommandOptions.None,
                    i * 4096,
                    512,
                    new byte[512]
                );
                recorder.Step(i % 2 == 0);
                recorder.Flush();
            }

            recorder.Finish(7);
        }

        byte[] whole = File.ReadAllBytes(path);
        List<SessionRecord> all;
        using (SessionRecording recording = SessionRecording.Open(path))
        {
            all = [.. recording.Records()];
        }

        int readable = 0;
        for (int length = 0; length < whole.Length; length++)
        {
            string cut = temp.File($"cut.rec");
            File.WriteAllBytes(cut, whole[..length]);
            SessionRecording recording;
            try
            {
                recording = SessionRecording.Open(cut);
            }
            catch (InvalidDataException)
            {
                // Cut inside the header: not a recording yet.
                Assert.True(readable == 0, $"a cut at {length} bytes loses the header after a longer cut kept it");
                continue;
            }

            using (recording)
            {
                List<SessionRecord> records = [.. recording.Records()];
                Assert.Equal(all.Take(records.Count).Select(Key), records.Select(Key));
                Assert.True(records.Count <= all.Count);
                readable = Math.Max(readable, records.Count);
            }
        }

        // Each flushed group of records is readable from a file cut just after it.
        Assert.True(readable >= all.Count - 4, $"{readable} of {all.Count} records readable from the longest cut");
    }

    /// <summary>A record as text, its data as bytes (records compare their arrays by reference).</summary>
    private static string Key(SessionRecord r) =>
        $"{r with { Data = null }} {(r.Data is null ? "-" : Convert.ToHexString(r.Data))}";

    [Fact]
    public void AFileThatIsNotARecordingIsRefusedWithWhatItIs()
    {
        using var temp = new TempDirectory();
        string path = temp.File("not.rec");
        File.WriteAllText(path, "fio version 3 iolog\n");

        var e = Assert.Throws<InvalidDataException>(() => SessionRecording.Open(path));

        Assert.Contains("is not a session recording", e.Message, StringComparison.Ordinal);
    }
}
