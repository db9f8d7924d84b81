using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Hosting.Recording;

/// <summary>
/// A clock that moves by itself (a board's), with every reading the firmware makes recorded
/// (<see cref="SessionRecorder.ClockRead"/>). Waiting is not recorded: only the readings after it
/// are what the firmware sees, and a replay returns those.
/// </summary>
public sealed class RecordingClock(IClock inner, SessionRecorder recorder) : IClock
{
    /// <inheritdoc />
    public long NowNanoseconds
    {
        get
        {
            long now = inner.NowNanoseconds;
            recorder.ClockRead(now);
            return now;
        }
    }

    /// <inheritdoc />
    public void WaitUntil(long nanoseconds) => inner.WaitUntil(nanoseconds);
}

/// <summary>
/// The recorded clock of a session, read back: each reading returns what the session's reading at
/// that place returned (<see cref="RecordingClock"/>), taking the recording's clock records as the
/// replay reaches them. Waiting takes no time.
/// </summary>
public sealed class ReplayClock(SessionRecording recording) : IClock
{
    private long _now;
    private long _unchanged;

    /// <inheritdoc />
    public long NowNanoseconds
    {
        get
        {
            if (recording.Peek() is { Kind: SessionRecordKind.ClockRead } next && next.Unchanged == _unchanged)
            {
                recording.Take();
                _now = next.Nanoseconds;
                _unchanged = 0;
            }
            else
            {
                _unchanged++;
            }

            return _now;
        }
    }

    /// <inheritdoc />
    public void WaitUntil(long nanoseconds) { }
}
