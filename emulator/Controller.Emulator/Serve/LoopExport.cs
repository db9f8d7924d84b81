using System.Collections.Concurrent;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
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
/// checkpoints), as a controller does between commands.
/// </summary>
internal sealed class LoopExport : INbdExport, IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly EmulatedNand _nand;
    private readonly FlashTranslationLayer _ftl;
    private readonly ControllerLoop _loop;
    private readonly Thread _thread;
    private long _nextId;
    private bool _disposed;

    private LoopExport(EmulatedNand nand, FlashTranslationLayer ftl, ControllerLoop loop, string name, string description)
    {
        _nand = nand;
        _ftl = ftl;
        _loop = loop;
        Name = name;
        Description = description;
        SizeBytes = ftl.LogicalSectors * FirmwareConfig.SectorBytes;
        _thread = new Thread(Run) { Name = "controller loop", IsBackground = true };
        _thread.Start();
    }

    public string Name { get; }

    public string Description { get; }

    public long SizeBytes { get; }

    public bool IsReadOnly => false;

    /// <summary>How the FTL came up: formatted, or recovered (and from what).</summary>
    public MountReport Mount => _ftl.LastMount;

    /// <summary>Boots the firmware on the NAND <paramref name="config"/> (from <paramref name="profile"/>) describes: in memory, or in the image at <paramref name="imagePath"/> (recovered if it exists).</summary>
    public static LoopExport Boot(ResolvedConfig config, string profile, string? imagePath, string name)
    {
        ArgumentNullException.ThrowIfNull(config);
        var clock = new VirtualClock();
        EmulatedNand nand = imagePath is null ? EmulatedNand.InMemory(config, clock) : EmulatedNand.OpenImage(imagePath, config, clock);
        try
        {
            FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, new Prng((ulong)config.Get(EmulatorConfig.FaultSeed)), FtlConfig.Options(config));
            var cache = new LargePageCache(new FtlSectorStore(ftl), CacheConfig.Options(config), clock);
            long plp = config.Get(CacheConfig.Plp) ? config.Get(CacheConfig.PlpBudgetPages) : 0;
            var loop = new ControllerLoop(cache, ftl, clock, queueDepth: 1, plp);
            string description = $"emulated SSD, {profile}{(imagePath is null ? ", in memory" : $", image {imagePath}")}";
            return new LoopExport(nand, ftl, loop, name, description);
        }
        catch
        {
            nand.Dispose();
            throw;
        }
    }

    public ValueTask<HostStatus> ExecuteAsync(HostOpcode opcode, HostCommandOptions flags, long offset, long length, Memory<byte> buffer, CancellationToken cancellation)
    {
        var done = new TaskCompletionSource<HostStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
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

            done.SetResult(completion.Status);
        }, done);
        return new ValueTask<HostStatus>(done.Task);
    }

    public ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(extents);
        var done = new TaskCompletionSource<HostStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
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

            done.SetResult(HostStatus.Ok);
        }, done);
        return new ValueTask(done.Task);
    }

    /// <summary>A clean shutdown: writes back the cache, flushes, checkpoints, stops the loop's thread and closes the NAND.</summary>
    public void Shutdown()
    {
        var done = new TaskCompletionSource<HostStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            _loop.Shutdown();
            done.SetResult(HostStatus.Ok);
        }, done);
        done.Task.GetAwaiter().GetResult();
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

    private void Post(Action action, TaskCompletionSource<HostStatus> done) =>
        _work.Add(() =>
        {
            try
            {
                action();
            }
            catch (Exception e) when (e is FtlException or InvalidOperationException or Firmware.Invariants.InvariantViolationException)
            {
                done.TrySetException(e);
            }
        });

    private void Run()
    {
        while (!_work.IsCompleted)
        {
            if (_work.TryTake(out Action? action) || (!_loop.Step() && _work.TryTake(out action, Timeout.Infinite)))
            {
                action?.Invoke();
            }
        }
    }
}
