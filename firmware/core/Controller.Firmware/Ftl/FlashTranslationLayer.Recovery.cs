namespace Controller.Firmware.Ftl;

/// <summary>
/// Recovery after a power cut: the newest valid checkpoint, then every unit written after it, in
/// sequence order. Which blocks to replay is read off their first unit: a block whose first unit
/// is older than the checkpoint is as the checkpoint saw it (only the blocks that were open then
/// can have grown); any other block was erased since, so the checkpoint's map entries into it are
/// dropped and whatever it holds now is replayed.
/// </summary>
public sealed partial class FlashTranslationLayer
{
    private (bool FromCheckpoint, long Replayed) Recover(
        SuperblockRecord newest,
        List<SuperblockRecord> superblocks,
        FirstUnit[] firsts
    )
    {
        _formatNonce = newest.Nonce;
        Capacity = new FtlCapacity(
            newest.GoodBlocks,
            (int)newest.DataBlocks,
            newest.DataBlocks * _layout.SectorsPerBlock,
            newest.LogicalSectors
        );
        _sectors.Reset(newest.LogicalSectors);
        // The next superblock unit goes after everything written in the newest one's block,
        // torn units included: a page is never programmed twice.
        _activeSuperblock = newest.Block == _superblocks[0] ? 0 : 1;
        _superblockNextUnit = _superblockUnitsWritten[_activeSuperblock];
        ulong highest = superblocks.Max(s => Math.Max(s.Sequence, s.Pointer?.LastPartSequence ?? 0));
        highest = Math.Max(highest, firsts.Max(f => f.Sequence));

        (Checkpoint? checkpoint, CheckpointPointer? pointer) = LoadNewestCheckpoint(superblocks);
        var keepAsMetadata = new HashSet<int>(pointer?.Blocks ?? []);
        var badBlocks = new HashSet<int>();
        List<(int Block, int FromUnit)> scans = PlanReplay(checkpoint, firsts, badBlocks);
        var events = new List<ReplayEvent>();
        foreach ((int block, int fromUnit) in scans)
        {
            highest = Math.Max(highest, ScanBlock(block, fromUnit, checkpoint?.Sequence ?? 0, events, keepAsMetadata));
        }

        events.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        foreach (ReplayEvent replay in events)
        {
            Apply(replay, badBlocks);
        }

        RebuildFromMap(firsts, badBlocks, keepAsMetadata);
        _nextSequence = Math.Max(highest, checkpoint?.Sequence ?? 0) + 1;
        Statistics.Recoveries++;
        return (checkpoint is not null, events.Count);
    }

    /// <summary>The newest checkpoint any superblock unit points at that reads back whole, or none.</summary>
    private (Checkpoint? Checkpoint, CheckpointPointer? Pointer) LoadNewestCheckpoint(
        List<SuperblockRecord> superblocks
    )
    {
        foreach (SuperblockRecord record in superblocks)
        {
            if (record.Pointer is { } pointer && LoadCheckpoint(pointer) is { } checkpoint)
            {
                return (checkpoint, pointer);
            }
        }

        Statistics.FullScans++;
        return (null, null);
    }

    private Checkpoint? LoadCheckpoint(CheckpointPointer pointer)
    {
        if (pointer.Parts <= 0 || pointer.Parts > _nand.Geometry.Blocks * _layout.UnitsPerBlock)
        {
            return null;
        }

        var parts = new byte[]?[pointer.Parts];
        foreach (int block in pointer.Blocks.Where(b => (uint)b < (uint)_blocks.Count))
        {
            for (int unit = 0; unit < _layout.UnitsPerBlock; unit++)
            {
                UnitRead read = ReadUnitAny(block, unit);
                if (read.Class == FirstUnitClass.Erased)
                {
                    break;
                }

                PageMetadata metadata = read.Metadata;
                if (
                    read.Class == FirstUnitClass.Ours
                    && metadata.Kind == UnitKind.Checkpoint
                    && metadata.Sequence >= pointer.FirstPartSequence
                    && metadata.Sequence <= pointer.LastPartSequence
                    && metadata.Aux < parts.Length
                )
                {
                    parts[metadata.Aux] = _unitData.ToArray();
                }
            }
        }

        if (parts.Any(p => p is null))
        {
            return null;
        }

        long total = CheckpointCodec.TotalBytes(parts[0]);
        if (total < 0 || total > (long)parts.Length * _layout.UnitBytes)
        {
            return null;
        }

        byte[] bytes = new byte[total];
        for (int part = 0; part < parts.Length; part++)
        {
            int offset = part * _layout.UnitBytes;
            parts[part].AsSpan(0, (int)Math.Min(_layout.UnitBytes, total - offset)).CopyTo(bytes.AsSpan(offset));
        }

        Checkpoint? checkpoint = CheckpointCodec.Decode(bytes, _sectors.Length, _blocks.Count, _blocks.StreamCount);
        return checkpoint is not null && checkpoint.Sequence == pointer.Sequence ? checkpoint : null;
    }

    /// <summary>
    /// Starts from the checkpoint (or from nothing) and lists the blocks to replay, with the unit
    /// to start from. Map entries into blocks erased since the checkpoint are dropped here.
    /// </summary>
    private List<(int Block, int FromUnit)> PlanReplay(
        Checkpoint? checkpoint,
        FirstUnit[] firsts,
        HashSet<int> badBlocks
    )
    {
        var scans = new List<(int, int)>();
        var dropped = new bool[_blocks.Count];
        bool anyDropped = false;
        if (checkpoint is not null)
        {
            _sectors.LoadEntries(checkpoint.Map);
        }

        for (int block = 0; block < _blocks.Count; block++)
        {
            if (checkpoint is not null)
            {
                _blocks.SawEraseCount(block, checkpoint.EraseCounts[block]);
                _blocks.SetUse(block, checkpoint.Uses[block]);
                if (checkpoint.States[block] == BlockState.Bad)
                {
                    badBlocks.Add(block);
                }
            }

            if (
                firsts[block].Class == FirstUnitClass.FactoryBad
                || block == _superblocks[0]
                || block == _superblocks[1]
                || badBlocks.Contains(block)
            )
            {
                continue;
            }

            FirstUnit first = firsts[block];
            ulong covered = checkpoint?.Sequence ?? 0;
            if (checkpoint is not null && first.Class == FirstUnitClass.Ours && first.Sequence <= covered)
            {
                int open = Array.FindIndex(checkpoint.Streams, s => s.Block == block);
                if (open >= 0)
                {
                    scans.Add((block, checkpoint.Streams[open].NextUnit));
                }

                continue;
            }

            dropped[block] = true;
            anyDropped = true;
            if (first.Class == FirstUnitClass.Ours)
            {
                scans.Add((block, 0));
            }
        }

        if (anyDropped)
        {
            _sectors.Drop(dropped);
        }

        return scans;
    }

    /// <summary>
    /// Reads the units of a block from <paramref name="fromUnit"/> on and collects what was written after the
    /// checkpoint.
    /// </summary>
    private ulong ScanBlock(
        int block,
        int fromUnit,
        ulong covered,
        List<ReplayEvent> events,
        HashSet<int> keepAsMetadata
    )
    {
        ulong highest = 0;
        for (int unit = fromUnit; unit < _layout.UnitsPerBlock; unit++)
        {
            UnitRead read = ReadUnitAny(block, unit);
            if (read.Class == FirstUnitClass.Erased)
            {
                break;
            }

            if (read.Class != FirstUnitClass.Ours)
            {
                continue;
            }

            PageMetadata metadata = read.Metadata;
            highest = Math.Max(highest, metadata.Sequence);
            _blocks.SawEraseCount(block, metadata.EraseCount);
            _blocks.SawSequence(block, metadata.Sequence);
            if (metadata.Sequence <= covered)
            {
                continue;
            }

            switch (metadata.Kind)
            {
                case UnitKind.Data:
                    _blocks.SetUse(block, _blocks.HoldsData(block) ? _blocks.UseOf(block) : BlockUse.HostData);
                    events.Add(new ReplayEvent(metadata.Sequence, block, unit, (uint[])_slots.Clone(), null));
                    break;
                case UnitKind.Journal:
                    keepAsMetadata.Add(block);
                    events.AddRange(
                        DecodeJournal(metadata.Aux)
                            .Where(r => r.Sequence > covered)
                            .Select(r => new ReplayEvent(r.Sequence, block, unit, null, r))
                    );
                    break;
                case UnitKind.Checkpoint:
                    keepAsMetadata.Add(block);
                    break;
                default:
                    break;
            }
        }

        return highest;
    }

    private void Apply(ReplayEvent replay, HashSet<int> badBlocks)
    {
        if (replay.Slots is { } slots)
        {
            for (int slot = 0; slot < slots.Length; slot++)
            {
                if (slots[slot] < _sectors.Length)
                {
                    _sectors.Replay(slots[slot], _layout.Address(replay.Block, replay.Unit, slot));
                }
            }

            return;
        }

        JournalRecord record = replay.Record!.Value;
        if (record.Kind == JournalRecordKind.Trim)
        {
            long end = Math.Min((long)record.First + record.Count, _sectors.Length);
            for (long sector = record.First; sector < end; sector++)
            {
                _sectors.Replay(sector, SectorMap.Unmapped);
            }
        }
        else if (record.Kind == JournalRecordKind.BadBlock && record.First < _blocks.Count)
        {
            badBlocks.Add((int)record.First);
        }
    }

    /// <summary>Rebuilds the reverse map, the valid counts and the block states from the recovered map.</summary>
    private void RebuildFromMap(FirstUnit[] firsts, HashSet<int> badBlocks, HashSet<int> keepAsMetadata)
    {
        // Never expected: a map entry into a retired block, or two sectors on one physical
        // sector. The sector is lost rather than the map left inconsistent.
        Statistics.SectorsLost += _sectors.Rebuild(badBlocks);
        for (int block = 0; block < _blocks.Count; block++)
        {
            BlockState state = ClassifyRecovered(block, firsts[block], badBlocks, keepAsMetadata);
            if (state == BlockState.Free)
            {
                _blocks.Found(block, needsErase: firsts[block].Class != FirstUnitClass.Erased);
            }
            else
            {
                _blocks.SetState(block, state);
            }

            if (_blocks.StateOf(block) == BlockState.Closed && _blocks.UseOf(block) == BlockUse.Metadata)
            {
                _metadataBlocks.Add(block);
            }
        }

        _blocks.CloseAllStreams();
    }

    private BlockState ClassifyRecovered(
        int block,
        FirstUnit first,
        HashSet<int> badBlocks,
        HashSet<int> keepAsMetadata
    )
    {
        if (first.Class == FirstUnitClass.FactoryBad || badBlocks.Contains(block))
        {
            _blocks.SetUse(block, BlockUse.None);
            return BlockState.Bad;
        }

        if (block == _superblocks[0] || block == _superblocks[1])
        {
            return BlockState.Superblock;
        }

        if (_sectors.ValidIn(block) > 0)
        {
            _blocks.SetUse(block, _blocks.HoldsData(block) ? _blocks.UseOf(block) : BlockUse.HostData);
            return BlockState.Closed;
        }

        if (keepAsMetadata.Contains(block))
        {
            _blocks.SetUse(block, BlockUse.Metadata);
            return BlockState.Closed;
        }

        _blocks.SetUse(block, BlockUse.None);
        return BlockState.Free;
    }

    private sealed record ReplayEvent(ulong Sequence, int Block, int Unit, uint[]? Slots, JournalRecord? Record);
}
