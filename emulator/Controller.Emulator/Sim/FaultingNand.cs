using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Hosting;

namespace Controller.Emulator.Sim;

/// <summary>Thrown where the power was cut: the firmware's state is gone, its stack unwinds.</summary>
public sealed class PowerCutException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PowerCutException()
        : base("the power was cut") { }

    /// <summary>Creates the exception with a message.</summary>
    public PowerCutException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public PowerCutException(string message, Exception innerException)
        : base(message, innerException) { }
}

/// <summary>Where a power cut struck.</summary>
/// <param name="Operation">The NAND operation whose issue armed it (null: a cut between two host commands).</param>
/// <param name="Activity">What the FTL was doing.</param>
/// <param name="AtNanoseconds">The instant of the cut.</param>
/// <param name="Torn">Programs and erases in progress at that instant (not those yet to start).</param>
public sealed record PowerCutPoint(
    NandOperationKind? Operation,
    FtlActivity Activity,
    long AtNanoseconds,
    IReadOnlyList<TornOperation> Torn
);

/// <summary>
/// The NAND as the firmware sees it in a simulation: every operation goes to the emulated array
/// and into the trace, and an armed countdown cuts the power during the Nth operation from now, at
/// an instant drawn between its issue and its completion, so the cut can fall inside a program or
/// an erase, or just after one. With hold-up energy (power-loss protection) the cut is only
/// signalled, and the caller saves what it must before the power goes.
/// </summary>
internal sealed class FaultingNand : INandDevice
{
    private readonly EmulatedNand _inner;
    private readonly VirtualClock _clock;
    private readonly Prng _prng;
    private readonly ExecutionTrace _trace;
    private long _countdown = -1;

    public FaultingNand(EmulatedNand inner, VirtualClock clock, Prng prng, ExecutionTrace trace)
    {
        _inner = inner;
        _clock = clock;
        _prng = prng;
        _trace = trace;
    }

    public NandGeometry Geometry => _inner.Geometry;

    /// <summary>What the firmware above is doing, asked when a cut strikes.</summary>
    public Func<FtlActivity> Activity { get; set; } = () => FtlActivity.Host;

    /// <summary>
    /// When true, an armed cut only sets <see cref="PowerFailPending"/>: the hold-up capacitor keeps the power on for a
    /// save.
    /// </summary>
    public bool HoldUp { get; set; }

    /// <summary>
    /// A cut struck while <see cref="HoldUp"/> was on; the caller must save, then call <see cref="CutNow"/>.
    /// </summary>
    public bool PowerFailPending { get; private set; }

    /// <summary>The last cut.</summary>
    public PowerCutPoint? LastCut { get; private set; }

    /// <summary>NAND operations issued so far.</summary>
    public long Operations { get; private set; }

    /// <summary>
    /// Cut the power during the <paramref name="operations"/>th operation from now (1: the next); 0 disarms.
    /// </summary>
    public void CutDuring(long operations) => _countdown = operations <= 0 ? -1 : operations;

    /// <summary>
    /// Cuts the power now, between two host commands: whatever the array still has in flight is
    /// torn by where it stands at this instant. With hold-up energy, only signals the power fail.
    /// </summary>
    public void CutBetweenCommands()
    {
        _countdown = -1;
        FtlActivity activity = Activity();
        if (HoldUp)
        {
            PowerFailPending = true;
            LastCut = new PowerCutPoint(null, activity, _clock.NowNanoseconds, []);
            return;
        }

        IReadOnlyList<TornOperation> torn = _inner.PowerCut();
        LastCut = new PowerCutPoint(
            null,
            activity,
            _clock.NowNanoseconds,
            [.. torn.Where(t => t.Outcome != PowerCutOutcome.NotStarted && t.Kind != NandOperationKind.Read)]
        );
    }

    /// <summary>After a signalled cut and the save: waits for every operation to complete, then cuts.</summary>
    public void CutNow(long completesAtNanoseconds)
    {
        _clock.WaitUntil(completesAtNanoseconds);
        _inner.PowerCut();
        PowerFailPending = false;
    }

    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare) =>
        After(NandOperationKind.Read, address, _inner.ReadPage(address, data, spare));

    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) =>
        After(NandOperationKind.Program, address, _inner.ProgramPage(address, data, spare));

    public NandCompletion EraseBlock(int block) =>
        After(NandOperationKind.Erase, new PageAddress(block, 0), _inner.EraseBlock(block));

    public NandDieStatus GetDieStatus(int die) => _inner.GetDieStatus(die);

    private NandCompletion After(NandOperationKind kind, PageAddress address, NandCompletion completion)
    {
        _trace.Nand(_inner.IssueClock.NowNanoseconds, (int)kind, address, completion);
        Operations++;
        if (_countdown <= 0 || --_countdown > 0)
        {
            return completion;
        }

        _countdown = -1;
        FtlActivity activity = Activity();
        if (HoldUp)
        {
            PowerFailPending = true;
            LastCut = new PowerCutPoint(kind, activity, _clock.NowNanoseconds, []);
            return completion;
        }

        long span = Math.Max(0, completion.CompletesAtNanoseconds - _clock.NowNanoseconds);
        _clock.AdvanceTo(_clock.NowNanoseconds + (long)_prng.NextUInt64((ulong)span + 1));
        IReadOnlyList<TornOperation> torn = _inner.PowerCut();
        LastCut = new PowerCutPoint(
            kind,
            activity,
            _clock.NowNanoseconds,
            [.. torn.Where(t => t.Outcome != PowerCutOutcome.NotStarted && t.Kind != NandOperationKind.Read)]
        );
        throw new PowerCutException();
    }
}
