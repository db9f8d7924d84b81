using System.Collections.Concurrent;
using System.Diagnostics;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Host.Nbd;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Serve;

/// <summary>
/// The emulated SSD behind the NBD server: NAND, FTL, cache and controller loop, all owned by one
/// thread. Connections call <see cref="ExecuteAsync"/> from any thread; each command is queued to
/// the loop's thread, which submits it, steps the loop until it completes, and completes the
/// caller's task. With nothing queued the loop does its background work (GC, wear levelling,
/// checkpoints), as a controller does between commands. The management endpoint's requests
/// (stats, power cut, faults, checkpoint) run on the same thread, between commands.
/// </summary>
internal sealed partial class LoopExport : INbdExport, IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly ResolvedConfig _config;
    private readonly VirtualClock _clock;
    private readonly EmulatedNand _nand;
    private readonly Spi.EmulatedSpiPath? _spi;
    private readonly bool _realtime;
    private readonly Func<CacheOptions, CacheOptions> _cacheOptions;
    private readonly Thread _thread;
    private FlashTranslationLayer _ftl;
    private ControllerLoop _loop;
    private long _nextId;
    private int _generation;
    private bool _disposed;
    private bool _shutDown;

    private LoopExport(ResolvedConfig config, VirtualClock clock, EmulatedNand nand, string name, string description, Func<CacheOptions, CacheOptions>? cacheOptions)
    {
        _config = config;
        _cacheOptions = cacheOptions ?? (options => options);
        _clock = clock;
        _nand = nand;
        _realtime = config.Get(FirmwareConfig.TimingMode) == "realtime";
        _spi = Spi.EmulatedSpiPath.FromConfig(config, nand, clock);

        (_ftl, _loop) = MountFirmware();
        Name = name;
        Description = description;
        SizeBytes = _ftl.LogicalSectors * FirmwareConfig.SectorBytes;
        _thread = new Thread(Run) { Name = "controller loop", IsBackground = true };
        _thread.Start();
    }

    public string Name { get; }

    public string Description { get; }

    public long SizeBytes { get; }

    public bool IsReadOnly => false;

    /// <summary>How the FTL came up: formatted, or recovered (and from what).</summary>
    public MountReport Mount => _ftl.LastMount;

    /// <summary>
    /// Boots the firmware on the NAND <paramref name="config"/> (from <paramref name="profile"/>)
    /// describes: in memory, or in the image at <paramref name="imagePath"/> (recovered if it
    /// exists). Tests may change the cache's options with <paramref name="cacheOptions"/> (a canary).
    /// </summary>
    public static LoopExport Boot(ResolvedConfig config, string profile, string? imagePath, string name, Func<CacheOptions, CacheOptions>? cacheOptions = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var clock = new VirtualClock();
        EmulatedNand nand = imagePath is null ? EmulatedNand.InMemory(config, clock) : EmulatedNand.OpenImage(imagePath, config, clock);
        try
        {
            string description = $"emulated SSD, {profile}{(imagePath is null ? ", in memory" : $", image {imagePath}")}";
            return new LoopExport(config, clock, nand, name, description, cacheOptions);
        }
        catch
        {
            nand.Dispose();
            throw;
        }
    }

    public ValueTask<HostStatus> ExecuteAsync(HostOpcode opcode, HostCommandOptions flags, long offset, long length, Memory<byte> buffer, CancellationToken cancellation)
    {
        long started = Stopwatch.GetTimestamp();
        int generation = Volatile.Read(ref _generation);
        return new ValueTask<HostStatus>(OnLoopAsync(() =>
        {
            if (generation != _generation)
            {
                // Sent before a power cut, run after it: the device it was sent to is gone.
                return HostStatus.IoError;
            }

            long virtualStart = _clock.NowNanoseconds;
            var command = new HostCommand { Id = ++_nextId, Opcode = opcode, Flags = flags, Offset = offset, Length = length, Buffer = buffer };
            if (!_loop.TrySubmit(command))
            {
                throw new InvalidOperationException("the loop's submission queue is full with one command at a time");
            }

            HostCompletion completion;
            while (!_loop.TryTakeCompletion(out completion))
            {
                _loop.Step();
            }

            // The host sees the completion when the data is there: virtual time moves on to it, so
            // the NAND model's schedules (die and channel bookings) are retired behind it rather
            // than piling up ahead of a clock that only waits moved.
            _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, completion.CompletedAtNanoseconds));
            if (_realtime)
            {
                WaitOutVirtualTime(started, _clock.NowNanoseconds - virtualStart);
            }

            Count(opcode, length, completion.Status, Stopwatch.GetElapsedTime(started));
            return completion.Status;
        }));
    }

    public ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(extents);
        return new ValueTask(OnLoopAsync(() =>
        {
            // Sector by sector (the FTL's unit), clipped to the range, runs of one state merged.
            for (long position = offset, end = offset + length; position < end;)
            {
                long sector = position / FirmwareConfig.SectorBytes;
                long next = Math.Min(end, (sector + 1) * FirmwareConfig.SectorBytes);
                NbdAllocationState state = _loop.IsHole(sector) ? NbdAllocationState.Hole | NbdAllocationState.Zero : NbdAllocationState.None;
                if (extents.Count > 0 && extents[^1].Flags == state)
                {
                    extents[^1] = extents[^1] with { Length = extents[^1].Length + (next - position) };
                }
                else
                {
                    extents.Add(new NbdExtent(next - position, state));
                }

                position = next;
            }

            return true;
        }));
    }

    /// <summary>A clean shutdown: writes back the cache, flushes, checkpoints, stops the loop's thread and closes the NAND.</summary>
    public void Shutdown()
    {
        OnLoopAsync(() =>
        {
            _loop.Shutdown();
            _shutDown = true;
            return true;
        }).GetAwaiter().GetResult();
        Dispose();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _work.CompleteAdding();
        _thread.Join();
        _work.Dispose();
        _nand.Dispose();
    }

    /// <summary>Mounts (formats or recovers) the FTL on the NAND and builds the cache and loop over it.</summary>
    private (FlashTranslationLayer Ftl, ControllerLoop Loop) MountFirmware()
    {
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(_spi?.Driver ?? (INandDevice)_nand, _clock, new Prng((ulong)_config.Get(EmulatorConfig.FaultSeed)), FtlConfig.Options(_config));
        var cache = new LargePageCache(new FtlSectorStore(ftl), _cacheOptions(CacheConfig.Options(_config)), _clock);
        long plp = _config.Get(CacheConfig.Plp) ? _config.Get(CacheConfig.PlpBudgetPages) : 0;
        return (ftl, new ControllerLoop(cache, ftl, _clock, queueDepth: 1, plp));
    }

    /// <summary>
    /// timing.mode realtime: the command's completion waits until as much wall time has passed
    /// since it arrived as the NAND took in virtual time, as a real-time emulator does. A spin,
    /// since NAND latencies (tens of microseconds) are finer than the OS timer.
    /// </summary>
    private static void WaitOutVirtualTime(long startedTimestamp, long virtualNanoseconds)
    {
        var spin = default(SpinWait);
        while (Stopwatch.GetElapsedTime(startedTimestamp).Ticks * 100 < virtualNanoseconds)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>Runs <paramref name="function"/> on the loop's thread, between commands.</summary>
    private Task<T> OnLoopAsync<T>(Func<T> function)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _work.Add(() =>
            {
                try
                {
                    done.SetResult(function());
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                }
            });
        }
        catch (InvalidOperationException)
        {
            done.TrySetException(new ObjectDisposedException(nameof(LoopExport), "the emulated SSD has shut down"));
        }

        return done.Task;
    }

    /// <summary>
    /// The loop's thread: commands first; background work (a GC victim can take milliseconds)
    /// only once no command has come for <see cref="IdleBeforeBackgroundMilliseconds"/>, as a
    /// controller runs idle-time GC, so a client sending one request after another does not find
    /// each behind a GC step. Garbage collection a write needs still runs in the write.
    /// </summary>
    private void Run()
    {
        while (!_work.IsCompleted)
        {
            if (_work.TryTake(out Action? action, IdleBeforeBackgroundMilliseconds))
            {
                action.Invoke();
                continue;
            }

            // After the clean shutdown's checkpoint nothing more is written: no background work.
            if (_shutDown)
            {
                _work.TryTake(out action, Timeout.Infinite);
                action?.Invoke();
                continue;
            }

            // Idle: the wall time that passed let the NAND finish what it was given, so the next
            // background step starts on an idle array. (Without this, background work would queue
            // ever further ahead of a clock nothing moves, and every read would wait behind it.)
            _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, _nand.IdleAtNanoseconds));
            if (!_loop.Step() && _work.TryTake(out action, Timeout.Infinite))
            {
                action.Invoke();
            }
        }
    }

    private const int IdleBeforeBackgroundMilliseconds = 1;
}
