using Controller.Firmware.Flash;
using Controller.Firmware.Loop;
using Controller.Management;

namespace Controller.Hosting.Recording;

/// <summary>
/// The device of a recorded session whose NAND outcomes were recorded (a real chip, or a NAND that
/// held data before the session): its NAND answers from the recording, its clock is the recorded
/// one. Power cuts and faults change nothing here: their effects are in the recorded outcomes.
/// </summary>
public sealed class ReplayDevice(NandGeometry geometry, SessionRecording recording, ulong firmwareSeed) : IServedDevice
{
    private readonly VirtualClock? _virtual = recording.Clock == RecordedClock.Moves ? new VirtualClock() : null;

    /// <inheritdoc />
    public string Description => $"the recorded device ({recording.Device})";

    /// <inheritdoc />
    public IClock Clock => field ??= _virtual is null ? new ReplayClock(recording) : _virtual;

    /// <inheritdoc />
    public INandDevice Nand { get; } = new ReplayNand(geometry, recording);

    /// <inheritdoc />
    public ulong FirmwareSeed => firmwareSeed;

    /// <inheritdoc />
    public bool JumpsToEvents => recording.JumpsToEvents;

    /// <inheritdoc />
    public bool CanCutPower => true;

    /// <inheritdoc />
    public void AttachFirmwareClock(IClock firmwareClock)
    {
    }

    /// <inheritdoc />
    public void JumpTo(long nanoseconds)
    {
        if (_virtual is null)
        {
            throw new InvalidDataException("the replay diverged: a recording of clock readings has no instants to move to");
        }

        _virtual.AdvanceTo(Math.Max(_virtual.NowNanoseconds, nanoseconds));
    }

    /// <inheritdoc />
    public void FollowWallClock(bool quiet)
    {
    }

    /// <inheritdoc />
    public void Idle()
    {
    }

    /// <inheritdoc />
    public int CutPower() => 0;

    /// <inheritdoc />
    public FaultSettings SetFaults(FaultRequest request) => new();

    /// <inheritdoc />
    public void Dispose()
    {
    }

    /// <summary>A clock only the replay moves.</summary>
    private sealed class VirtualClock : IClock
    {
        public long NowNanoseconds { get; private set; }

        public void AdvanceTo(long nanoseconds) => NowNanoseconds = nanoseconds;

        public void WaitUntil(long nanoseconds) => NowNanoseconds = Math.Max(NowNanoseconds, nanoseconds);
    }
}
