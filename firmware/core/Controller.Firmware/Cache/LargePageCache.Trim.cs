namespace Controller.Firmware.Cache;

/// <summary>TRIM as a hole punch, and WRITE ZEROES, with the four policies of DESIGN.md section 4.</summary>
public sealed partial class LargePageCache
{
    private static readonly byte[] s_zeros = new byte[SectorBytes];

    /// <summary>
    /// Punches a hole: the range reads as zeros from now on. Whole sectors are unmapped in the
    /// store and leave the cache by the configured policy (a whole cached large page is dropped);
    /// a partial sector at either end is zeroed in its frame and dirtied. With
    /// <paramref name="forceUnitAccess"/>, the hole is durable before this returns: the zeroed
    /// partial sectors are written back and the store flushed (which makes the unmapping durable).
    /// </summary>
    public void Trim(long offset, long length, bool forceUnitAccess = false)
    {
        CheckRange(offset, (int)Math.Min(length, int.MaxValue));
        long end = offset + length;
        long firstWhole = (offset + SectorBytes - 1) / SectorBytes * SectorBytes;
        long lastWhole = end / SectorBytes * SectorBytes;
        if (firstWhole >= lastWhole)
        {
            ZeroBytes(offset, end);
        }
        else
        {
            ZeroBytes(offset, firstWhole);
            ZeroBytes(lastWhole, end);
            PunchSectors(firstWhole / SectorBytes, (lastWhole - firstWhole) / SectorBytes);
        }

        if (forceUnitAccess)
        {
            MakeDurable(offset, length);
        }
    }

    /// <summary>
    /// WRITE ZEROES: a hole punch, unless <paramref name="noHole"/> asks for zeros written as data.
    /// With <paramref name="forceUnitAccess"/>, the zeros are durable before this returns.
    /// </summary>
    public void WriteZeroes(long offset, long length, bool noHole, bool forceUnitAccess = false)
    {
        if (!noHole)
        {
            Trim(offset, length, forceUnitAccess);
            return;
        }

        CheckRange(offset, (int)Math.Min(length, int.MaxValue));
        ZeroBytes(offset, offset + length);
        if (forceUnitAccess)
        {
            MakeDurable(offset, length);
        }
    }

    /// <summary>Zeroes bytes [<paramref name="from"/>, <paramref name="to"/>), as writes of zeros.</summary>
    private void ZeroBytes(long from, long to)
    {
        while (from < to)
        {
            long sector = from / SectorBytes;
            int within = (int)(from % SectorBytes);
            int count = (int)Math.Min(to - from, SectorBytes - within);
            WriteSector(sector, within, s_zeros.AsSpan(0, count));
            from += count;
        }
    }

    private void PunchSectors(long first, long count)
    {
        _store.TrimSectors(first, count);
        long end = first + count;
        for (long page = first / _sectorsPerPage; page * _sectorsPerPage < end; page++)
        {
            if (!_entries.TryGetValue(page, out int entry))
            {
                continue;
            }

            long pageFirst = page * _sectorsPerPage;
            int lo = (int)(Math.Max(first, pageFirst) - pageFirst);
            int hi = (int)(Math.Min(end, pageFirst + _sectorsPerPage) - pageFirst);
            // The trimmed data is gone: nothing of it is to be written back.
            for (int index = lo; index < hi; index++)
            {
                MarkClean(entry, index);
            }

            if (lo == 0 && hi == _sectorsPerPage)
            {
                DropEntry(entry);
                continue;
            }

            Statistics.PartialPagePunches++;
            _pinned = entry;
            switch (_options.TrimPolicy)
            {
                case TrimPolicy.ZeroFill:
                    ZeroFill(entry, lo, hi);
                    break;
                case TrimPolicy.Split or TrimPolicy.Migrate:
                    PunchFrames(entry, lo, hi, _options.TrimPolicy);
                    break;
                case TrimPolicy.Evict:
                    WriteBackEntry(entry);
                    DropEntry(entry);
                    break;
            }

            Unpin();
            if (_entries.ContainsKey(page) && _entryHead[entry] == None)
            {
                DropEntry(entry);
            }
        }
    }

    /// <summary>
    /// zero-fill: zero the range in place and mark its sectors holes; the page stays whole. Every
    /// sector of the range has a frame: under zero-fill every frame is a whole large page (nothing
    /// splits one), and split and migrate fall back to this only over the frame they cut.
    /// </summary>
    private void ZeroFill(int entry, int lo, int hi)
    {
        for (int index = lo; index < hi; index++)
        {
            SectorSpan(entry, index).Clear();
            ChargeDram(SectorBytes);
            Statistics.BytesZeroed += SectorBytes;
            Set(_valid, entry, index);
            Set(_hole, entry, index);
        }
    }

    /// <summary>
    /// split and migrate: each frame the hole [lo, hi) covers entirely is freed. Each frame it cuts
    /// is, for split, broken in place into sector frames (one descriptor per sector) whose sectors
    /// in the hole are freed; for migrate, freed once its valid survivors are copied into newly
    /// allocated lower-order frames. When split lacks descriptors or migrate lacks frames, the cut
    /// frame is kept whole with its holes recorded (zero-filled), never dropped.
    /// </summary>
    private void PunchFrames(int entry, int lo, int hi, TrimPolicy policy)
    {
        for (int frame = _entryHead[entry]; frame != -1; )
        {
            int next = _frameNext[frame];
            int first = _frameFirst[frame];
            int count = 1 << _frameOrder[frame];
            int cutFirst = Math.Max(lo, first);
            int cutEnd = Math.Min(hi, first + count);
            if (cutFirst >= cutEnd)
            {
                frame = next;
                continue;
            }

            if (first >= lo && first + count <= hi)
            {
                FreeFrame(entry, frame);
            }
            else if (
                policy == TrimPolicy.Split
                    ? !SplitOut(entry, frame, cutFirst, cutEnd)
                    : !MigrateOut(entry, frame, lo, hi)
            )
            {
                if (policy == TrimPolicy.Split)
                {
                    Statistics.SplitFallbacks++;
                }
                else
                {
                    Statistics.MigrateFallbacks++;
                }

                ZeroFill(entry, cutFirst, cutEnd);
            }

            frame = next;
        }
    }

    private bool SplitOut(int entry, int frame, int cutFirst, int cutEnd)
    {
        if (_freeFrameCount < (1 << _frameOrder[frame]) - 1)
        {
            return false;
        }

        SplitFrame(entry, frame);
        for (int index = cutFirst; index < cutEnd; index++)
        {
            FreeFrame(entry, FrameOf(entry, index));
        }

        return true;
    }

    private bool MigrateOut(int entry, int frame, int lo, int hi)
    {
        if (!MigrateSurvivors(entry, frame, lo, hi))
        {
            return false;
        }

        FreeFrame(entry, frame);
        return true;
    }

    /// <summary>Splits a frame in place into sector frames: the same memory, one descriptor per sector.</summary>
    private void SplitFrame(int entry, int frame)
    {
        int order = _frameOrder[frame];
        int unit = _frameUnit[frame];
        int first = _frameFirst[frame];
        _buddy.Split(unit, order, 0);
        _frameOrder[frame] = 0;
        for (int part = 1; part < 1 << order; part++)
        {
            AttachFrame(entry, unit + part, 0, first + part);
        }
    }

    /// <summary>
    /// Moves the valid sectors of <paramref name="frame"/> outside [lo, hi) into new frames, each
    /// run of them in the largest power-of-two pieces, dropping clean pages to make room if it must
    /// (no write-back). False (and the page unchanged) if even then the pieces cannot be had.
    /// </summary>
    private bool MigrateSurvivors(int entry, int frame, int lo, int hi)
    {
        int first = _frameFirst[frame];
        int end = first + (1 << _frameOrder[frame]);
        Span<(int Unit, int Order, int First)> pieces = stackalloc (int, int, int)[64];
        int made = 0;
        for (int index = first; index < end; )
        {
            if ((index >= lo && index < hi) || !IsSet(_valid, entry, index))
            {
                index++;
                continue;
            }

            int run = 1;
            while (index + run < end && !(index + run >= lo && index + run < hi) && IsSet(_valid, entry, index + run))
            {
                run++;
            }

            for (int at = index; at < index + run; )
            {
                int order = System.Numerics.BitOperations.Log2((uint)(index + run - at));
                int unit = made < pieces.Length ? AllocateReclaimingClean(order, made) : -1;
                if (unit == -1)
                {
                    for (int i = 0; i < made; i++)
                    {
                        _buddy.Free(pieces[i].Unit, pieces[i].Order);
                    }

                    return false;
                }

                pieces[made++] = (unit, order, at);
                at += 1 << order;
            }

            index += run;
        }

        for (int i = 0; i < made; i++)
        {
            (int unit, int order, int at) = pieces[i];
            int bytes = (1 << order) * SectorBytes;
            int from = (_frameUnit[frame] + at - first) * SectorBytes;
            _arena.AsSpan(from, bytes).CopyTo(_arena.AsSpan(unit * SectorBytes, bytes));
            ChargeDram(bytes);
            Statistics.BytesMigrated += bytes;
        }

        for (int i = 0; i < made; i++)
        {
            AttachFrame(entry, pieces[i].Unit, pieces[i].Order, pieces[i].First);
        }

        return true;
    }
}
