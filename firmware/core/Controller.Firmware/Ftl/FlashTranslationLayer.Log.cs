using System.Buffers.Binary;
using Controller.Firmware.Flash;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>The log: streams of open blocks, programming units, allocating and erasing blocks.</summary>
public sealed partial class FlashTranslationLayer
{
    /// <summary>Programs the host buffer into the next die's open block, padding a partial unit.</summary>
    private void ProgramHostBuffer()
    {
        int stream = _nextHostDie;
        _nextHostDie = (_nextHostDie + 1) % _nand.Geometry.Dies;
        int block = ProgramBuffer(_hostBuffer, stream, BlockUse.HostData, stream);
        Statistics.HostUnitsProgrammed++;
        Invariant.Holds(
            _blocks.StateOf(block) is BlockState.Open or BlockState.Closed,
            "host data lands in a block of the log"
        );
    }

    /// <summary>Programs the cold buffer (data relocated by GC or wear levelling) into the cold stream.</summary>
    private void ProgramColdBuffer()
    {
        int die = _nextColdDie;
        _nextColdDie = (_nextColdDie + 1) % _nand.Geometry.Dies;
        ProgramBuffer(_coldBuffer, ColdStream, BlockUse.ColdData, die);
        _coldUnitsProgrammed++;
        _latestColdCompletion = _latestCompletion;
        Statistics.ColdUnitsProgrammed++;
    }

    /// <summary>
    /// Programs a unit buffer into a stream and maps its sectors there; returns the block. A failed
    /// program retires the block (its valid data is relocated later) and the unit goes to a fresh block.
    /// </summary>
    private int ProgramBuffer(UnitBuffer buffer, int stream, BlockUse use, int preferredDie)
    {
        buffer.PadRemaining();
        while (true)
        {
            (int block, int unit) = NextUnit(stream, use, preferredDie);
            bool programmed = ProgramUnit(block, unit, UnitKind.Data, 0, buffer.Slots, buffer.Data);
            AdvanceStream(stream, abandon: !programmed);
            if (!programmed)
            {
                continue;
            }

            for (int slot = 0; slot < buffer.Count; slot++)
            {
                uint logical = buffer.Slots[slot];
                if (logical == PageMetadata.EmptySlot)
                {
                    continue;
                }

                _sectors.Place(logical, _layout.Address(block, unit, slot));
            }

            buffer.Clear();
            return block;
        }
    }

    /// <summary>Programs the pending journal records (trims, retired blocks) into the metadata stream.</summary>
    private void ProgramJournal()
    {
        using (Enter(FtlActivity.Journal))
        {
            ProgramJournalCore();
        }
    }

    private void ProgramJournalCore()
    {
        int perUnit = _layout.UnitBytes / JournalRecord.Bytes;
        for (int first = 0; first < _journal.Count; first += perUnit)
        {
            Span<byte> data = _unitData;
            data.Clear();
            int count = Math.Min(perUnit, _journal.Count - first);
            for (int i = 0; i < count; i++)
            {
                _journal[first + i].WriteTo(data.Slice(i * JournalRecord.Bytes, JournalRecord.Bytes));
            }

            ProgramMetadataUnit(UnitKind.Journal, (uint)count, data);
            Statistics.JournalUnitsProgrammed++;
        }

        _journal.Clear();
    }

    /// <summary>
    /// Programs one unit of metadata (journal or checkpoint) into the metadata stream; returns its block.
    /// </summary>
    private int ProgramMetadataUnit(UnitKind kind, uint aux, ReadOnlySpan<byte> data)
    {
        Array.Fill(_slots, PageMetadata.EmptySlot);
        while (true)
        {
            (int block, int unit) = NextUnit(MetaStream, BlockUse.Metadata, preferredDie: -1);
            bool programmed = ProgramUnit(block, unit, kind, aux, _slots, data);
            AdvanceStream(MetaStream, abandon: !programmed);
            if (programmed)
            {
                return block;
            }
        }
    }

    /// <summary>Decodes the records of a journal unit in the scratch unit buffer.</summary>
    private List<JournalRecord> DecodeJournal(uint count)
    {
        var records = new List<JournalRecord>((int)count);
        for (int i = 0; i < count && (i + 1) * JournalRecord.Bytes <= _unitData.Length; i++)
        {
            records.Add(JournalRecord.ReadFrom(_unitData.AsSpan(i * JournalRecord.Bytes, JournalRecord.Bytes)));
        }

        return records;
    }

    /// <summary>
    /// Programs the pages of one unit, each with its metadata, under one sequence number. Returns
    /// false if a page program failed. Waits first if the die already has work queued, so the
    /// firmware never runs far ahead of the flash.
    /// </summary>
    private bool ProgramUnit(
        int block,
        int unit,
        UnitKind kind,
        uint aux,
        ReadOnlySpan<uint> slots,
        ReadOnlySpan<byte> data
    )
    {
        Invariant.Holds(
            _blocks.StateOf(block) is BlockState.Open or BlockState.Superblock,
            "units are programmed only into open blocks and superblocks"
        );
        ulong sequence = _nextSequence++;
        int die = _nand.Geometry.DieOf(block);
        NandDieStatus status = _nand.GetDieStatus(die);
        if (status.QueuedOperations >= 2)
        {
            _clock.WaitUntil(status.ReadyAtNanoseconds);
        }

        RefuseIfReadOnly("program", block);
        int pageBytes = _nand.Geometry.PageBytes;
        bool ok = true;
        for (int page = 0; page < _layout.PagesPerUnit; page++)
        {
            ReadOnlySpan<byte> pageData = _layout.PagesPerUnit == 1 ? data : data.Slice(page * pageBytes, pageBytes);
            new PageMetadata(kind, (byte)page, sequence, _blocks.EraseCountOf(block), aux).Write(
                _pageSpare,
                slots,
                pageData
            );
            NandCompletion programmed = _nand.ProgramPage(_layout.PageOf(block, unit, page), pageData, _pageSpare);
            _latestCompletion = Math.Max(_latestCompletion, programmed.CompletesAtNanoseconds);
            Statistics.CountProgram(kind);
            if (!programmed.Succeeded)
            {
                Statistics.ProgramFailures++;
                ok = false;
                break;
            }
        }

        _blocks.Written(block, sequence);
        _pagesSinceCheckpoint += _layout.PagesPerUnit;
        return ok;
    }

    /// <summary>The next free unit of a stream, opening a new block for it when it has none.</summary>
    private (int Block, int Unit) NextUnit(int stream, BlockUse use, int preferredDie)
    {
        if (_blocks.Stream(stream).Block < 0)
        {
            int block = AllocateBlock(preferredDie, use);
            _blocks.SetStream(stream, block, 0);
            if (use == BlockUse.Metadata)
            {
                _metadataBlocks.Add(block);
            }
        }

        return _blocks.Stream(stream);
    }

    /// <summary>
    /// Moves a stream past the unit just programmed; closes its block when full. After a failed
    /// program the block is abandoned: closed now, its valid data relocated and the block retired later.
    /// </summary>
    private void AdvanceStream(int stream, bool abandon)
    {
        (int block, int unit) = _blocks.Stream(stream);
        if (abandon)
        {
            _blocks.SetState(block, BlockState.Closed);
            if (_blocks.UseOf(block) != BlockUse.Metadata)
            {
                _retiring.Add(block);
            }
            else
            {
                // A metadata block's contents are superseded by the next checkpoint; it is
                // retired then, like any old metadata block, and never reused.
                _journal.Add(new JournalRecord(JournalRecordKind.BadBlock, (uint)block, 1, _nextSequence++));
            }

            Statistics.GrownBadBlocks++;
            _blocks.SetStream(stream, -1, 0);
            return;
        }

        if (unit + 1 == _layout.UnitsPerBlock)
        {
            _blocks.SetState(block, BlockState.Closed);
            _blocks.SetStream(stream, -1, 0);
        }
        else
        {
            _blocks.SetStream(stream, block, unit + 1);
        }
    }

    /// <summary>
    /// Takes a free block for a stream: the least-worn free block (dynamic wear levelling) of
    /// <paramref name="preferredDie"/>, or of any die when that die has none. It is erased first
    /// if it holds old data; a block whose erase fails is retired and another is taken.
    /// </summary>
    private int AllocateBlock(int preferredDie, BlockUse use)
    {
        while (true)
        {
            int block = PickFreeBlock(preferredDie);
            if (block < 0)
            {
                block = PickFreeBlock(-1);
            }

            if (block < 0)
            {
                // Victims whose relocations only need time to complete can be released here
                // without programming anything (this may be the middle of a program).
                ReleaseVictimsNeedingOnlyTime();
                block = PickFreeBlock(-1);
            }

            if (block < 0)
            {
                int bad = _blocks.BadCount;
                throw new FtlException(
                    $"no free block is left: {bad} blocks are bad and {_releasing.Count} wait to be released, too few remain for {_sectors.Length} sectors and garbage collection"
                );
            }

            // Out of the pool at once (open from here on), erased first if it holds old data.
            _blocks.Take(block, use);
            Invariant.Holds(_sectors.ValidIn(block) == 0, "a block taken from the free pool holds no valid data");
            _allocationsSinceWearCheck++;
            _clock.WaitUntil(_blocks.FreeNotBefore(block));
            if (_blocks.NeedsErase(block))
            {
                NandCompletion erased = EraseBlock(block);
                _latestCompletion = Math.Max(_latestCompletion, erased.CompletesAtNanoseconds);
                Statistics.BlocksErased++;
                if (!erased.Succeeded)
                {
                    Statistics.EraseFailures++;
                    Statistics.GrownBadBlocks++;
                    MarkBad(block);
                    continue;
                }

                _blocks.Erased(block);
            }

            return block;
        }
    }

    private int PickFreeBlock(int die)
    {
        int blocksPerDie = _nand.Geometry.BlocksPerDie;
        int first = die < 0 ? 0 : die * blocksPerDie;
        int end = die < 0 ? _blocks.Count : first + blocksPerDie;
        int best = -1;
        for (int block = first; block < end; block++)
        {
            if (
                _blocks.StateOf(block) == BlockState.Free
                && (best < 0 || _blocks.EraseCountOf(block) < _blocks.EraseCountOf(best))
            )
            {
                best = block;
            }
        }

        return best;
    }

    /// <summary>Marks a block bad for good and journals it, so the bad-block table survives a power cut.</summary>
    private void MarkBad(int block)
    {
        _blocks.MarkBad(block);
        _journal.Add(new JournalRecord(JournalRecordKind.BadBlock, (uint)block, 1, _nextSequence++));
    }
}

/// <summary>What a journal record says.</summary>
internal enum JournalRecordKind : uint
{
    /// <summary>Sectors [First, First + Count) were trimmed.</summary>
    Trim = 1,

    /// <summary>Block First was retired.</summary>
    BadBlock = 2,
}

/// <summary>
/// A change made durable between checkpoints, ordered by its own sequence number. On NAND, a
/// journal unit holds as many as fit, each as kind (4) | first (4) | count (4) | sequence (8),
/// little-endian, in 24 bytes; the unit's metadata says how many.
/// </summary>
internal readonly record struct JournalRecord(JournalRecordKind Kind, uint First, uint Count, ulong Sequence)
{
    /// <summary>Bytes of one record in a journal unit.</summary>
    public const int Bytes = 24;

    /// <summary>Reads a record from its <see cref="Bytes"/> bytes.</summary>
    public static JournalRecord ReadFrom(ReadOnlySpan<byte> bytes) =>
        new(
            (JournalRecordKind)BinaryPrimitives.ReadUInt32LittleEndian(bytes),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[12..])
        );

    /// <summary>Writes this record into its <see cref="Bytes"/> bytes.</summary>
    public void WriteTo(Span<byte> bytes)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)Kind);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[4..], First);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[8..], Count);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[12..], Sequence);
    }
}
