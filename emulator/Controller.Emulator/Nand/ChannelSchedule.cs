using System.Diagnostics;

namespace Controller.Emulator.Nand;

/// <summary>
/// The transfers booked on one channel, as intervals sorted by start. A new transfer takes the
/// first gap long enough at or after its earliest start, so the bus serves whichever die is ready
/// rather than the order operations were issued in.
/// </summary>
internal sealed class ChannelSchedule
{
    private readonly List<(long Start, long End)> _booked = [];

    /// <summary>Books <paramref name="duration"/> from <paramref name="earliest"/> on and returns the end.</summary>
    public long Book(long earliest, long duration, long now)
    {
        Debug.Assert(duration >= 0, "a transfer has a duration");
        int expired = 0;
        while (expired < _booked.Count && _booked[expired].End <= now)
        {
            expired++;
        }

        _booked.RemoveRange(0, expired);
        long start = earliest;
        int index = 0;
        while (index < _booked.Count && start + duration > _booked[index].Start)
        {
            start = Math.Max(start, _booked[index].End);
            index++;
        }

        _booked.Insert(index, (start, start + duration));
        Debug.Assert(index + 1 == _booked.Count || _booked[index + 1].Start >= start + duration, "transfers on a channel never overlap");
        return start + duration;
    }

    /// <summary>Forgets every booking (the power is gone).</summary>
    public void Clear() => _booked.Clear();
}
