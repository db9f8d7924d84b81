using System.Numerics;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Cache;

/// <summary>
/// Which sectors of the cache's entries are dirty: a bit per sector, a count per entry and in all,
/// the instant each entry went dirty, and (with dirty-data expiry) the entries in the order they
/// went dirty. They change together, only here, so the counts and the order cannot drift from the
/// bits; <see cref="CheckEntry"/> checks one entry's part.
/// </summary>
internal sealed class DirtyMap
{
    private readonly int _words;
    private readonly ulong[] _bits;
    private readonly int[] _perEntry;
    private readonly long[] _since;
    private readonly bool _ordered;

    // Entries in the order they went dirty, each with that instant; an item whose instant is no
    // longer its entry's is stale (written back, or the entry reused) and is dropped when met.
    private readonly Queue<(int Entry, long Since)> _order = new();

    /// <summary>
    /// A map of <paramref name="entries"/> entries of <paramref name="words"/> 64-bit words each; with
    /// <paramref name="ordered"/>, the order entries went dirty is kept.
    /// </summary>
    public DirtyMap(int entries, int words, bool ordered)
    {
        _words = words;
        _bits = new ulong[entries * words];
        _perEntry = new int[entries];
        _since = new long[entries];
        _ordered = ordered;
    }

    /// <summary>Dirty sectors in all.</summary>
    public int Count { get; private set; }

    /// <summary>True when sector <paramref name="index"/> of <paramref name="entry"/> is dirty.</summary>
    public bool IsDirty(int entry, int index) => (_bits[(entry * _words) + (index >> 6)] & (1UL << index)) != 0;

    /// <summary>True when any sector of <paramref name="entry"/> is dirty.</summary>
    public bool AnyIn(int entry) => _bits.AsSpan(entry * _words, _words).ContainsAnyExcept(0UL);

    /// <summary>A new entry: none of its sectors is dirty.</summary>
    public void Reset(int entry)
    {
        _bits.AsSpan(entry * _words, _words).Clear();
        _perEntry[entry] = 0;
        _since[entry] = -1;
    }

    /// <summary>
    /// Marks sector <paramref name="index"/> of <paramref name="entry"/> dirty; the entry's first dirty sector sets its
    /// instant to <paramref name="now"/>.
    /// </summary>
    public void Mark(int entry, int index, long now)
    {
        if (IsDirty(entry, index))
        {
            return;
        }

        _bits[(entry * _words) + (index >> 6)] |= 1UL << index;
        Count++;
        if (_perEntry[entry]++ == 0)
        {
            _since[entry] = now;
            if (_ordered)
            {
                _order.Enqueue((entry, now));
            }
        }
    }

    /// <summary>
    /// Marks sector <paramref name="index"/> of <paramref name="entry"/> clean (written back, or trimmed).
    /// </summary>
    public void Clean(int entry, int index)
    {
        if (!IsDirty(entry, index))
        {
            return;
        }

        _bits[(entry * _words) + (index >> 6)] &= ~(1UL << index);
        Count--;
        if (--_perEntry[entry] == 0)
        {
            _since[entry] = -1;
        }
    }

    /// <summary>
    /// The instant the entry dirty the longest went dirty, or null when none is (or the order is not kept).
    /// </summary>
    public long? OldestSince()
    {
        while (_order.TryPeek(out (int Entry, long Since) head) && _since[head.Entry] != head.Since)
        {
            _order.Dequeue();
        }

        return _order.TryPeek(out (int Entry, long Since) oldest) ? oldest.Since : null;
    }

    /// <summary>
    /// Takes the entry dirty the longest out of the order (after <see cref="OldestSince"/> said there is one).
    /// </summary>
    public int TakeOldest() => _order.Dequeue().Entry;

    /// <summary>
    /// Checks that <paramref name="entry"/>'s count and instant agree with its bits (the cache's page
    /// <paramref name="page"/>).
    /// </summary>
    public void CheckEntry(long page, int entry)
    {
        int dirty = 0;
        for (int word = 0; word < _words; word++)
        {
            dirty += BitOperations.PopCount(_bits[(entry * _words) + word]);
        }

        if (dirty != _perEntry[entry] || (dirty == 0) != (_since[entry] < 0))
        {
            throw new InvariantViolationException(
                $"page {page} has {dirty} dirty sectors, its count says {_perEntry[entry]} (dirty since {_since[entry]})"
            );
        }
    }
}
