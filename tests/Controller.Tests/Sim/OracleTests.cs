using Controller.Emulator.Sim;
using Controller.Firmware.Host;

namespace Controller.Tests.Sim;

/// <summary>The oracle's classes, one by one, on hand-made histories.</summary>
[Trait("Category", "Unit")]
public sealed class OracleTests
{
    private const int Sector = 4096;

    [Fact]
    public void AnExactReadOfWhatWasWrittenPasses()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint write = Write(oracle, 0, 2 * Sector);

        Assert.Null(oracle.CheckExact(0, Stamped(0, 2 * Sector, write)));
        Assert.Null(oracle.CheckExact(2 * Sector, new byte[2 * Sector]));
    }

    [Fact]
    public void FlippedBitsAreBitCorruption()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint write = Write(oracle, 0, Sector);
        byte[] read = Stamped(0, Sector, write);
        read[700] ^= 0x10;

        Violation? violation = oracle.CheckExact(0, read);

        Assert.Equal(ViolationClass.BitCorruption, violation?.Class);
        Assert.Contains("block 1 holds bytes no operation wrote", violation!.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void DataOfAnotherAddressIsAFlyingWrite()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        uint other = Write(oracle, 2 * Sector, Sector);

        Violation? violation = oracle.CheckExact(0, Stamped(2 * Sector, Sector, other));

        Assert.Equal(ViolationClass.FlyingWrite, violation?.Class);
        Assert.Equal(0, violation!.Sector);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AfterACutEitherTheDurableOrTheNewerValueIsAllowed(bool newerSurvived)
    {
        var (oracle, old, newer) = OverwrittenThenCut();

        Assert.Null(oracle.CheckAfterCut(0, Stamped(0, Sector, newerSurvived ? newer : old)));
        Assert.Null(oracle.CheckAfterCut(1, new byte[Sector]));
    }

    [Fact]
    public void HalfOfOneWriteAndHalfOfAnotherIsAShornWrite()
    {
        var (oracle, old, newer) = OverwrittenThenCut();
        byte[] read = Stamped(0, Sector, old);
        BlockStamp.FillRange(read.AsSpan(Sector / 2), 4, newer);

        Violation? violation = oracle.CheckAfterCut(0, read);

        Assert.Equal(ViolationClass.ShornWrite, violation?.Class);
    }

    [Fact]
    public void AFlushedWriteMissingAfterACutIsALostDurableWrite()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, Sector, Sector);
        Flush(oracle);
        oracle.PowerCut([], "test");

        Violation? violation = oracle.CheckAfterCut(1, new byte[Sector]);

        Assert.Equal(ViolationClass.LostDurableWrite, violation?.Class);
        Assert.Contains(
            "op 1 write whole sector completed; op 2 flush; power cut after op 2",
            violation!.History,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void AFuaWriteIsDurableWithoutAFlush()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        uint id = oracle.Submit(HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 0, Sector);
        oracle.Complete(id, ok: true);
        Write(oracle, Sector, Sector);
        oracle.PowerCut([], "test");

        Assert.Equal(ViolationClass.LostDurableWrite, oracle.CheckAfterCut(0, new byte[Sector])?.Class);
        Assert.Null(oracle.CheckAfterCut(1, new byte[Sector]));
    }

    [Fact]
    public void DataBackAfterADurableTrimIsAResurrectedTrim()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        uint write = Write(oracle, 0, Sector);
        Flush(oracle);
        uint trim = oracle.Submit(HostOpcode.Trim, HostCommandOptions.None, 0, Sector);
        oracle.Complete(trim, ok: true);
        Flush(oracle);
        oracle.PowerCut([], "test");

        Assert.Equal(ViolationClass.ResurrectedTrim, oracle.CheckAfterCut(0, Stamped(0, Sector, write))?.Class);
    }

    /// <summary>
    /// FUA makes every command that writes durable at its completion, not writes alone: a FUA
    /// trim or zeroing (with or without NO_HOLE, whole sectors or partial ones) whose old data is
    /// back after a cut is a resurrected trim, with no flush after it; the same command without
    /// FUA may be undone by the cut.
    /// </summary>
    [Theory]
    [InlineData(HostOpcode.Trim, HostCommandOptions.None, 0, Sector)]
    [InlineData(HostOpcode.Trim, HostCommandOptions.None, 512, 1024)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.None, 0, Sector)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.NoHole, 0, Sector)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.NoHole, 1536, 512)]
    public void AFuaTrimOrZeroingIsDurableWithoutAFlush(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length
    )
    {
        foreach (bool fua in new[] { true, false })
        {
            var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
            uint write = Write(oracle, 0, Sector);
            Flush(oracle);
            uint id = oracle.Submit(
                opcode,
                flags | (fua ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None),
                offset,
                length
            );
            oracle.Complete(id, ok: true);
            oracle.PowerCut([], "test");

            Violation? violation = oracle.CheckAfterCut(0, Stamped(0, Sector, write));

            Assert.Equal(fua ? ViolationClass.ResurrectedTrim : null, violation?.Class);
        }
    }

    [Fact]
    public void WithPowerLossProtectionEveryCompletedWriteIsDurable()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: true);
        Write(oracle, 0, Sector);
        oracle.PowerCut([], "test");

        Assert.Equal(ViolationClass.LostDurableWrite, oracle.CheckAfterCut(0, new byte[Sector])?.Class);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFailedWriteLeavesEachSectorAsItWasOrAsAsked(bool applied)
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint old = Write(oracle, 0, 2 * Sector);
        uint failed = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, 2 * Sector);
        oracle.Complete(failed, ok: false);
        byte[] read = Stamped(0, 2 * Sector, old);
        if (applied)
        {
            BlockStamp.FillRange(read.AsSpan(Sector, Sector), 8, failed);
        }

        Assert.Null(oracle.CheckExact(0, read));
        Assert.NotNull(oracle.CheckExact(0, new byte[2 * Sector]));
    }

    [Fact]
    public void AfterACheckTheSectorHoldsWhatWasRead()
    {
        // The check settles the sector on what it read: later reads must match that exactly.
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        oracle.PowerCut([], "test");
        Assert.Null(oracle.CheckAfterCut(0, new byte[Sector]));

        Assert.Null(oracle.CheckExact(0, new byte[Sector]));
        Assert.NotNull(oracle.CheckExact(0, Stamped(0, Sector, 1)));
    }

    /// <summary>Sector 0 written and flushed, written again, then a cut.</summary>
    private static (Oracle Oracle, uint Old, uint Newer) OverwrittenThenCut()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        uint old = Write(oracle, 0, Sector);
        Flush(oracle);
        uint newer = Write(oracle, 0, Sector);
        oracle.PowerCut([], "test");
        return (oracle, old, newer);
    }

    /// <summary>NBD: a read in flight with a write may return what was there before it or what it wrote.</summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void AReadInFlightWithAWriteMayReturnEitherValue(bool readFirst, bool returnsNewer)
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint old = Write(oracle, 0, Sector);
        uint read = readFirst ? oracle.Submit(HostOpcode.Read, HostCommandOptions.None, 0, Sector) : 0;
        uint newer = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        read = readFirst ? read : oracle.Submit(HostOpcode.Read, HostCommandOptions.None, 0, Sector);
        oracle.Complete(newer, ok: true);
        oracle.Complete(read, ok: true);

        Assert.Null(oracle.CheckExact(0, Stamped(0, Sector, returnsNewer ? newer : old), read));
    }

    /// <summary>
    /// The canary of the read window: a value from before the write in flight, or from elsewhere, is still caught.
    /// </summary>
    [Fact]
    public void AReadInFlightWithAWriteMayNotReturnAnOlderValue()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint oldest = Write(oracle, 0, Sector);
        Write(oracle, 0, Sector);
        uint read = oracle.Submit(HostOpcode.Read, HostCommandOptions.None, 0, Sector);
        uint newest = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        oracle.Complete(newest, ok: true);
        oracle.Complete(read, ok: true);

        Violation? violation = oracle.CheckExact(0, Stamped(0, Sector, oldest), read);

        Assert.NotNull(violation);
        Assert.Contains("a read in flight with writes to it", violation.Detail, StringComparison.Ordinal);
    }

    /// <summary>A read submitted after a write completed must see it, whatever was in flight before.</summary>
    [Fact]
    public void AReadAfterAWriteCompletedMustSeeIt()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint old = Write(oracle, 0, Sector);
        uint newer = Write(oracle, 0, Sector);
        uint read = oracle.Submit(HostOpcode.Read, HostCommandOptions.None, 0, Sector);
        oracle.Complete(read, ok: true);

        Assert.NotNull(oracle.CheckExact(0, Stamped(0, Sector, old), read));
        Assert.Null(oracle.CheckExact(0, Stamped(0, Sector, newer)));
    }

    /// <summary>A write in flight with a read of other sectors widens nothing.</summary>
    [Fact]
    public void AWriteElsewhereDoesNotWidenARead()
    {
        var oracle = new Oracle(4, tracksDurability: false, everyCompletionDurable: false);
        uint old = Write(oracle, 0, Sector);
        Write(oracle, 0, Sector);
        uint read = oracle.Submit(HostOpcode.Read, HostCommandOptions.None, 0, Sector);
        uint elsewhere = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, Sector, Sector);
        oracle.Complete(elsewhere, ok: true);
        oracle.Complete(read, ok: true);

        Assert.NotNull(oracle.CheckExact(0, Stamped(0, Sector, old), read));
    }

    /// <summary>NBD: a flush covers the writes replied to before it, not those in flight with it.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFlushDoesNotCoverAWriteInFlightWithIt(bool newerSurvived)
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        uint old = Write(oracle, 0, Sector);
        uint newer = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint flush = oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
        oracle.Complete(newer, ok: true);
        oracle.Complete(flush, ok: true);
        oracle.PowerCut([], "test");

        Assert.Null(oracle.CheckAfterCut(0, Stamped(0, Sector, newerSurvived ? newer : old)));
    }

    /// <summary>The canary: what the flush does cover is held durable, in flight with other writes or not.</summary>
    [Fact]
    public void AFlushCoversWhatWasRepliedToBeforeIt()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        uint covered = Write(oracle, Sector, Sector);
        uint elsewhere = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 2 * Sector, Sector);
        uint flush = oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
        uint after = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, Sector, Sector);
        oracle.Complete(elsewhere, ok: true);
        oracle.Complete(flush, ok: true);
        oracle.Complete(after, ok: true);
        oracle.PowerCut([], "test");

        Violation? lost = oracle.CheckAfterCut(0, new byte[Sector]);
        Assert.Equal(ViolationClass.LostDurableWrite, lost?.Class);
        Assert.Null(oracle.CheckAfterCut(1, Stamped(Sector, Sector, covered)));
        Assert.Null(oracle.CheckAfterCut(2, new byte[Sector]));
    }

    /// <summary>
    /// A write submitted after a flush, not covered by it, may be lost; what the flush covered may not.
    /// </summary>
    [Fact]
    public void AWriteSubmittedWhileAFlushIsInFlightKeepsTheCoveredValueDurable()
    {
        var oracle = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        uint covered = Write(oracle, 0, Sector);
        uint flush = oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
        uint after = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        oracle.Complete(after, ok: true);
        oracle.Complete(flush, ok: true);
        oracle.PowerCut([], "test");

        Assert.Null(oracle.CheckAfterCut(0, Stamped(0, Sector, covered)));
        var again = new Oracle(4, tracksDurability: true, everyCompletionDurable: false);
        uint oldest = Write(again, 0, Sector);
        Write(again, 0, Sector);
        uint flush2 = again.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
        uint after2 = again.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        again.Complete(after2, ok: true);
        again.Complete(flush2, ok: true);
        again.PowerCut([], "test");

        Assert.Equal(ViolationClass.LostDurableWrite, again.CheckAfterCut(0, Stamped(0, Sector, oldest))?.Class);
    }

    private static uint Write(Oracle oracle, long offset, long length)
    {
        uint id = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, offset, length);
        oracle.Complete(id, ok: true);
        return id;
    }

    private static void Flush(Oracle oracle) =>
        oracle.Complete(oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0), ok: true);

    private static byte[] Stamped(long offset, int length, uint operation)
    {
        byte[] data = new byte[length];
        BlockStamp.FillRange(data, offset / BlockStamp.Bytes, operation);
        return data;
    }
}
