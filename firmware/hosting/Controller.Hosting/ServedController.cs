using System.Collections.Concurrent;
using System.Diagnostics;
using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Hosting.Nbd;
using Controller.Hosting.Recording;
using Controller.Nbd;

namespace Controller.Hosting;

/// <summary>
/// A served SSD: the firmware (FTL, cache and controller loop) over a device (the emulated NAND, or
/// a board's SPI NAND chip), all owned by one thread. Connections call <see cref="ExecuteAsync"/> from any thread; each
/// command is queued to the loop's thread, which submits it, steps the loop until it completes, and completes the
/// caller's task. With nothing queued the loop does its background work (GC, wear levelling, checkpoints), as a
/// controller does between commands. The management endpoint's requests (stats, power cut, faults, checkpoint) run on
/// the same thread, between commands.
/// </summary>
public sealed partial class ServedController : INbdExport, IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly ResolvedConfig _config;
    private readonly IServedDevice _device;
    private readonly CountingNand _nand;
    private readonly Func<ISectorStore, ISectorStore>? _store;
    private readonly Thread? _thread;
    private readonly CommandClock _firmwareClock;
    private readonly ExecutionTrace _trace;
    private SessionRecorder? _recorder;
    private readonly Dictionary<long, PendingCommand> _pending = [];
    private readonly Queue<HostCommand> _waiting = new();
    private FlashTranslationLayer _ftl;
    private ControllerLoop _loop;
    private CacheStatistics _earlierCaches = new();
    private long _nextId;
    private int _generation;
    private bool _disposed;
    private bool _shutDown;
    private Exception? _failure;
    private readonly bool _readOnly;

    /// <summary>
    /// Mounts the firmware on <paramref name="device"/> (formats a fresh NAND, recovers one that
    /// holds data) with the cache and FTL <paramref name="config"/> sets, and starts the loop's
    /// thread. The cache writes to the FTL's sector store, or to what <paramref name="store"/> makes
    /// of it. The controller owns the device from here: disposing it disposes the device.
    /// </summary>
    /// <remarks>
    /// With <paramref name="recorder"/>, every input the firmware takes from here on is recorded
    /// (the controller owns the recorder and finishes it at shutdown); on a board's clock, the
    /// mount's clock readings too.
    /// </remarks>
    public ServedController(
        IServedDevice device,
        ResolvedConfig config,
        string name,
        Func<ISectorStore, ISectorStore>? store = null,
        SessionRecorder? recorder = null
    )
        : this(device, config, name, store, trace: null, replay: false, recorder) { }

    private ServedController(
        IServedDevice device,
        ResolvedConfig config,
        string name,
        Func<ISectorStore, ISectorStore>? store,
        TextWriter? trace,
        bool replay,
        SessionRecorder? recorder = null
    )
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        _device = device;
        _config = config;
        _readOnly = config.Get(FtlConfig.ReadOnly);
        _store = store;
        _trace = new ExecutionTrace(trace);
        _firmwareClock = new CommandClock(device.Clock, advanceAlone: device.JumpsToEvents);
        INandDevice nand = recorder is { NandMode: RecordedNand.Outcomes }
            ? new RecordingNand(device.Nand, recorder)
            : device.Nand;
        _nand = new CountingNand(nand)
        {
            Observed = (kind, address, completion) =>
                _trace.Nand(_firmwareClock.NowNanoseconds, kind, address, completion),
        };
        device.AttachFirmwareClock(_firmwareClock);
        if (recorder is not null)
        {
            recorder.InFirmware = true;
        }

        (_ftl, _loop) = MountFirmware();
        Name = name;
        Description = device.Description;
        SizeBytes = _ftl.LogicalSectors * FirmwareConfig.SectorBytes;
        if (recorder is not null)
        {
            // The mount's clock readings were recorded (a recorder on a board's clock starts in the
            // firmware); from here the server's own readings between inputs are not.
            recorder.InFirmware = false;
            _recorder = recorder;
        }

        if (!replay)
        {
            _thread = new Thread(Run) { Name = "controller loop", IsBackground = true };
            _thread.Start();
        }
    }

    /// <summary>
    /// The firmware on <paramref name="device"/> with no thread of its own, for replaying a recorded
    /// session: the caller hands it the recorded inputs one by one (<see cref="Apply"/>), and
    /// <paramref name="trace"/>, when given, receives every event as a line.
    /// </summary>
    public static ServedController ForReplay(
        IServedDevice device,
        ResolvedConfig config,
        string name,
        TextWriter? trace
    ) => new(device, config, name, store: null, trace, replay: true);

    /// <summary>
    /// The hash of the execution so far (NAND operations, commands, completions, mounts, cuts), as the sim computes it.
    /// </summary>
    public ulong TraceHash => _trace.Hash;

    /// <summary>
    /// Until disposed, the code runs as the firmware's: the clock readings it makes are inputs to record.
    /// </summary>
    private FirmwareScope InFirmware() => SessionRecorder.Scope(_recorder, inFirmware: true);

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public long SizeBytes { get; }

    /// <inheritdoc />
    /// <remarks>
    /// A read-only export (<c>ftl.readOnly</c>) changes nothing on the NAND: the mount takes no
    /// checkpoint, the loop does no background work, shutdown neither writes back nor checkpoints.
    /// </remarks>
    public bool IsReadOnly => _readOnly;

    /// <summary>How the FTL came up: formatted, or recovered (and from what).</summary>
    public MountReport Mount => _ftl.LastMount;

    /// <summary>
    /// What stopped the device, or null while it works: an exception out of the device or the
    /// firmware in the middle of a command or of background work (a chip that stays busy, an SPI
    /// adapter unplugged, a broken invariant). From then on every command fails with an I/O error
    /// and nothing touches the device again; <see cref="Failed"/> has been told.
    /// </summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Called once, on the loop's thread, when the device fails (the server stops).</summary>
    public Action<Exception>? Failed { get; set; }

    /// <inheritdoc />
    public ValueTask<HostStatus> ExecuteAsync(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        CancellationToken cancellation
    )
    {
        var done = new TaskCompletion();
        Submit(opcode, flags, offset, length, buffer, done);
        return new ValueTask<HostStatus>(done.Task);
    }

    /// <summary>
    /// Queues the command to the loop's thread, which submits it to the controller loop; the loop's
    /// thread tells <paramref name="completion"/> when it completes.
    /// </summary>
    public void Submit(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        INbdCompletion completion
    )
    {
        ArgumentNullException.ThrowIfNull(completion);
        long arrived = Stopwatch.GetTimestamp();
        int generation = Volatile.Read(ref _generation);
        Post(
            () =>
            {
                if (generation != _generation || _failure is not null)
                {
                    // Sent before a power cut, run after it (the device it was sent to is gone), or
                    // the device has failed.
                    completion.Complete(HostStatus.IoError);
                    return;
                }

                Enter(opcode, flags, offset, length, buffer, completion, arrived);
            },
            completion
        );
    }

    /// <summary>
    /// A command enters the firmware (on the loop's thread): recorded, traced, and submitted or queued for room.
    /// </summary>
    private long Enter(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        INbdCompletion completion,
        long arrived
    )
    {
        using FirmwareScope firmware = InFirmware();
        var command = new HostCommand
        {
            Id = ++_nextId,
            Opcode = opcode,
            Flags = flags,
            Offset = offset,
            Length = length,
            Buffer = buffer,
        };
        if (_recorder is { } recorder)
        {
            RecordClock();
            recorder.Command(
                command.Id,
                completion.Connection,
                opcode,
                flags,
                offset,
                length,
                opcode == HostOpcode.Write ? buffer.Span[..(int)length] : default
            );
        }

        _trace.Submit(_device.Clock.NowNanoseconds, command.Id, opcode, flags, offset, length);
        _pending.Add(command.Id, new PendingCommand(completion, opcode, length, arrived));
        if (_waiting.Count > 0 || !_loop.TrySubmit(command))
        {
            _waiting.Enqueue(command);
        }

        return command.Id;
    }

    /// <summary>Records the device's clock before an input, when it moved since the last one.</summary>
    private void RecordClock()
    {
        // Only a virtual clock's instant: reading a board's clock here would be a reading the
        // replay does not make (its readings are recorded one by one instead).
        if (_recorder is { ClockMode: RecordedClock.Moves } recorder)
        {
            recorder.Clock(_device.Clock.NowNanoseconds);
        }
    }

    /// <inheritdoc />
    public ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(extents);
        return new ValueTask(
            OnLoopAsync(() =>
            {
                // Sector by sector (the FTL's unit), clipped to the range, runs of one state merged.
                for (long position = offset, end = offset + length; position < end; )
                {
                    long sector = position / FirmwareConfig.SectorBytes;
                    long next = Math.Min(end, (sector + 1) * FirmwareConfig.SectorBytes);
                    NbdAllocationState state = _loop.IsHole(sector)
                        ? NbdAllocationState.Hole | NbdAllocationState.Zero
                        : NbdAllocationState.None;
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
            })
        );
    }

    /// <summary>
    /// A clean shutdown: writes back the cache, flushes, checkpoints, stops the loop's thread and closes the NAND.
    /// </summary>
    public void Shutdown()
    {
        OnLoopAsync(() =>
            {
                // A failed device is left as it is: the next boot recovers what reached the NAND.
                if (_failure is null)
                {
                    Drain();
                    RecordClock();
                    _recorder?.Management(SessionRecordKind.Shutdown);
                    using (InFirmware())
                    {
                        ShutdownLoop();
                    }
                }

                _shutDown = true;
                _recorder?.Finish(_trace.Hash);
                _recorder = null;
                return true;
            })
            .GetAwaiter()
            .GetResult();
        Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _work.CompleteAdding();
        _thread?.Join();
        _work.Dispose();
        _recorder?.Dispose();
        _device.Dispose();
    }

    /// <summary>The loop's clean shutdown (write back, flush, checkpoint), which a read-only export skips.</summary>
    private void ShutdownLoop()
    {
        if (!_readOnly)
        {
            _loop.Shutdown();
        }
    }

    /// <summary>Mounts (formats or recovers) the FTL on the NAND and builds the cache and loop over it.</summary>
    private (FlashTranslationLayer Ftl, ControllerLoop Loop) MountFirmware()
    {
        long plp = _config.Get(CacheConfig.Plp) ? _config.Get(CacheConfig.PlpBudgetPages) : 0;
        var firmware = MountedFirmware.Mount(
            _nand,
            _firmwareClock,
            new Prng(_device.FirmwareSeed),
            FtlConfig.Options(_config),
            CacheConfig.Options(_config),
            LoopQueueDepth,
            plp,
            _store
        );
        _trace.Event(_device.Clock.NowNanoseconds, "mounted");
        return (firmware.Ftl, firmware.Loop);
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
            done.TrySetException(new ObjectDisposedException(nameof(ServedController), "the SSD has shut down"));
        }

        return done.Task;
    }

    /// <summary>Completes every command in flight (a clean shutdown, a checkpoint asked for).</summary>
    private void Drain()
    {
        while (!_loop.IsQuiet || _waiting.Count > 0)
        {
            if (!StepLoop(background: false) && _loop.NextEventNanoseconds is { } next)
            {
                if (_device.JumpsToEvents)
                {
                    _device.JumpTo(next);
                }
                else
                {
                    _device.FollowWallClock(quiet: false);
                }
            }
        }
    }

    /// <summary>
    /// Queues <paramref name="action"/> to the loop's thread; fails <paramref name="done"/> if the SSD has shut down.
    /// </summary>
    private void Post(Action action, INbdCompletion done)
    {
        try
        {
            _work.Add(action);
        }
        catch (InvalidOperationException)
        {
            done.Fail(new ObjectDisposedException(nameof(ServedController), "the SSD has shut down"));
        }
    }

    /// <summary>
    /// The loop's thread. It runs what connections and the management endpoint queued, then steps
    /// the controller loop: commands from every connection are in flight together and complete as
    /// their flash work does, in any order. When the loop waits for the flash, time moves to its next
    /// event: at once on a virtual clock, or as the wall clock passes (real time, a board) while new
    /// commands are still taken. Background work (a GC victim can take milliseconds) runs only once
    /// no command has come for <see cref="IdleBeforeBackgroundMilliseconds"/>, as a controller runs
    /// idle-time GC; garbage collection a write needs still runs in the write.
    /// </summary>
    private void Run()
    {
        long lastWork = Stopwatch.GetTimestamp();
        (long Virtual, long Wall)? quietSince = null;
        while (!_work.IsCompleted)
        {
            bool took = false;
            while (_work.TryTake(out Action? posted))
            {
                posted.Invoke();
                took = true;
            }

            if (took)
            {
                lastWork = Stopwatch.GetTimestamp();
            }

            // After the clean shutdown's checkpoint nothing more is written, and nothing touches a
            // failed device.
            if (_shutDown || _failure is not null)
            {
                FailPending();
                if (_work.TryTake(out Action? action, Timeout.Infinite))
                {
                    action.Invoke();
                }

                continue;
            }

            bool quiet = _loop.IsQuiet && _waiting.Count == 0;
            // Since when no host command has been in the loop (management requests do not count).
            quietSince = quiet ? quietSince ?? (_device.Clock.NowNanoseconds, Stopwatch.GetTimestamp()) : null;
            // A read-only export does no background work: GC, wear levelling and checkpoints all write.
            bool idle =
                quiet
                && !_readOnly
                && Stopwatch.GetElapsedTime(lastWork).TotalMilliseconds >= IdleBeforeBackgroundMilliseconds;
            long? next;
            try
            {
                _device.FollowWallClock(quiet);
                if (idle)
                {
                    _device.Idle();
                }

                if (StepLoop(background: idle))
                {
                    continue;
                }

                next = _loop.NextEventNanoseconds ?? (idle ? _loop.BackgroundReadyAtNanoseconds : null);
                if (next is { } instant && _device.JumpsToEvents)
                {
                    _device.JumpTo(instant);
                    continue;
                }

                if (next is null && idle && _loop.DirtyExpiresAtNanoseconds is { } expires)
                {
                    // Idle but for the expiry: whatever was recorded reaches the file first.
                    _recorder?.Flush();
                    if (_device.JumpsToEvents)
                    {
                        // A virtual clock stands still while nothing happens: the wall time the
                        // device has been without host commands passes on it (management requests
                        // do not count), and at the expiry the clock moves there.
                        (long fromVirtual, long fromWall) = quietSince!.Value;
                        long left = expires - fromVirtual - (long)Stopwatch.GetElapsedTime(fromWall).TotalNanoseconds;
                        if (left <= 0 || WaitIdle(left))
                        {
                            _device.JumpTo(expires);
                        }

                        continue;
                    }

                    next = expires;
                }
            }
            catch (Exception e) when (Fail(e))
            {
                continue;
            }

            if (next is null)
            {
                // Going idle: whatever was recorded reaches the file (a kill from here loses nothing).
                _recorder?.Flush();
            }

            WaitForWork(next, quiet && !idle ? IdleBeforeBackgroundMilliseconds : Timeout.Infinite);
        }

        FailPending();
    }

    /// <summary>
    /// One step of the loop; completions taken, commands that waited for room submitted. True if anything happened.
    /// </summary>
    private bool StepLoop(bool background)
    {
        using FirmwareScope firmware = InFirmware();
        if (_recorder is { } recorder)
        {
            RecordClock();
            recorder.Step(background);
        }

        bool worked = _loop.Step(background);
        while (_loop.TryTakeCompletion(out HostCompletion completion))
        {
            _trace.Complete(completion);
            if (_pending.Remove(completion.Id, out PendingCommand pending))
            {
                Count(pending.Opcode, pending.Length, completion.Status, Stopwatch.GetElapsedTime(pending.Arrived));
                pending.Done.Complete(completion.Status);
            }

            worked = true;
        }

        while (_waiting.Count > 0 && _loop.TrySubmit(_waiting.Peek()))
        {
            _waiting.Dequeue();
            worked = true;
        }

        return worked;
    }

    /// <summary>
    /// Waits for work to be queued, at most until the clock reaches <paramref name="until"/> (the
    /// loop's next event) or for <paramref name="milliseconds"/>; runs what came.
    /// </summary>
    private void WaitForWork(long? until, int milliseconds)
    {
        if (until is not { } instant)
        {
            if (_work.TryTake(out Action? action, milliseconds))
            {
                action.Invoke();
            }

            return;
        }

        // Flash times are tens of microseconds, finer than the OS timer: spin for the last stretch.
        var spin = default(SpinWait);
        while (true)
        {
            _device.FollowWallClock(quiet: false);
            long left = instant - _device.Clock.NowNanoseconds;
            if (left <= 0)
            {
                return;
            }

            Action? action;
            if (left > 2_000_000 ? _work.TryTake(out action, (int)((left / 1_000_000) - 1)) : _work.TryTake(out action))
            {
                action.Invoke();
                return;
            }

            if (left <= 2_000_000)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="nanoseconds"/> of wall time for work, running it if it comes; true if none came.
    /// </summary>
    private bool WaitIdle(long nanoseconds)
    {
        int milliseconds = (int)Math.Clamp((nanoseconds + 999_999) / 1_000_000, 0, int.MaxValue);
        if (_work.TryTake(out Action? action, milliseconds))
        {
            action.Invoke();
            return false;
        }

        return true;
    }

    /// <summary>
    /// Every command not yet completed fails with an I/O error (the device failed, was cut, or shut down).
    /// </summary>
    private void FailPending()
    {
        foreach (PendingCommand pending in _pending.Values)
        {
            pending.Done.Complete(HostStatus.IoError);
        }

        _pending.Clear();
        _waiting.Clear();
    }

    /// <summary>A command handed to the loop, and the connection's task waiting for it.</summary>
    private readonly record struct PendingCommand(INbdCompletion Done, HostOpcode Opcode, long Length, long Arrived);

    /// <summary>
    /// A command's end as a task, for callers that await it (its continuations run off the loop's thread).
    /// </summary>
    private sealed class TaskCompletion : INbdCompletion
    {
        private readonly TaskCompletionSource<HostStatus> _done = new(
            TaskCreationOptions.RunContinuationsAsynchronously
        );

        public Task<HostStatus> Task => _done.Task;

        public void Complete(HostStatus status) => _done.TrySetResult(status);

        public void Fail(Exception exception) => _done.TrySetException(exception);
    }

    /// <summary>
    /// The device (or the firmware on it) failed mid-operation: the loop's state is no longer one
    /// the firmware can go on from, so the controller stops using it. Always true (an exception filter).
    /// </summary>
    private bool Fail(Exception failure)
    {
        if (_failure is not null)
        {
            return true;
        }

        Volatile.Write(ref _failure, failure);
        _recorder?.Flush();
        string what =
            failure is Firmware.Invariants.InvariantViolationException
                ? $"the firmware stopped: an invariant broke: {failure.Message}"
                : $"the device failed: {failure.GetType().Name}: {failure.Message}";
        Log?.Write($"{what}; every command now fails with an I/O error, and nothing is checkpointed over this state");
        Failed?.Invoke(failure);
        return true;
    }

    private const int IdleBeforeBackgroundMilliseconds = 1;

    /// <summary>Commands the loop holds between submission and completion, over every connection.</summary>
    private const int LoopQueueDepth = 256;
}
