using Controller.Firmware.Config;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>Garbage collection, wear levelling and the retirement of failed blocks.</summary>
public sealed partial class FlashTranslationLayer
{
    private const int AllocationsBetweenWearChecks = 4;

    /// <summary>
    /// Before a host write: relocates the valid data of failed blocks, and collects garbage in the
    /// foreground until the free blocks are back above the foreground watermark. The reserve
    /// below that watermark is what GC itself writes into, so it can always make progress.
    /// </summary>
    private void MakeRoom()
    {
        RetireFailedBlocks();
        ReleaseVictims(force: false);
        int attempts = 0;
        while (_blocks.FreeCount < ForegroundGcFloor)
        {
            // Collect until the victims waiting for release would bring the count back, then
            // release them all at once, so only the last one pads a partial cold unit. Retired
            // blocks waiting to be marked bad never come back, so they do not count. Relocation
            // itself takes free blocks (most of one per victim when the spare is small), so
            // collection pauses for a release before the pool runs down to the last two.
            while (
                _blocks.FreeCount > 2
                && _blocks.FreeCount + _releasing.Count(r => !r.BecomesBad) < ForegroundGcFloor
                && CollectVictim(PickVictim())
            )
            {
                Statistics.ForegroundGcVictims++;
            }

            // Down to the last two (power cuts abandon open blocks, grown bad blocks shrink the
            // spare): collect the emptiest block only if its valid data fits in the open cold
            // block and one free block, so the pool never empties; its release gains a block.
            if (
                _blocks.FreeCount <= 2
                && _releasing.Count == 0
                && EmptiestFitting() is int victim and >= 0
                && CollectVictim(victim)
            )
            {
                Statistics.ForegroundGcVictims++;
            }

            ReleaseVictims(force: true);
            if (++attempts > _blocks.Count)
            {
                throw new FtlException(
                    $"garbage collection made no progress: {_blocks.FreeCount} free blocks, {_releasing.Count} waiting; {BlockCensus()}"
                );
            }
        }

        if (!_savingOnHoldUp)
        {
            LevelWear();
        }
    }

    /// <summary>Where the blocks are, for a message that explains why space ran out.</summary>
    private string BlockCensus()
    {
        int closedData = 0,
            fullData = 0,
            metadata = 0,
            bad = 0,
            open = 0;
        long valid = 0;
        for (int block = 0; block < _blocks.Count; block++)
        {
            bool data = _blocks.HoldsData(block);
            closedData += _blocks.StateOf(block) == BlockState.Closed && data ? 1 : 0;
            fullData +=
                _blocks.StateOf(block) == BlockState.Closed
                && data
                && _sectors.ValidIn(block) == _layout.SectorsPerBlock
                    ? 1
                    : 0;
            metadata += _blocks.UseOf(block) == BlockUse.Metadata ? 1 : 0;
            bad += _blocks.StateOf(block) == BlockState.Bad ? 1 : 0;
            open += _blocks.StateOf(block) == BlockState.Open ? 1 : 0;
            valid += data ? _sectors.ValidIn(block) : 0;
        }

        return $"{closedData} closed data blocks ({fullData} wholly valid), {open} open, {metadata} metadata, {bad} bad of {_blocks.Count}; {valid} valid sectors for {_sectors.Length} logical, {_layout.SectorsPerBlock} per block";
    }

    /// <summary>
    /// Free blocks below which a host write first waits for GC: two for the data streams, plus
    /// what the metadata may still take of its reserve (checkpoints and journal in use already
    /// hold the rest), plus the blocks held back for a save on hold-up energy until that save.
    /// </summary>
    private int ForegroundGcFloor =>
        2
        + Math.Max(0, _layout.MetadataReserveBlocks - _metadataBlocks.Count)
        + (_savingOnHoldUp ? 0 : _options.HoldUpReserveBlocks);

    /// <summary>
    /// The victim policy's choice among closed data blocks with something to reclaim, or -1.
    /// Greedy takes the fewest valid sectors; cost-benefit weighs the space gained against the
    /// cost of copying and favours blocks whose data has stayed put longest.
    /// </summary>
    private int PickVictim()
    {
        int best = -1;
        double bestScore = double.NegativeInfinity;
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (!IsCollectable(block))
            {
                continue;
            }

            double utilisation = (double)_sectors.ValidIn(block) / _layout.SectorsPerBlock;
            double score =
                _options.GcPolicy == GcVictimPolicy.Greedy
                    ? -_sectors.ValidIn(block)
                    : (1 - utilisation) * (_nextSequence - _blocks.LastWritten(block)) / (1 + utilisation);
            if (score > bestScore)
            {
                best = block;
                bestScore = score;
            }
        }

        return best;
    }

    /// <summary>
    /// The collectable block with the fewest valid sectors, if they fit in the cold stream's open block plus one free
    /// block; else -1.
    /// </summary>
    private int EmptiestFitting()
    {
        int best = -1;
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (IsCollectable(block) && (best < 0 || _sectors.ValidIn(block) < _sectors.ValidIn(best)))
            {
                best = block;
            }
        }

        (int coldBlock, int nextUnit) = _blocks.Stream(ColdStream);
        long room =
            ((coldBlock < 0 ? 0 : _layout.UnitsPerBlock - nextUnit) * (long)_layout.SectorsPerUnit) - _coldBuffer.Count;
        room += (_blocks.FreeCount - 1) * (long)_layout.SectorsPerBlock;
        return best >= 0 && _sectors.ValidIn(best) <= room ? best : -1;
    }

    private bool IsCollectable(int block) =>
        _blocks.StateOf(block) == BlockState.Closed
        && _blocks.HoldsData(block)
        && _sectors.ValidIn(block) < _layout.SectorsPerBlock
        && !_retiring.Contains(block);

    /// <summary>
    /// Moves the valid data of <paramref name="victim"/> to the cold stream; the block is released once that is
    /// durable.
    /// </summary>
    private bool CollectVictim(int victim)
    {
        if (victim < 0)
        {
            return false;
        }

        using (Enter(FtlActivity.GarbageCollection))
        {
            Evacuate(victim, becomesBad: false);
        }

        Statistics.GcVictims++;
        return true;
    }

    /// <summary>
    /// Relocates a block's valid data to the cold stream and queues the block for release: free
    /// (or marked bad) once the units holding its data are programmed and durable.
    /// </summary>
    private void Evacuate(int block, bool becomesBad)
    {
        // A block waiting for retirement is evacuated by retirement alone: collected as an
        // ordinary victim it would be released free, reused, and then marked bad under its new data.
        if (_blocks.StateOf(block) != BlockState.Closed || (!becomesBad && _retiring.Contains(block)))
        {
            Invariant.Broken(
                $"block {block} ({_blocks.StateOf(block)}{(_retiring.Contains(block) ? ", waiting for retirement" : string.Empty)}) was evacuated {(becomesBad ? "for retirement" : "as a victim")}"
            );
        }

        Relocate(block);
        _blocks.SetState(block, BlockState.Releasing);
        _releasing.Add(new Releasing(block, _coldUnitsProgrammed + (_coldBuffer.Count > 0 ? 1 : 0), becomesBad));
    }

    /// <summary>
    /// Copies every valid sector of <paramref name="block"/> into the cold buffer, programming it
    /// as it fills. A sector that cannot be read back intact is lost to the media and counted.
    /// </summary>
    private void Relocate(int block)
    {
        for (int unit = 0; unit < _layout.UnitsPerBlock; unit++)
        {
            uint first = _layout.Address(block, unit, 0);
            if (!_sectors.AnyInUnit(first))
            {
                continue;
            }

            (bool ok, _) = ReadUnit(block, unit, UnitKind.Data);
            for (int slot = 0; slot < _layout.SectorsPerUnit; slot++)
            {
                uint physical = first + (uint)slot;
                uint logical = _sectors.OwnerOf(physical);
                if (logical == SectorMap.Unmapped)
                {
                    continue;
                }

                _sectors.TakeOff(logical, physical);
                if (!ok || _heldSlots[slot] != logical)
                {
                    Statistics.SectorsLost++;
                    _sectors.Mark(logical, SectorMap.Unmapped);
                    continue;
                }

                _coldSources[_coldBuffer.Count] = block;
                _coldBuffer.Add(
                    logical,
                    _heldData.AsSpan(slot * FirmwareConfig.SectorBytes, FirmwareConfig.SectorBytes)
                );
                _sectors.Mark(logical, SectorMap.InColdBuffer);
                Statistics.SectorsRelocated++;
                if (_coldBuffer.IsFull)
                {
                    ProgramColdBuffer();
                }
            }
        }

        Invariant.Holds(_sectors.ValidIn(block) == 0, "a relocated block has no valid sectors left");
    }

    /// <summary>
    /// Frees the victims whose relocated data is durable and whose data overwritten by the host
    /// is durable too, so that erasing them can never leave a sector with no durable copy. With
    /// <paramref name="force"/>, makes that so: programs a partial cold unit, flushes, waits.
    /// </summary>
    private void ReleaseVictims(bool force)
    {
        for (int i = 0; i < _releasing.Count; )
        {
            Releasing releasing = _releasing[i];
            if (_coldUnitsProgrammed < releasing.ColdUnitsNeeded)
            {
                if (!force)
                {
                    i++;
                    continue;
                }

                ProgramColdBuffer();
            }

            if (_blocks.InvalidatedAt(releasing.Block) > _durableTicket)
            {
                if (!force)
                {
                    i++;
                    continue;
                }

                FlushCore();
            }

            if (_clock.NowNanoseconds < _latestColdCompletion)
            {
                if (!force)
                {
                    i++;
                    continue;
                }

                _clock.WaitUntil(_latestColdCompletion);
            }

            Release(releasing);
            _releasing.RemoveAt(i);
        }
    }

    private void ReleaseVictimsNeedingOnlyTime()
    {
        for (int i = 0; i < _releasing.Count; )
        {
            Releasing releasing = _releasing[i];
            if (
                _coldUnitsProgrammed >= releasing.ColdUnitsNeeded
                && _blocks.InvalidatedAt(releasing.Block) <= _durableTicket
            )
            {
                _clock.WaitUntil(_latestColdCompletion);
                Release(releasing);
                _releasing.RemoveAt(i);
            }
            else
            {
                i++;
            }
        }
    }

    private void Release(Releasing releasing)
    {
        Invariant.Holds(_sectors.ValidIn(releasing.Block) == 0, "a released block holds no valid data");
        if (releasing.BecomesBad)
        {
            MarkBad(releasing.Block);
            return;
        }

        _blocks.Free(releasing.Block, Math.Max(_clock.NowNanoseconds, Math.Max(_latestColdCompletion, _durableAt)));
    }

    /// <summary>
    /// Relocates the valid data of blocks whose program failed; they are marked bad once that is durable.
    /// </summary>
    private void RetireFailedBlocks()
    {
        // Not on hold-up energy: the save may only write the cache. The failed block's data is
        // still readable where it is, and after the cut its next program fails again.
        while (_retiring.Count > 0 && !_savingOnHoldUp)
        {
            int block = _retiring[^1];
            _retiring.RemoveAt(_retiring.Count - 1);
            using (Enter(FtlActivity.Retirement))
            {
                Evacuate(block, becomesBad: true);
            }
        }
    }

    /// <summary>
    /// Static wear levelling: when the least-worn closed data block trails the most-worn block by
    /// more than the configured spread, its (cold) data is moved off, so the block returns to the
    /// free pool where dynamic levelling hands it out first.
    /// </summary>
    private void LevelWear()
    {
        if (_allocationsSinceWearCheck < AllocationsBetweenWearChecks)
        {
            return;
        }

        _allocationsSinceWearCheck = 0;
        uint max = 0;
        int coldest = -1;
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (_blocks.StateOf(block) is BlockState.Bad or BlockState.Superblock)
            {
                continue;
            }

            max = Math.Max(max, _blocks.EraseCountOf(block));
            if (
                _blocks.StateOf(block) == BlockState.Closed
                && _blocks.HoldsData(block)
                && !_retiring.Contains(block)
                && (coldest < 0 || _blocks.EraseCountOf(block) < _blocks.EraseCountOf(coldest))
            )
            {
                coldest = block;
            }
        }

        if (coldest >= 0 && max - _blocks.EraseCountOf(coldest) > _options.WearLevelingSpread)
        {
            using (Enter(FtlActivity.WearLeveling))
            {
                Evacuate(coldest, becomesBad: false);
            }

            Statistics.WearLevelingMoves++;
        }
    }
}

/// <summary>
/// The FTL cannot go on: a broken internal promise (the reserve was not kept) or metadata it cannot write.
/// </summary>
public sealed class FtlException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FtlException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers.</summary>
    public FtlException() { }

    /// <summary>Required by the analyzers.</summary>
    public FtlException(string message, Exception innerException)
        : base(message, innerException) { }
}
