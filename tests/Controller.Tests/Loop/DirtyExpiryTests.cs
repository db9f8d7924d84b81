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
/// <c>cache.dirtyExpireMilliseconds</c>: a large page dirty for longer than the expiry, on the
/// firmware's clock, is written back and flushed in the background, oldest first, only while no
/// host command waits; a power cut after that loses none of it.
/// </summary>
[Trait("Category", "Unit")]
public sealed class DirtyExpiryTests : IDisposable
{
    private const int PageBytes = 64 * 1024;
    private const long Expiry = 2_000_000;
    private readonly VirtualClock _clock = new();
    private readonly EmulatedNand _nand;
    private ControllerLoop _loop;
    private long _nextId;
    private long _expiry = Expiry;

    public DirtyExpiryTests()
    {
        _nand = Nands.Tiny(_clock);
        _loop = Boot();
    }

    public void Dispose() => _nand.Dispose();

    [Fact]
    public void ADirtyPageIsNotWrittenBackBeforeItExpiresAndIsDurableAfter()
    {
        long written = _clock.NowNanoseconds;
        Run(HostOpcode.Write, 0, Filled(8192, 0x6d));
        int dirty = _loop.Cache.DirtySectors;
        long? expires = _loop.DirtyExpiresAtNanoseconds;

        Idle(written + Expiry - 1);
        int before = _loop.Cache.DirtySectors;
        Idle(written + Expiry);
        int after = _loop.Cache.DirtySectors;
        CutPowerAndReboot();
        byte[] read = new byte[8192];
        Run(HostOpcode.Read, 0, read);

        Assert.True(dirty > 0);
        Assert.Equal(written + Expiry, expires);
        Assert.Equal(dirty, before);
        Assert.Equal(0, after);
        Assert.All(read, b => Assert.Equal(0x6d, b));
    }

    [Fact]
    public void TheOldestPageGoesFirst()
    {
        long first = _clock.NowNanoseconds;
        Run(HostOpcode.Write, 0, Filled(4096, 0x01));
        _clock.AdvanceTo(first + (Expiry / 2));
        Run(HostOpcode.Write, 4 * PageBytes, Filled(4096, 0x02));
        int both = _loop.Cache.DirtySectors;

        Idle(first + Expiry + (Expiry / 4));
        int afterFirst = _loop.Cache.DirtySectors;
        long? secondExpires = _loop.DirtyExpiresAtNanoseconds;
        CutPowerAndReboot();
        byte[] a = new byte[4096];
        byte[] b = new byte[4096];
        Run(HostOpcode.Read, 0, a);
        Run(HostOpcode.Read, 4 * PageBytes, b);

        Assert.Equal(both / 2, afterFirst);
        Assert.True(secondExpires >= first + (Expiry / 2) + Expiry, $"the second page expires at {secondExpires}");
        Assert.All(a, x => Assert.Equal(0x01, x));
        Assert.All(b, x => Assert.Equal(0, x));
    }

    [Fact]
    public void ExpiryWaitsWhileAHostCommandIsQueued()
    {
        Run(HostOpcode.Write, 0, Filled(4096, 0x33));
        _clock.AdvanceTo(_clock.NowNanoseconds + (2 * Expiry));
        Submit(HostOpcode.Read, 8 * PageBytes, new byte[4096]);
        int dirty = _loop.Cache.DirtySectors;

        Assert.True(_loop.Step());
        Assert.Equal(dirty, _loop.Cache.DirtySectors);
        DrainCompletions();
        Idle(_clock.NowNanoseconds);
        Assert.Equal(0, _loop.Cache.DirtySectors);
    }

    [Fact]
    public void TheExpiryCanaryWithExpiryOffDirtyDataWaitsForeverAndACutLosesIt()
    {
        _expiry = 0;
        _loop = Boot();
        Run(HostOpcode.Write, 0, Filled(8192, 0x6d));

        Idle(_clock.NowNanoseconds + (100 * Expiry));
        int dirty = _loop.Cache.DirtySectors;
        CutPowerAndReboot();
        byte[] read = new byte[8192];
        Run(HostOpcode.Read, 0, read);

        Assert.True(dirty > 0);
        Assert.Null(_loop.DirtyExpiresAtNanoseconds);
        Assert.All(read, b => Assert.Equal(0, b));
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
            new CacheOptions
            {
                Bytes = 16 * PageBytes,
                DirtyExpireNanoseconds = _expiry,
                CheckInvariants = true,
            },
            _clock
        );
        return new ControllerLoop(cache, ftl, _clock, queueDepth: 8);
    }

    private void CutPowerAndReboot()
    {
        _nand.PowerCut();
        _nand.PowerOn();
        _loop = Boot();
    }

    /// <summary>
    /// The host is idle until <paramref name="until"/>: background steps run as the sim runs them, the clock moving to
    /// each.
    /// </summary>
    private void Idle(long until)
    {
        // A loop that neither works nor lets time pass would spin here for ever: it fails instead.
        for (int steps = 0; ; steps++)
        {
            Assert.True(
                steps < 100_000,
                $"the loop made no progress towards {until} ns (clock at {_clock.NowNanoseconds} ns)"
            );
            if (_loop.Step())
            {
                continue;
            }

            long? next = _loop.DirtyExpiresAtNanoseconds;
            if (_loop.BackgroundReadyAtNanoseconds is { } ready && (next is null || ready < next))
            {
                next = ready;
            }

            if (next is not { } instant || instant > until)
            {
                _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, until));
                if (!_loop.Step())
                {
                    return;
                }

                continue;
            }

            _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, instant));
        }
    }

    private void Submit(HostOpcode opcode, long offset, byte[] buffer) =>
        Assert.True(
            _loop.TrySubmit(
                new HostCommand
                {
                    Id = _nextId++,
                    Opcode = opcode,
                    Offset = offset,
                    Length = buffer.Length,
                    Buffer = buffer,
                }
            )
        );

    private void Run(HostOpcode opcode, long offset, byte[] buffer)
    {
        Submit(opcode, offset, buffer);
        Assert.All(DrainCompletions(), c => Assert.Equal(HostStatus.Ok, c.Status));
    }

    private List<HostCompletion> DrainCompletions()
    {
        var completions = new List<HostCompletion>();
        for (int steps = 0; _loop.Submitted > 0 || _loop.InFlight > 0; steps++)
        {
            Assert.True(steps < 100_000, "the loop made no progress with commands in it");
            if (!_loop.Step(background: false) && _loop.NextEventNanoseconds is { } next)
            {
                _clock.AdvanceTo(next);
            }

            while (_loop.TryTakeCompletion(out HostCompletion completion))
            {
                completions.Add(completion);
            }
        }

        while (_loop.TryTakeCompletion(out HostCompletion completion))
        {
            completions.Add(completion);
        }

        return completions;
    }

    private static byte[] Filled(int length, byte value)
    {
        var bytes = new byte[length];
        Array.Fill(bytes, value);
        return bytes;
    }
}
