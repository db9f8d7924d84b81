using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;

namespace Controller.Firmware.Loop;

/// <summary>
/// The controller loop: host commands enter a bounded submission queue and leave through a
/// completion queue; one thread steps through host work (in submission order, so a read after a
/// write or trim sees its result and a flush covers everything completed before it), and, when
/// there is no host work, through GC and checkpoints. Time is the injected clock's: a command's
/// latency is the clock's advance from its submission to its completion, NAND waits included.
/// When the cache is full of dirty data, a write waits while pages are written back to make room.
/// </summary>
public sealed class ControllerLoop
{
    private const int BlockBytes = 512;

    private readonly LargePageCache _cache;
    private readonly FlashTranslationLayer? _ftl;
    private readonly IClock _clock;
    private readonly HostCommand?[] _submissions;
    private readonly HostCompletion[] _completions;
    private readonly LatencyHistogram[] _latencies;
    private readonly long _plpBudgetPages;
    private int _submissionHead;
    private int _submissionCount;
    private int _completionHead;
    private int _completionCount;

    /// <summary>
    /// Creates a loop over <paramref name="cache"/>, with queues of <paramref name="queueDepth"/>
    /// commands. <paramref name="plpBudgetPages"/> above zero turns power-loss protection on, with
    /// that many page programs of hold-up energy.
    /// </summary>
    public ControllerLoop(LargePageCache cache, FlashTranslationLayer? ftl, IClock clock, int queueDepth, long plpBudgetPages = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(plpBudgetPages);
        _plpBudgetPages = plpBudgetPages;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queueDepth);
        _cache = cache ?? throw new ArgumentNullException(nameof(cache));
        _ftl = ftl;
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _submissions = new HostCommand?[queueDepth];
        _completions = new HostCompletion[queueDepth];
        _latencies = [.. Enum.GetValues<HostOpcode>().Select(_ => new LatencyHistogram())];
    }

    /// <summary>The cache the loop serves from.</summary>
    public LargePageCache Cache => _cache;

    /// <summary>Commands waiting in the submission queue.</summary>
    public int Submitted => _submissionCount;

    /// <summary>Completions waiting to be taken.</summary>
    public int Completed => _completionCount;

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

        command.SubmittedAtNanoseconds = _clock.NowNanoseconds;
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
    /// One step: executes the oldest submitted command if there is one and room for its
    /// completion; otherwise does background work. Returns true if it did anything.
    /// </summary>
    public bool Step()
    {
        if (_submissionCount > 0 && _completionCount < _completions.Length)
        {
            HostCommand command = _submissions[_submissionHead]!;
            _submissions[_submissionHead] = null;
            _submissionHead = (_submissionHead + 1) % _submissions.Length;
            _submissionCount--;
            HostStatus status = Execute(command);
            if (_cache.ChecksInvariants)
            {
                _cache.CheckInvariants();
                _ftl?.CheckInvariants();
            }

            var completion = new HostCompletion(command.Id, command.Opcode, status, command.SubmittedAtNanoseconds, _clock.NowNanoseconds);
            _latencies[(int)command.Opcode].Record(completion.LatencyNanoseconds);
            _completions[(_completionHead + _completionCount) % _completions.Length] = completion;
            _completionCount++;
            return true;
        }

        return _ftl?.DoBackgroundWork() ?? false;
    }

    /// <summary>True when <paramref name="sector"/> is a hole (reads as zeros, holds no data): for NBD block status.</summary>
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

    /// <summary>Why the last command that failed with <see cref="HostStatus.NoSpace"/> failed, for logs and reports.</summary>
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
            throw new Invariants.InvariantViolationException($"saving the cache on power fail took {used} page programs; the hold-up budget is {_plpBudgetPages}");
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
                    return _cache.Read(command.Offset, command.Buffer.Span[..(int)command.Length]) ? HostStatus.Ok : HostStatus.IoError;
                case HostOpcode.Write:
                    return _cache.Write(command.Offset, command.Buffer.Span[..(int)command.Length], fua) ? HostStatus.Ok : HostStatus.IoError;
                case HostOpcode.Trim:
                    _cache.Trim(command.Offset, command.Length, fua);
                    return HostStatus.Ok;
                case HostOpcode.WriteZeroes:
                    _cache.WriteZeroes(command.Offset, command.Length, command.Flags.HasFlag(HostCommandOptions.NoHole), fua);
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
        bool inside = command.Offset >= 0 && command.Length >= 0 && command.Length <= _cache.DeviceBytes && command.Offset <= _cache.DeviceBytes - command.Length;
        bool buffered = command.Opcode is not (HostOpcode.Read or HostOpcode.Write) || (command.Length <= command.Buffer.Length && command.Length <= int.MaxValue);
        return aligned && inside && buffered;
    }
}
