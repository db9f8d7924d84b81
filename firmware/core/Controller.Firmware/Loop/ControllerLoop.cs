using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;

namespace Controller.Firmware.Loop;

/// <summary>
/// The controller loop, event-driven: host commands enter a bounded submission queue, run, wait in
/// flight for their flash work, and leave through a completion queue in the order their work
/// completes. One thread, one event queue ordered by (instant, sequence number), time from the
/// injected clock only, so one input is one execution.
/// <para>
/// A command's effects (on the cache, the FTL's map, the NAND's contents) happen in submission
/// order, when it is taken from the submission queue: a read after a write or trim sees its result,
/// and a flush covers everything submitted before it, which NBD and NVMe allow (they leave the
/// order of commands in flight together to the device). Its time is its own: it runs on a
/// <see cref="CommandClock"/> timeline that starts at the loop's instant, and its NAND operations
/// are booked on their dies and channels from there, behind what those already have. It completes
/// when the loop's clock reaches the end of that timeline. A cache hit completes at once; a miss
/// after its NAND reads; so many commands are in flight over the dies together.
/// </para>
/// <para>
/// Background work (write-back of dirty data older than <c>cache.dirtyExpireMilliseconds</c>,
/// oldest first; GC above the foreground watermark, wear levelling, due checkpoints) runs only
/// when no host command is queued or in flight, one step at a time, each step only once the flash
/// has finished the previous one: host work never queues behind more than one background step on a
/// die, and background work is never starved, since a write that finds too few free blocks collects
/// garbage itself.
/// </para>
/// <para>
/// With a plain clock instead of a <see cref="CommandClock"/> (or a firmware built on the device
/// clock), waits move the device clock and commands run one after another, as on a controller
/// that has one command in flight.
/// </para>
/// </summary>
public sealed class ControllerLoop
{
    private const int BlockBytes = 512;

    // Large pages of expired dirty data written back in one background step: a host command that
    // arrives meanwhile waits behind at most this much.
    private const int ExpiredPagesPerStep = 4;

    private readonly LargePageCache _cache;
    private readonly FlashTranslationLayer? _ftl;
    private readonly CommandClock _clock;
    private readonly HostCommand?[] _submissions;
    private readonly HostCompletion[] _completions;
    private readonly PriorityQueue<HostCompletion, (long Instant, long Sequence)> _inFlight;
    private readonly LatencyHistogram[] _latencies;
    private readonly long _plpBudgetPages;
    private int _submissionHead;
    private int _submissionCount;
    private int _completionHead;
    private int _completionCount;
    private long _sequence;
    private long _backgroundNotBefore;
    private bool _backgroundDone;

    /// <summary>
    /// Creates a loop over <paramref name="cache"/>, with room for <paramref name="queueDepth"/>
    /// commands between submission and the taking of their completions.
    /// <paramref name="plpBudgetPages"/> above zero turns power-loss protection on, with that many
    /// page programs of hold-up energy. The cache and the FTL should run on
    /// <paramref name="clock"/> (a <see cref="CommandClock"/>) for commands to overlap.
    /// </summary>
    public ControllerLoop(
        LargePageCache cache,
        FlashTranslationLayer? ftl,
        IClock clock,
        int queueDepth,
        long plpBudgetPages = 0
    )
    {
        ArgumentOutOfRangeException.ThrowIfNegative(plpBudgetPages);
        _plpBudgetPages = plpBudgetPages;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queueDepth);
        _cache = cache ?? throw new ArgumentNullException(nameof(cache));
        _ftl = ftl;
        ArgumentNullException.ThrowIfNull(clock);
        _clock = clock as CommandClock ?? new CommandClock(clock);
        _submissions = new HostCommand?[queueDepth];
        _completions = new HostCompletion[queueDepth];
        _inFlight = new PriorityQueue<HostCompletion, (long, long)>(queueDepth);
        _latencies = [.. Enum.GetValues<HostOpcode>().Select(_ => new LatencyHistogram())];
    }

    /// <summary>The cache the loop serves from.</summary>
    public LargePageCache Cache => _cache;

    /// <summary>Commands waiting in the submission queue.</summary>
    public int Submitted => _submissionCount;

    /// <summary>Commands that have run and wait for their flash work to complete.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Completions waiting to be taken.</summary>
    public int Completed => _completionCount;

    /// <summary>True when no command is queued, in flight or waiting to be taken.</summary>
    public bool IsQuiet => _submissionCount == 0 && _inFlight.Count == 0 && _completionCount == 0;

    /// <summary>
    /// The earliest instant an in-flight command completes; null when none is in flight. A driver on
    /// a virtual clock moves the clock there when <see cref="Step"/> has nothing to do.
    /// </summary>
    public long? NextEventNanoseconds =>
        _inFlight.TryPeek(out _, out (long Instant, long Sequence) head) ? head.Instant : null;

    /// <summary>
    /// While the host is quiet and background work has more to do: the instant the flash is done
    /// with the last background step, from which <see cref="Step"/> takes the next; otherwise null.
    /// </summary>
    public long? BackgroundReadyAtNanoseconds =>
        _ftl is not null && !_backgroundDone && _submissionCount == 0 && _inFlight.Count == 0
            ? Math.Max(_backgroundNotBefore, _clock.Device.NowNanoseconds)
            : null;

    /// <summary>
    /// While the host is quiet: when the oldest dirty large page expires and background write-back
    /// would take it (not before the flash is done with the last background step); otherwise null.
    /// </summary>
    public long? DirtyExpiresAtNanoseconds =>
        _submissionCount == 0 && _inFlight.Count == 0 && _cache.DirtyExpiresAtNanoseconds is { } expires
            ? Math.Max(expires, _backgroundNotBefore)
            : null;

    /// <summary>Latencies of completed commands of <paramref name="opcode"/>.</summary>
    public LatencyHistogram Latency(HostOpcode opcode) => _latencies[(int)opcode];

    /// <summary>
    /// Puts a command in the submission queue; false when the queue is full (the submitter
    /// retries after taking completions). Nothing is dropped.
    /// </summary>
    public bool TrySubmit(HostCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (_submissionCount == _submissions.Length)
        {
            return false;
        }

        command.SubmittedAtNanoseconds = _clock.Device.NowNanoseconds;
        _submissions[(_submissionHead + _submissionCount) % _submissions.Length] = command;
        _submissionCount++;
        return true;
    }

    /// <summary>Takes the oldest completion; false when there is none.</summary>
    public bool TryTakeCompletion(out HostCompletion completion)
    {
        if (_completionCount == 0)
        {
            completion = default;
            return false;
        }

        completion = _completions[_completionHead];
        _completionHead = (_completionHead + 1) % _completions.Length;
        _completionCount--;
        return true;
    }

    /// <summary>
    /// One step at the clock's current instant: completes the in-flight command whose work is done
    /// earliest, if it is done by now; else runs the oldest submitted command if there is room for
    /// it; else, with no host work at all and <paramref name="background"/> allowed, does one step
    /// of background work if the flash is done with the last one. Returns true if it did anything.
    /// </summary>
    public bool Step(bool background = true)
    {
        long now = _clock.Device.NowNanoseconds;
        if (
            _completionCount < _completions.Length
            && _inFlight.TryPeek(out _, out (long Instant, long Sequence) head)
            && head.Instant <= now
        )
        {
            Complete(_inFlight.Dequeue());
            return true;
        }

        if (_submissionCount > 0 && _completionCount + _inFlight.Count < _completions.Length)
        {
            RunNextCommand();
            return true;
        }

        if (!background || _inFlight.Count > 0 || _submissionCount > 0 || now < _backgroundNotBefore)
        {
            return false;
        }

        if (_cache.DirtyExpiresAtNanoseconds <= now)
        {
            // Dirty data does not wait forever: the oldest expired pages go to the NAND, a few a step.
            _clock.Begin(alone: true);
            try
            {
                _cache.WriteBackExpired(now, ExpiredPagesPerStep);
            }
            finally
            {
                _backgroundNotBefore = Math.Max(_clock.End(), _ftl?.FlashIdleAtNanoseconds ?? 0);
            }

            _backgroundDone = false;
            return true;
        }

        if (_ftl is null || _backgroundDone)
        {
            return false;
        }

        _clock.Begin(alone: true);
        bool worked;
        try
        {
            worked = _ftl.DoBackgroundWork();
        }
        finally
        {
            _backgroundNotBefore = Math.Max(_clock.End(), _ftl.FlashIdleAtNanoseconds);
        }

        _backgroundDone = !worked;
        return worked;
    }

    private void RunNextCommand()
    {
        HostCommand command = _submissions[_submissionHead]!;
        _submissions[_submissionHead] = null;
        _submissionHead = (_submissionHead + 1) % _submissions.Length;
        _submissionCount--;
        _backgroundDone = false;
        HostStatus status;
        long completes;
        _clock.Begin(alone: _submissionCount == 0 && _inFlight.Count == 0);
        try
        {
            status = Execute(command);
        }
        finally
        {
            completes = Math.Max(_clock.End(), _clock.Device.NowNanoseconds);
        }

        if (_cache.ChecksInvariants)
        {
            _cache.CheckInvariants();
            _ftl?.CheckInvariants();
        }

        var completion = new HostCompletion(
            command.Id,
            command.Opcode,
            status,
            command.SubmittedAtNanoseconds,
            completes
        );
        if (completes <= _clock.Device.NowNanoseconds && _inFlight.Count == 0)
        {
            Complete(completion);
        }
        else
        {
            _inFlight.Enqueue(completion, (completes, _sequence++));
        }
    }

    private void Complete(HostCompletion completion)
    {
        _latencies[(int)completion.Opcode].Record(completion.LatencyNanoseconds);
        _completions[(_completionHead + _completionCount) % _completions.Length] = completion;
        _completionCount++;
    }

    /// <summary>
    /// True when <paramref name="sector"/> is a hole (reads as zeros, holds no data): for NBD block status.
    /// </summary>
    public bool IsHole(long sector) => _cache.IsHole(sector);

    /// <summary>
    /// A clean shutdown (Ctrl-C, SIGTERM): writes back every dirty sector of the cache, flushes,
    /// and takes a checkpoint, so a restart finds everything and replays nothing.
    /// </summary>
    public void Shutdown()
    {
        _cache.Flush();
        _ftl?.CheckpointNow();
    }

    /// <summary>
    /// Why the last command that failed with <see cref="HostStatus.NoSpace"/> failed, for logs and reports.
    /// </summary>
    public string? LastFailure { get; private set; }

    /// <summary>True when power-loss protection is on.</summary>
    public bool PowerLossProtection => _plpBudgetPages > 0;

    /// <summary>
    /// Power-loss protection: on a power fail, the hold-up capacitor powers a write-back of every
    /// dirty sector and a flush, within the budget of page programs (the configuration refuses a
    /// budget that cannot cover a full cache, so exceeding it is a bug). Without PLP, nothing is
    /// saved. Returns the page programs the save took.
    /// </summary>
    public long SaveOnPowerFail()
    {
        if (!PowerLossProtection || _ftl is null)
        {
            return 0;
        }

        long before = _ftl.Statistics.DataPagesProgrammed + _ftl.Statistics.MetadataPagesProgrammed;
        _ftl.BeginPowerFailSave();
        _cache.Flush();
        long used = _ftl.Statistics.DataPagesProgrammed + _ftl.Statistics.MetadataPagesProgrammed - before;
        if (used > _plpBudgetPages)
        {
            throw new Invariants.InvariantViolationException(
                $"saving the cache on power fail took {used} page programs; the hold-up budget is {_plpBudgetPages}"
            );
        }

        return used;
    }

    private HostStatus Execute(HostCommand command)
    {
        if (!IsValid(command))
        {
            return HostStatus.InvalidArgument;
        }

        try
        {
            // FUA makes whatever a command changed durable at its completion (NBD and NVMe alike):
            // data written, a hole punched, zeros written. A READ or FLUSH changes nothing of its
            // own, so FUA on them asks for nothing more.
            bool fua = command.Flags.HasFlag(HostCommandOptions.ForceUnitAccess);
            switch (command.Opcode)
            {
                case HostOpcode.Read:
                    return _cache.Read(command.Offset, command.Buffer.Span[..(int)command.Length])
                        ? HostStatus.Ok
                        : HostStatus.IoError;
                case HostOpcode.Write:
                    return _cache.Write(command.Offset, command.Buffer.Span[..(int)command.Length], fua)
                        ? HostStatus.Ok
                        : HostStatus.IoError;
                case HostOpcode.Trim:
                    _cache.Trim(command.Offset, command.Length, fua);
                    return HostStatus.Ok;
                case HostOpcode.WriteZeroes:
                    _cache.WriteZeroes(
                        command.Offset,
                        command.Length,
                        command.Flags.HasFlag(HostCommandOptions.NoHole),
                        fua
                    );
                    return HostStatus.Ok;
                case HostOpcode.Flush:
                    _cache.Flush();
                    return HostStatus.Ok;
                default:
                    return HostStatus.InvalidArgument;
            }
        }
        catch (FtlException e)
        {
            LastFailure = e.Message;
            return HostStatus.NoSpace;
        }
    }

    private bool IsValid(HostCommand command)
    {
        if (command.Opcode == HostOpcode.Flush)
        {
            return true;
        }

        bool aligned = command.Offset % BlockBytes == 0 && command.Length % BlockBytes == 0;
        bool inside =
            command.Offset >= 0
            && command.Length >= 0
            && command.Length <= _cache.DeviceBytes
            && command.Offset <= _cache.DeviceBytes - command.Length;
        bool buffered =
            command.Opcode is not (HostOpcode.Read or HostOpcode.Write)
            || (command.Length <= command.Buffer.Length && command.Length <= int.MaxValue);
        return aligned && inside && buffered;
    }
}
