using System.Diagnostics;

namespace Controller.Emulator.Nand;

/// <summary>
/// The transfers booked on one channel, as intervals sorted by start. A new transfer takes the
/// first gap long enough at or after its earliest start, so the bus serves whichever die is ready
/// rather than the order operations were issued in. Kept in a ring that grows but never shrinks:
/// the common cases (an idle bus, a transfer after all others) touch one slot and allocate nothing.
/// </summary>
internal sealed class ChannelSchedule
{
    private (long Start, long End)[] _ring = new (long, long)[8];
    private int _head;
    private int _count;

    /// <summary>Books <paramref name="duration"/> from <paramref name="earliest"/> on and returns the end.</summary>
    public long Book(long earliest, long duration, long now)
    {
        Debug.Assert(duration >= 0, "a transfer has a duration");
        while (_count > 0 && At(0).End <= now)
        {
            _head = (_head + 1) % _ring.Length;
            _count--;
        }

        // The common case: the transfer comes after everything booked, so it goes at the end.
        if (_count == 0 || earliest >= At(_count - 1).End)
        {
            Insert(_count, (earliest, earliest + duration));
            return earliest + duration;
        }

        // Bookings never overlap, so they are in order of their ends too: skip those over by then.
        int index = 0;
        for (int high = _count; index < high; )
        {
            int middle = (index + high) >>> 1;
            if (At(middle).End <= earliest)
            {
                index = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        long start = earliest;
        while (index < _count && start + duration > At(index).Start)
        {
            start = Math.Max(start, At(index).End);
            index++;
        }

        Insert(index, (start, start + duration));
        Debug.Assert(
            index + 1 == _count || At(index + 1).Start >= start + duration,
            "transfers on a channel never overlap"
        );
        return start + duration;
    }

    /// <summary>Forgets every booking (the power is gone).</summary>
    public void Clear()
    {
        _head = 0;
        _count = 0;
    }

    private ref (long Start, long End) At(int index) => ref _ring[(_head + index) % _ring.Length];

    private void Insert(int index, (long Start, long End) interval)
    {
        if (_count == _ring.Length)
        {
            var larger = new (long, long)[_ring.Length * 2];
            for (int i = 0; i < _count; i++)
            {
                larger[i] = At(i);
            }

            _ring = larger;
            _head = 0;
        }

        for (int i = _count; i > index; i--)
        {
            At(i) = At(i - 1);
        }

        At(index) = interval;
        _count++;
    }
}
