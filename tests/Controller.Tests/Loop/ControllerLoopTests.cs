using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Loop;

[Trait("Category", "Unit")]
public sealed class ControllerLoopTests : IDisposable
{
    private const int Sector = 4096;
    private readonly VirtualClock _clock = new();
    private readonly EmulatedNand _nand;
    private ControllerLoop _loop;

    public ControllerLoopTests()
    {
        _nand = Nands.Tiny(_clock);
        _loop = Boot();
    }

    public void Dispose() => _nand.Dispose();

    [Fact]
    public void AReadAfterAWriteOrTrimSubmittedBeforeItSeesItsResult()
    {
        byte[] data = Filled(3 * Sector, 0x5A);
        byte[] read = new byte[3 * Sector];

        Submit(HostOpcode.Write, 0, data);
        Submit(HostOpcode.Read, 0, read);
        Submit(HostOpcode.Trim, Sector, null, Sector);
        byte[] afterTrim = new byte[3 * Sector];
        Submit(HostOpcode.Read, 0, afterTrim);
        HostCompletion[] completions = Drain();

        Assert.All(completions, c => Assert.Equal(HostStatus.Ok, c.Status));
        Assert.Equal([0L, 1, 2, 3], completions.Select(c => c.Id));
        Assert.Equal(data, read);
        Assert.All(afterTrim[Sector..(2 * Sector)], b => Assert.Equal(0, b));
        Assert.Equal(data[..Sector], afterTrim[..Sector]);
    }

    [Fact]
    public void AFlushMakesEveryCompletedWriteAndTrimDurable()
    {
        Submit(HostOpcode.Write, 0, Filled(8 * Sector, 0x11));
        Submit(HostOpcode.Trim, 2 * Sector, null, 2 * Sector);
        Submit(HostOpcode.Flush, 0, null);
        Drain();

        CutPowerAndReboot();

        byte[] read = new byte[8 * Sector];
        Submit(HostOpcode.Read, 0, read);
        Assert.Equal(HostStatus.Ok, Drain().Single().Status);
        Assert.All(read[..(2 * Sector)], b => Assert.Equal(0x11, b));
        Assert.All(read[(2 * Sector)..(4 * Sector)], b => Assert.Equal(0, b));
        Assert.All(read[(4 * Sector)..], b => Assert.Equal(0x11, b));
    }

    [Fact]
    public void AForceUnitAccessWriteIsDurableWhenItCompletes()
    {
        Submit(HostOpcode.Write, 0, Filled(Sector, 0x22), options: HostCommandOptions.ForceUnitAccess);
        Submit(HostOpcode.Write, Sector, Filled(Sector, 0x33));
        Drain();

        CutPowerAndReboot();

        byte[] read = new byte[Sector];
        Submit(HostOpcode.Read, 0, read);
        Drain();
        Assert.All(read, b => Assert.Equal(0x22, b));
    }

    /// <summary>
    /// FUA on every command that writes (NBD: no reply before what the command wrote is
    /// persisted): a trim or a zeroing with FUA survives a cut with no flush after it, whole
    /// sectors and partial ones alike.
    /// </summary>
    [Theory]
    [InlineData(HostOpcode.Trim, HostCommandOptions.ForceUnitAccess, 0, 16)]
    [InlineData(HostOpcode.Trim, HostCommandOptions.ForceUnitAccess, 3 * 512, 16)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess, 0, 16)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess, 512, 5)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess | HostCommandOptions.NoHole, 0, 16)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess | HostCommandOptions.NoHole, 7 * 512, 3)]
    public void AForceUnitAccessTrimOrZeroingIsDurableWhenItCompletes(
        HostOpcode opcode,
        HostCommandOptions options,
        long offset,
        int sectors
    )
    {
        Submit(HostOpcode.Write, 0, Filled(32 * Sector, 0x44));
        Submit(HostOpcode.Flush, 0, null);
        Submit(opcode, offset, null, sectors * Sector, options);
        Assert.All(Drain(), c => Assert.Equal(HostStatus.Ok, c.Status));

        CutPowerAndReboot();

        byte[] read = new byte[32 * Sector];
        Submit(HostOpcode.Read, 0, read);
        Drain();
        long end = offset + (sectors * Sector);
        Assert.All(read[..(int)offset], b => Assert.Equal(0x44, b));
        Assert.All(read[(int)offset..(int)end], b => Assert.Equal(0, b));
        Assert.All(read[(int)end..], b => Assert.Equal(0x44, b));
    }

    [Theory]
    [InlineData(HostOpcode.Trim, HostCommandOptions.None)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.None)]
    [InlineData(HostOpcode.WriteZeroes, HostCommandOptions.NoHole)]
    public void WithoutForceUnitAccessATrimOrZeroingNotFlushedIsLostInACut(
        HostOpcode opcode,
        HostCommandOptions options
    )
    {
        // The contrast that makes the test above mean something: the same command without FUA
        // and no flush after it; the cut takes it back, and the flushed data reads again.
        _plpBudgetPages = 0;
        _loop = Boot();
        Submit(HostOpcode.Write, 0, Filled(32 * Sector, 0x44));
        Submit(HostOpcode.Flush, 0, null);
        Submit(opcode, 0, null, 16 * Sector, options);
        Drain();

        CutPowerAndReboot();

        byte[] read = new byte[32 * Sector];
        Submit(HostOpcode.Read, 0, read);
        Drain();
        Assert.All(read, b => Assert.Equal(0x44, b));
    }

    [Theory]
    [InlineData(HostOpcode.Read)]
    [InlineData(HostOpcode.Flush)]
    public void ForceUnitAccessOnACommandThatWritesNothingIsAccepted(HostOpcode opcode)
    {
        Submit(HostOpcode.Write, 0, Filled(Sector, 0x55));
        byte[] read = new byte[Sector];
        Submit(
            opcode,
            0,
            opcode == HostOpcode.Read ? read : null,
            opcode == HostOpcode.Read ? Sector : 0,
            HostCommandOptions.ForceUnitAccess
        );

        Assert.All(Drain(), c => Assert.Equal(HostStatus.Ok, c.Status));
        Assert.Equal(opcode == HostOpcode.Read ? 0x55 : 0, read[0]);
    }

    [Fact]
    public void TheSubmissionQueueIsBoundedAndNothingIsDropped()
    {
        var loop = new ControllerLoop(_loop.Cache, null, _clock, queueDepth: 4);
        var commands = Enumerable
            .Range(0, 5)
            .Select(i => new HostCommand
            {
                Id = i,
                Opcode = HostOpcode.Write,
                Offset = i * Sector,
                Length = Sector,
                Buffer = Filled(Sector, (byte)i),
            })
            .ToArray();

        bool[] accepted = [.. commands.Select(loop.TrySubmit)];

        Assert.Equal([true, true, true, true, false], accepted);
        Assert.True(loop.Step());
        Assert.True(loop.TrySubmit(commands[4]));
        while (loop.Submitted > 0)
        {
            while (loop.TryTakeCompletion(out _)) { }

            loop.Step();
        }

        byte[] read = new byte[Sector];
        loop.Cache.Read(4 * Sector, read);
        Assert.All(read, b => Assert.Equal(4, b));
    }

    [Theory]
    [InlineData(100, 4096)]
    [InlineData(0, 1000)]
    [InlineData(-512, 512)]
    [InlineData(long.MaxValue - 511, 512)]
    public void ARangeThatIsNotWholeBlocksInsideTheDeviceIsRefusedAndChangesNothing(long offset, long length)
    {
        Submit(HostOpcode.Write, offset, new byte[Math.Max(0, length)], length: length);

        Assert.Equal(HostStatus.InvalidArgument, Drain().Single().Status);
        Assert.Equal(0, _loop.Cache.Statistics.SectorsWritten);
    }

    [Fact]
    public void LatencyIsCountedInVirtualTimeFromSubmissionToCompletion()
    {
        Submit(HostOpcode.Write, 0, Filled(Sector, 1), options: HostCommandOptions.ForceUnitAccess);
        HostCompletion completion = Drain().Single();

        Assert.True(
            completion.LatencyNanoseconds >= _nand.Timing.ProgramNanoseconds,
            $"a FUA write waited {completion.LatencyNanoseconds} ns for a program of {_nand.Timing.ProgramNanoseconds} ns"
        );
        Assert.Equal(1, _loop.Latency(HostOpcode.Write).Count);
        Assert.True(_loop.Latency(HostOpcode.Write).Percentile(0.5) >= completion.LatencyNanoseconds);
    }

    [Fact]
    public void WithPowerLossProtectionEveryCompletedWriteSurvivesACut()
    {
        for (int i = 0; i < 40; i++)
        {
            Submit(HostOpcode.Write, i * Sector, Filled(Sector, (byte)(i + 1)));
            Drain();
        }

        long pages = _loop.SaveOnPowerFail();
        CutPowerAndReboot();

        Assert.InRange(pages, 1, 100);
        byte[] read = new byte[Sector];
        for (int i = 0; i < 40; i++)
        {
            Submit(HostOpcode.Read, i * Sector, read);
            Drain();
            Assert.All(read, b => Assert.Equal((byte)(i + 1), b));
        }
    }

    [Fact]
    public void WithoutPowerLossProtectionWritesNotFlushedAreLostInACut()
    {
        // The contrast that makes the test above mean something: the same writes, PLP off.
        _plpBudgetPages = 0;
        _loop = Boot();
        for (int i = 0; i < 40; i++)
        {
            Submit(HostOpcode.Write, i * Sector, Filled(Sector, (byte)(i + 1)));
            Drain();
        }

        Assert.Equal(0, _loop.SaveOnPowerFail());
        CutPowerAndReboot();

        byte[] read = new byte[40 * Sector];
        Submit(HostOpcode.Read, 0, read);
        Drain();
        Assert.All(read, b => Assert.Equal(0, b));
    }

    [Fact]
    public void ASaveThatWouldOverrunTheHoldUpBudgetIsCaught()
    {
        _plpBudgetPages = 2;
        _loop = Boot();
        for (int i = 0; i < 40; i++)
        {
            Submit(HostOpcode.Write, i * Sector, Filled(Sector, 7));
            Drain();
        }

        var error = Assert.Throws<Controller.Firmware.Invariants.InvariantViolationException>(() =>
            _loop.SaveOnPowerFail()
        );

        Assert.Contains("the hold-up budget is 2", error.Message, StringComparison.Ordinal);
    }

    private ControllerLoop Boot()
    {
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(
            _nand,
            _clock,
            new Prng(1),
            new FtlOptions { SpareFactor = 0.2 }
        );
        var cache = new LargePageCache(
            new FtlSectorStore(ftl),
            new CacheOptions { Bytes = 16 * 64 * 1024, CheckInvariants = true }
        );
        return new ControllerLoop(cache, ftl, _clock, queueDepth: 32, plpBudgetPages: _plpBudgetPages);
    }

    private void CutPowerAndReboot()
    {
        _nand.PowerCut();
        _nand.PowerOn();
        _loop = Boot();
    }

    private long _nextId;
    private long _plpBudgetPages = 100;

    private void Submit(
        HostOpcode opcode,
        long offset,
        byte[]? buffer,
        long length = -1,
        HostCommandOptions options = HostCommandOptions.None
    )
    {
        var command = new HostCommand
        {
            Id = _nextId++,
            Opcode = opcode,
            Offset = offset,
            Length = length >= 0 ? length : buffer?.Length ?? 0,
            Buffer = buffer,
            Flags = options,
        };
        Assert.True(_loop.TrySubmit(command));
    }

    private HostCompletion[] Drain()
    {
        var completions = new List<HostCompletion>();
        while (_loop.Submitted > 0)
        {
            _loop.Step();
            while (_loop.TryTakeCompletion(out HostCompletion completion))
            {
                completions.Add(completion);
            }
        }

        return [.. completions];
    }

    private static byte[] Filled(int length, byte value)
    {
        var bytes = new byte[length];
        Array.Fill(bytes, value);
        return bytes;
    }
}
