using System.Numerics;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Cache;

/// <summary>Entries and frames: allocation, eviction, write-back, and the invariants around freeing.</summary>
public sealed partial class LargePageCache
{
    private int NewEntry(long page)
    {
        if (_freeEntryCount == 0)
        {
            EvictOne();
        }

        int entry = _freeEntries[--_freeEntryCount];
        _entryPage[entry] = page;
        _entryHead[entry] = None;
        _valid.AsSpan(entry * _words, _words).Clear();
        _dirty.Reset(entry);
        _hole.AsSpan(entry * _words, _words).Clear();
        _referenced[entry] = true;
        _lruPrevious[entry] = None;
        _lruNext[entry] = None;
        _entries.Add(page, entry);
        MoveToLruFront(entry);
        return entry;
    }

    /// <summary>
    /// Gives sector <paramref name="index"/> of an entry memory: a large frame for an entry that
    /// has none, else a sector frame. When the arena is full, pages are evicted (written back
    /// first); when it is too fragmented for a large frame, a sector frame is used instead.
    /// </summary>
    private void EnsureFrame(int entry, int index)
    {
        if (FrameOf(entry, index) != None)
        {
            return;
        }

        if (_entryHead[entry] == None)
        {
            int large = AllocateUnits(_maxOrder, allowEviction: true);
            if (large != None)
            {
                AttachFrame(entry, large, _maxOrder, 0);
                return;
            }

            Statistics.LargeFrameFallbacks++;
        }

        int unit = AllocateUnits(0, allowEviction: true);
        if (unit == None)
        {
            throw new InvariantViolationException(
                $"no sector frame for page {_entryPage[entry]}: the arena of {_buddy.Units} sectors holds nothing evictable"
            );
        }

        AttachFrame(entry, unit, 0, index);
    }

    /// <summary>
    /// Allocates a block of the arena, evicting pages while memory is short. When enough memory is
    /// free but too fragmented for the block, returns -1 without evicting: the caller falls back
    /// to sector frames rather than empty the cache for one large frame.
    /// </summary>
    private int AllocateUnits(int order, bool allowEviction)
    {
        while (true)
        {
            int unit = _freeFrameCount > 0 ? _buddy.Allocate(order) : None;
            if (unit != None)
            {
                return unit;
            }

            bool fragmented = _freeFrameCount > 0 && _buddy.FreeUnits >= 1 << order;
            if (fragmented || !allowEviction || !EvictOne())
            {
                return None;
            }
        }
    }

    private int AttachFrame(int entry, int unit, int order, int first)
    {
        Invariant.Holds(_freeFrameCount > 0, "a frame descriptor is free");
        int frame = _freeFrames[--_freeFrameCount];
        _frameUnit[frame] = unit;
        _frameOrder[frame] = (byte)order;
        _frameFirst[frame] = first;
        _frameNext[frame] = _entryHead[entry];
        _entryHead[entry] = frame;
        return frame;
    }

    /// <summary>
    /// Frees a frame of an entry. Its dirty sectors must have been written back or moved to another
    /// frame of the entry first: a dirty frame is never freed unwritten.
    /// </summary>
    private void FreeFrame(int entry, int frame)
    {
        int first = _frameFirst[frame];
        int count = 1 << _frameOrder[frame];
        UnlinkFrame(entry, frame);
        for (int index = first; index < first + count; index++)
        {
            if (FrameOf(entry, index) == None)
            {
                if (_dirty.IsDirty(entry, index))
                {
                    throw new InvariantViolationException(
                        $"the frame of page {_entryPage[entry]} sectors {first}..{first + count - 1} was freed with sector {index} dirty and unwritten"
                    );
                }

                Clear(_valid, entry, index);
                Clear(_hole, entry, index);
            }
        }

        _buddy.Free(_frameUnit[frame], _frameOrder[frame]);
        _frameUnit[frame] = None;
        _freeFrames[_freeFrameCount++] = frame;
    }

    private void UnlinkFrame(int entry, int frame)
    {
        if (_entryHead[entry] == frame)
        {
            _entryHead[entry] = _frameNext[frame];
            return;
        }

        for (int previous = _entryHead[entry]; previous != None; previous = _frameNext[previous])
        {
            if (_frameNext[previous] == frame)
            {
                _frameNext[previous] = _frameNext[frame];
                return;
            }
        }

        throw new InvariantViolationException($"frame {frame} is not a frame of page {_entryPage[entry]}");
    }

    /// <summary>
    /// Writes back and drops one page chosen by the eviction policy (never the pinned one). False if there is none.
    /// </summary>
    private bool EvictOne()
    {
        int victim = _options.Eviction == EvictionPolicy.Lru ? LruVictim() : ClockVictim();
        if (victim == None)
        {
            return false;
        }

        WriteBackEntry(victim);
        DropEntry(victim);
        Statistics.Evictions++;
        return true;
    }

    private int LruVictim(bool cleanOnly = false)
    {
        for (int entry = _lruTail; entry != None; entry = _lruPrevious[entry])
        {
            if (entry != _pinned && !(cleanOnly && HasDirty(entry)))
            {
                return entry;
            }
        }

        return None;
    }

    /// <summary>
    /// Second chance over the entry slots: a page used since the hand last passed is spared once.
    /// With <paramref name="cleanOnly"/>, pages holding dirty sectors are passed over untouched.
    /// </summary>
    private int ClockVictim(bool cleanOnly = false)
    {
        int slots = _entryPage.Length;
        for (int step = 0; step < 2 * slots; step++)
        {
            int entry = _clockHand;
            _clockHand = (_clockHand + 1) % slots;
            if (
                !_entries.TryGetValue(_entryPage[entry], out int live)
                || live != entry
                || entry == _pinned
                || (cleanOnly && HasDirty(entry))
            )
            {
                continue;
            }

            if (_referenced[entry])
            {
                _referenced[entry] = false;
                continue;
            }

            return entry;
        }

        return None;
    }

    /// <summary>
    /// Allocates a block of <paramref name="order"/> without writing anything back: while the arena
    /// (or, with <paramref name="descriptorsNeeded"/> more to come, the frame table) is short,
    /// drops a clean page, chosen by the eviction policy among the clean ones. The kernel's
    /// migration does the same when it needs lower-order pages: it reclaims clean page cache,
    /// which costs no I/O, before it gives up. Returns -1 when no clean page is left to drop.
    /// </summary>
    private int AllocateReclaimingClean(int order, int descriptorsNeeded)
    {
        while (true)
        {
            int unit = _freeFrameCount > descriptorsNeeded ? _buddy.Allocate(order) : None;
            if (unit != None)
            {
                return unit;
            }

            int victim =
                _options.Eviction == EvictionPolicy.Lru ? LruVictim(cleanOnly: true) : ClockVictim(cleanOnly: true);
            if (victim == None)
            {
                return None;
            }

            DropEntry(victim);
            Statistics.CleanPagesReclaimed++;
        }
    }

    private bool HasDirty(int entry) => _dirty.AnyIn(entry);

    /// <summary>Writes back the dirty sectors of sectors [<paramref name="first"/>, <paramref name="end"/>).</summary>
    private void WriteBack(long first, long end)
    {
        if (_dirty.Count == 0)
        {
            return;
        }

        foreach ((long page, int entry) in _entries)
        {
            long pageFirst = page * _sectorsPerPage;
            if (pageFirst < end && pageFirst + _sectorsPerPage > first)
            {
                WriteBackEntry(
                    entry,
                    (int)Math.Max(0, first - pageFirst),
                    (int)Math.Min(_sectorsPerPage, end - pageFirst)
                );
            }
        }
    }

    private void WriteBackEntry(int entry) => WriteBackEntry(entry, 0, _sectorsPerPage);

    private void WriteBackEntry(int entry, int from, int to)
    {
        long pageFirst = _entryPage[entry] * _sectorsPerPage;
        for (int index = from; index < to; index++)
        {
            if (_dirty.IsDirty(entry, index))
            {
                _store.WriteSector(pageFirst + index, SectorSpan(entry, index));
                MarkClean(entry, index);
                Statistics.SectorsWrittenBack++;
            }
        }
    }

    /// <summary>
    /// Frees every frame of an entry and forgets the page. Its dirty sectors must be written back (or trimmed) first.
    /// </summary>
    private void DropEntry(int entry)
    {
        while (_entryHead[entry] != None)
        {
            FreeFrame(entry, _entryHead[entry]);
        }

        _entries.Remove(_entryPage[entry]);
        RemoveFromLru(entry);
        _freeEntries[_freeEntryCount++] = entry;
    }

    private void MoveToLruFront(int entry)
    {
        if (_lruHead == entry)
        {
            return;
        }

        RemoveFromLru(entry);
        _lruNext[entry] = _lruHead;
        _lruPrevious[entry] = None;
        if (_lruHead != None)
        {
            _lruPrevious[_lruHead] = entry;
        }

        _lruHead = entry;
        if (_lruTail == None)
        {
            _lruTail = entry;
        }
    }

    private void RemoveFromLru(int entry)
    {
        int previous = _lruPrevious[entry];
        int next = _lruNext[entry];
        if (previous != None)
        {
            _lruNext[previous] = next;
        }
        else if (_lruHead == entry)
        {
            _lruHead = next;
        }

        if (next != None)
        {
            _lruPrevious[next] = previous;
        }
        else if (_lruTail == entry)
        {
            _lruTail = previous;
        }

        _lruPrevious[entry] = None;
        _lruNext[entry] = None;
    }

    /// <summary>
    /// Checks the cache's invariants: the buddy free lists are consistent; every valid sector has a
    /// frame; a dirty sector is valid and not a hole; the dirty count matches the dirty bits;
    /// frames of an entry do not overlap. Walks the whole cache: with <c>cache.checkInvariants</c>,
    /// the loop runs it after every command.
    /// </summary>
    public void CheckInvariants()
    {
        _buddy.CheckConsistency();
        int dirty = 0;
        foreach ((long page, int entry) in _entries)
        {
            _dirty.CheckEntry(page, entry);
            for (int index = 0; index < _sectorsPerPage; index++)
            {
                int frames = 0;
                for (int frame = _entryHead[entry]; frame != None; frame = _frameNext[frame])
                {
                    frames +=
                        index >= _frameFirst[frame] && index < _frameFirst[frame] + (1 << _frameOrder[frame]) ? 1 : 0;
                }

                if (frames > 1)
                {
                    throw new InvariantViolationException($"page {page} sector {index} is covered by {frames} frames");
                }

                if ((IsSet(_valid, entry, index) || _dirty.IsDirty(entry, index)) && frames == 0)
                {
                    throw new InvariantViolationException(
                        $"page {page} sector {index} is valid or dirty without a frame"
                    );
                }

                if (_dirty.IsDirty(entry, index) && !IsSet(_valid, entry, index))
                {
                    throw new InvariantViolationException($"page {page} sector {index} is dirty but not valid");
                }

                if (IsSet(_hole, entry, index) && _dirty.IsDirty(entry, index))
                {
                    throw new InvariantViolationException(
                        $"page {page} sector {index} is both a punched hole and dirty data"
                    );
                }

                dirty += _dirty.IsDirty(entry, index) ? 1 : 0;
            }
        }

        if (dirty != _dirty.Count)
        {
            throw new InvariantViolationException($"{dirty} sectors are dirty, the count says {_dirty.Count}");
        }
    }
}
