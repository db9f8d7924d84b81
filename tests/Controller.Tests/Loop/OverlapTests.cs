using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Loop;

/// <summary>
/// The event-driven loop over the default profile's shape (8 dies on 4 channels, 16 KiB pages):
/// a read miss costs what the flash costs, commands in flight together overlap on different dies
/// and queue on the same one, and completions come in the order their work ends.
/// </summary>
[Trait("Category", "Unit")]
public sealed class OverlapTests : IDisposable
{
    private const int Sector = 4096;
    private const int SectorsPerUnit = 4;
    private readonly VirtualClock _clock = new();
    private readonly CommandClock _firmwareClock;
    private readonly EmulatedNand _nand;
    private MountedFirmware _firmware;
    private long _nextId;

    public OverlapTests()
    {
        _nand = Nands.Shape("default", _clock);
        _firmwareClock = new CommandClock(_clock);
        _nand.IssueClock = _firmwareClock;
        _firmware = Mount();
    }

    public void Dispose() => _nand.Dispose();

    /// <summary>tR plus one page's transfer on its channel: the least a read miss can take.</summary>
    private long PageRead => _nand.Timing.ReadNanoseconds + _nand.Timing.TransferNanoseconds(_nand.Geometry.PageBytes);

    [Fact]
    public void AReadMissWaitsForTheFlashAndAHitDoesNot()
    {
        WriteUnitsAndRemount(1);

        HostCompletion miss = RunAlone(HostOpcode.Read, 0, new byte[Sector]);
        HostCompletion hit = RunAlone(HostOpcode.Read, 0, new byte[Sector]);

        Assert.InRange(miss.LatencyNanoseconds, PageRead, PageRead + 10_000);
        Assert.InRange(hit.LatencyNanoseconds, 0, 10_000);
    }

    [Fact]
    public void AReadMissTakesTheArraysReadTimeWhateverItIs()
    {
        _nand.Dispose();
        using EmulatedNand slow = Nands.Shape("default", _clock, "timing.readMicroseconds=2000");
        slow.IssueClock = _firmwareClock;
        _firmware = Mount(slow);
        WriteUnitsAndRemount(1, slow);

        HostCompletion miss = RunAlone(HostOpcode.Read, 0, new byte[Sector]);

        Assert.InRange(
            miss.LatencyNanoseconds,
            2_000_000,
            2_000_000 + slow.Timing.TransferNanoseconds(slow.Geometry.PageBytes) + 10_000
        );
    }

    [Fact]
    public void ReadsOfUnitsOnDifferentDiesOverlap()
    {
        int dies = _nand.Geometry.Dies;
        WriteUnitsAndRemount(dies);

        // Host units go to the dies in turn, so unit u is on its own die: one read each, all in flight.
        for (int unit = 0; unit < dies; unit++)
        {
            Submit(HostOpcode.Read, (long)unit * SectorsPerUnit * Sector, new byte[Sector]);
        }

        long start = _clock.NowNanoseconds;
        HostCompletion[] together = Drain();

        Assert.Equal(dies, together.Length);
        Assert.All(together, c => Assert.Equal(HostStatus.Ok, c.Status));
        // Two dies share a channel: the second transfer waits for the first, and no more.
        long transfer = _nand.Timing.TransferNanoseconds(_nand.Geometry.PageBytes);
        Assert.All(together, c => Assert.InRange(c.LatencyNanoseconds, PageRead, PageRead + transfer + 10_000));
        Assert.InRange(together.Max(c => c.CompletedAtNanoseconds) - start, PageRead, PageRead + transfer + 10_000);
    }

    [Fact]
    public void ReadsOnOneDieQueueBehindEachOther()
    {
        int dies = _nand.Geometry.Dies;
        WriteUnitsAndRemount(2 * dies);

        // Units 0 and dies are both on die 0.
        Submit(HostOpcode.Read, 0, new byte[Sector]);
        Submit(HostOpcode.Read, (long)dies * SectorsPerUnit * Sector, new byte[Sector]);
        HostCompletion[] completions = Drain();

        Assert.Equal(2, completions.Length);
        Assert.InRange(
            completions[1].CompletedAtNanoseconds - completions[0].CompletedAtNanoseconds,
            _nand.Timing.ReadNanoseconds,
            PageRead + 10_000
        );
    }

    [Fact]
    public void AHitSubmittedAfterAMissCompletesFirst()
    {
        WriteUnitsAndRemount(2);
        RunAlone(HostOpcode.Read, SectorsPerUnit * Sector, new byte[Sector]);

        Submit(HostOpcode.Read, 0, new byte[Sector]);
        Submit(HostOpcode.Read, SectorsPerUnit * Sector, new byte[Sector]);
        HostCompletion[] completions = Drain();

        Assert.Equal([_nextId - 1, _nextId - 2], completions.Select(c => c.Id));
    }

    [Fact]
    public void ReadsInFlightTogetherReturnTheirOwnData()
    {
        int dies = _nand.Geometry.Dies;
        WriteUnitsAndRemount(dies);

        var buffers = new byte[dies][];
        for (int unit = 0; unit < dies; unit++)
        {
            buffers[unit] = new byte[Sector];
            Submit(HostOpcode.Read, (long)unit * SectorsPerUnit * Sector, buffers[unit]);
        }

        Drain();

        for (int unit = 0; unit < dies; unit++)
        {
            Assert.All(buffers[unit], b => Assert.Equal((byte)(unit + 1), b));
        }
    }

    private MountedFirmware Mount(EmulatedNand? nand = null) =>
        MountedFirmware.Mount(
            nand ?? _nand,
            _firmwareClock,
            new Prng(1),
            new FtlOptions { SpareFactor = 0.2 },
            new CacheOptions
            {
                Bytes = 16 * 16 * 1024,
                LargePageBytes = 16 * 1024,
                CheckInvariants = true,
            },
            queueDepth: 32,
            plpBudgetPages: 0
        );

    /// <summary>
    /// Writes <paramref name="units"/> whole FTL units (unit u filled with u + 1), shuts down
    /// cleanly and mounts again, so the cache is empty and every read misses.
    /// </summary>
    private void WriteUnitsAndRemount(int units, EmulatedNand? nand = null)
    {
        for (int unit = 0; unit < units; unit++)
        {
            byte[] data = new byte[SectorsPerUnit * Sector];
            Array.Fill(data, (byte)(unit + 1));
            Assert.Equal(HostStatus.Ok, RunAlone(HostOpcode.Write, (long)unit * data.Length, data).Status);
        }

        _firmware.Loop.Shutdown();
        _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, _firmware.Ftl.FlashIdleAtNanoseconds));
        _firmware = Mount(nand);
        _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, _firmware.Ftl.FlashIdleAtNanoseconds));
    }

    private void Submit(HostOpcode opcode, long offset, byte[] buffer)
    {
        var command = new HostCommand
        {
            Id = _nextId++,
            Opcode = opcode,
            Offset = offset,
            Length = buffer.Length,
            Buffer = buffer,
        };
        Assert.True(_firmware.Loop.TrySubmit(command));
    }

    private HostCompletion RunAlone(HostOpcode opcode, long offset, byte[] buffer)
    {
        Submit(opcode, offset, buffer);
        return Assert.Single(Drain());
    }

    /// <summary>Steps the loop, moving the clock to each next event, until nothing is queued or in flight.</summary>
    private HostCompletion[] Drain()
    {
        ControllerLoop loop = _firmware.Loop;
        var completions = new List<HostCompletion>();
        while (loop.Submitted > 0 || loop.InFlight > 0 || loop.Completed > 0)
        {
            if (!loop.Step(background: false) && loop.NextEventNanoseconds is { } next)
            {
                _clock.AdvanceTo(next);
            }

            while (loop.TryTakeCompletion(out HostCompletion completion))
            {
                completions.Add(completion);
            }
        }

        return [.. completions];
    }
}
