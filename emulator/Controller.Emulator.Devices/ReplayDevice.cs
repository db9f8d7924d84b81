using Controller.Common;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;
using Controller.Hosting;
using Controller.Hosting.Recording;
using Controller.Management;

namespace Controller.Emulator;

/// <summary>
/// The device of a recorded session whose NAND outcomes were recorded (a real chip, or a NAND that
/// held data before the session): its NAND answers from the recording (<see cref="ReplayNand"/>),
/// and its clock is the one the replay keeps for the recording (a <see cref="VirtualClock"/> set to
/// each recorded instant, or a <see cref="ReplayClock"/>). Power cuts and faults change nothing
/// here: their effects are in the recorded outcomes.
/// </summary>
public sealed class ReplayDevice(NandGeometry geometry, SessionRecording recording, IClock clock, ulong firmwareSeed)
    : IServedDevice
{
    /// <inheritdoc />
    public string Description => $"the recorded device ({recording.Device})";

    /// <inheritdoc />
    public IClock Clock => clock;

    /// <inheritdoc />
    public INandDevice Nand { get; } = new ReplayNand(geometry, recording);

    /// <inheritdoc />
    public ulong FirmwareSeed => firmwareSeed;

    /// <inheritdoc />
    public bool JumpsToEvents => recording.JumpsToEvents;

    /// <inheritdoc />
    public bool CanCutPower => true;

    /// <inheritdoc />
    public void AttachFirmwareClock(IClock firmwareClock) { }

    /// <inheritdoc />
    public void JumpTo(long nanoseconds)
    {
        VirtualClock instants =
            clock as VirtualClock
            ?? throw new InvalidDataException(
                "the replay diverged: a recording of clock readings has no instants to move to"
            );
        instants.AdvanceTo(Math.Max(instants.NowNanoseconds, nanoseconds));
    }

    /// <inheritdoc />
    public void FollowWallClock(bool quiet) { }

    /// <inheritdoc />
    public void Idle() { }

    /// <inheritdoc />
    public int CutPower() => 0;

    /// <inheritdoc />
    public FaultSettings SetFaults(FaultRequest request) => new();

    /// <inheritdoc />
    public void Dispose() { }
}
