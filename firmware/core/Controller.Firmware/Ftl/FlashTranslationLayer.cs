using Controller.Common;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Invariants;
using Controller.Firmware.Loop;

namespace Controller.Firmware.Ftl;

/// <summary>
/// The flash translation layer: a map from 4 KiB logical sectors to physical sectors, written as
/// a log into open blocks striped across dies, with garbage collection, wear levelling, bad-block
/// retirement, a journal for trims, checkpoints and power-loss recovery.
/// <para>
/// Writes gather in a DRAM unit buffer and are programmed a unit at a time; they are durable once
/// <see cref="Flush"/> returns. A trim unmaps at once and is durable the same way, through a
/// journal record. Everything runs on the caller's thread; where the FTL must wait for NAND (a
/// flush, a block whose relocated data must be durable before it is erased) it waits on the clock.
/// </para>
/// </summary>
public sealed partial class FlashTranslationLayer
{
    private readonly INandDevice _nand;
    private readonly IClock _clock;
    private readonly FtlOptions _options;
    private readonly FtlLayout _layout;
    private readonly byte[] _pageSpare;
    private readonly uint[] _slots;
    private readonly byte[] _unitData;

    // The data unit last read (its data and slots), kept apart from the scratch buffers, and which
    // unit it is (-1: none). A unit does not change until its block is erased, so sector after
    // sector of one unit is one NAND read, as a controller keeps the page it read in its buffer.
    private readonly byte[] _heldData;
    private readonly uint[] _heldSlots;
    private int _heldBlock = -1;
    private int _heldUnit = -1;
    private readonly SectorMap _sectors;
    private readonly BlockTable _blocks;

    /// <summary>
    /// The instant the last flush's programs were all complete (<see cref="_durableTicket"/> is durable from then).
    /// </summary>
    private long _durableAt;
    private readonly UnitBuffer _hostBuffer;
    private readonly UnitBuffer _coldBuffer;
    private readonly int[] _coldSources;
    private readonly List<JournalRecord> _journal = [];
    private readonly List<Releasing> _releasing = [];
    private readonly List<int> _retiring = [];
    private readonly List<int> _metadataBlocks = [];
    private ulong _nextSequence = 1;
    private long _writeTicket;
    private long _durableTicket;
    private long _latestCompletion;
    private long _latestColdCompletion;
    private long _coldUnitsProgrammed;
    private int _nextHostDie;
    private int _nextColdDie;
    private long _pagesSinceCheckpoint;
    private int _allocationsSinceWearCheck;
    private bool _savingOnHoldUp;

    private FlashTranslationLayer(INandDevice nand, IClock clock, FtlOptions options)
    {
        _nand = nand;
        _clock = clock;
        _options = options;
        _layout = new FtlLayout(nand.Geometry);
        NandGeometry geometry = nand.Geometry;
        _pageSpare = new byte[geometry.SpareBytes];
        _slots = new uint[_layout.SectorsPerUnit];
        _unitData = new byte[_layout.UnitBytes];
        _heldSlots = new uint[_layout.SectorsPerUnit];
        _heldData = new byte[_layout.UnitBytes];
        _sectors = new SectorMap(_layout, geometry.Blocks);
        _blocks = new BlockTable(geometry.Blocks, geometry.Dies + 2);
        _hostBuffer = new UnitBuffer(_layout.SectorsPerUnit);
        _coldBuffer = new UnitBuffer(_layout.SectorsPerUnit);
        _coldSources = new int[_layout.SectorsPerUnit];
        Capacity = new FtlCapacity(0, 0, 0, 0);
    }

    /// <summary>How the NAND is carved into units and sectors.</summary>
    public FtlLayout Layout => _layout;

    /// <summary>The user capacity and how it was counted.</summary>
    public FtlCapacity Capacity { get; private set; }

    /// <summary>Logical sectors the host can address.</summary>
    public long LogicalSectors => _sectors.Length;

    /// <summary>Counts of what the FTL has done.</summary>
    public FtlStatistics Statistics { get; } = new();

    /// <summary>Erased or erasable blocks ready to be written.</summary>
    public int FreeBlocks => _blocks.FreeCount;

    /// <summary>Blocks retired as bad (factory-marked or grown).</summary>
    public int BadBlocks => _blocks.BadCount;

    /// <summary>
    /// Logical sectors that hold data (not holes). Counts the whole map: for reports, not for the I/O path.
    /// </summary>
    public long MappedSectors => _sectors.CountMapped();

    /// <summary>The least, greatest and mean erase count of the blocks that are not bad.</summary>
    public (uint Min, uint Max, double Mean) EraseCountSpread()
    {
        uint min = uint.MaxValue,
            max = 0;
        double sum = 0;
        int count = 0;
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (_blocks.StateOf(block) != BlockState.Bad)
            {
                min = Math.Min(min, _blocks.EraseCountOf(block));
                max = Math.Max(max, _blocks.EraseCountOf(block));
                sum += _blocks.EraseCountOf(block);
                count++;
            }
        }

        return count == 0 ? (0, 0, 0) : (min, max, sum / count);
    }

    /// <summary>What the FTL is doing right now (read by tools that cut the power mid-operation).</summary>
    public FtlActivity Activity { get; private set; } = FtlActivity.Recovery;

    /// <summary>What the mount found and did.</summary>
    public MountReport LastMount { get; private set; } = new(false, false, 0, 0);

    /// <summary>
    /// The power is failing and the hold-up energy powers a save: from now on the free blocks held
    /// back for it are used, garbage collection only runs if the save could not otherwise go on,
    /// and no checkpoint is taken (recovery replays the log the save writes).
    /// </summary>
    public void BeginPowerFailSave() => _savingOnHoldUp = true;

    /// <summary>
    /// Sets <see cref="Activity"/> until the returned scope is disposed, which restores the one before.
    /// </summary>
    private ActivityScope Enter(FtlActivity activity)
    {
        var scope = new ActivityScope(this, Activity);
        Activity = activity;
        return scope;
    }

    private int ColdStream => _nand.Geometry.Dies;

    private int MetaStream => _nand.Geometry.Dies + 1;

    /// <summary>True when <paramref name="sector"/> holds data (it is not a hole).</summary>
    public bool IsMapped(long sector)
    {
        CheckRange(sector, 1);
        return _sectors[sector] != SectorMap.Unmapped;
    }

    /// <summary>
    /// Reads one sector. A hole reads as zeros without a NAND read; a sector still in a unit
    /// buffer is copied from DRAM.
    /// </summary>
    public FtlReadResult Read(long sector, Span<byte> destination)
    {
        CheckRange(sector, 1);
        CheckSectorBuffer(destination.Length);
        uint physical = _sectors[sector];
        switch (physical)
        {
            case SectorMap.Unmapped:
                destination.Clear();
                return new FtlReadResult(true, _clock.NowNanoseconds);
            case SectorMap.InHostBuffer:
                _hostBuffer.Sector(_hostBuffer.Find((uint)sector)).CopyTo(destination);
                return new FtlReadResult(true, _clock.NowNanoseconds);
            case SectorMap.InColdBuffer:
                _coldBuffer.Sector(_coldBuffer.Find((uint)sector)).CopyTo(destination);
                return new FtlReadResult(true, _clock.NowNanoseconds);
            default:
                Statistics.HostSectorsReadFromNand++;
                return ReadPhysicalSector(physical, (uint)sector, destination);
        }
    }

    /// <summary>
    /// Writes one sector. It is visible to reads at once and durable after the next <see cref="Flush"/>.
    /// </summary>
    public void Write(long sector, ReadOnlySpan<byte> data)
    {
        CheckRange(sector, 1);
        CheckSectorBuffer(data.Length);
        MakeRoom();
        uint logical = (uint)sector;
        _writeTicket++;
        Statistics.HostSectorsWritten++;
        uint old = _sectors[logical];
        if (old == SectorMap.InHostBuffer)
        {
            data.CopyTo(_hostBuffer.Sector(_hostBuffer.Find(logical)));
            return;
        }

        Unlink(logical, old);
        _hostBuffer.Add(logical, data);
        _sectors.Mark(logical, SectorMap.InHostBuffer);
        if (_hostBuffer.IsFull)
        {
            ProgramHostBuffer();
        }

        CheckpointIfDue();
    }

    /// <summary>
    /// Trims (unmaps) <paramref name="count"/> sectors from <paramref name="sector"/> on: they read
    /// as zeros at once, their flash becomes garbage, and a journal record makes the trim durable
    /// with the next <see cref="Flush"/>.
    /// </summary>
    public void Trim(long sector, long count)
    {
        CheckRange(sector, count);
        bool anyMapped = false;
        for (long i = sector; i < sector + count; i++)
        {
            uint old = _sectors[i];
            if (old == SectorMap.Unmapped)
            {
                continue;
            }

            if (!anyMapped)
            {
                // A trim, like a write, may only let GC erase the old copies once it is durable:
                // until its journal record is, a cut brings the sectors back as they were.
                _writeTicket++;
            }

            anyMapped = true;
            Unlink((uint)i, old);
            _sectors.Mark((uint)i, SectorMap.Unmapped);
        }

        if (anyMapped)
        {
            _journal.Add(new JournalRecord(JournalRecordKind.Trim, (uint)sector, (uint)count, _nextSequence++));
            Statistics.SectorsTrimmed += count;
        }
    }

    /// <summary>Returns once every write and trim made before it is on NAND, complete and durable.</summary>
    public void Flush()
    {
        FlushCore();
        Statistics.Flushes++;
        ReleaseVictims(force: false);
        CheckpointIfDue();
    }

    private void FlushCore()
    {
        if (_hostBuffer.Count > 0)
        {
            ProgramHostBuffer();
        }

        if (_journal.Count > 0)
        {
            ProgramJournal();
        }

        _clock.WaitUntil(_latestCompletion);

        _durableTicket = _writeTicket;
        _durableAt = Math.Max(_durableAt, _clock.NowNanoseconds);
    }

    /// <summary>The instant every die has finished the operations issued to it so far.</summary>
    public long FlashIdleAtNanoseconds
    {
        get
        {
            long idle = 0;
            for (int die = 0; die < _nand.Geometry.Dies; die++)
            {
                idle = Math.Max(idle, _nand.GetDieStatus(die).ReadyAtNanoseconds);
            }

            return idle;
        }
    }

    /// <summary>
    /// Work for idle time: retire failed blocks, collect garbage below the background watermark,
    /// level wear, take a checkpoint when one is due. Returns true if it did anything.
    /// </summary>
    public bool DoBackgroundWork()
    {
        int before = _blocks.FreeCount;
        ulong sequence = _nextSequence;
        RetireFailedBlocks();
        ReleaseVictims(force: false);
        // Victims waiting for release count as free already (they only wait for their copies and
        // the host's overwrites to be durable); collecting more meanwhile would drain the pool
        // into the cold stream.
        if (
            _blocks.FreeCount > 2
            && _blocks.FreeCount + _releasing.Count(r => !r.BecomesBad) < ForegroundGcFloor + _nand.Geometry.Dies
        )
        {
            CollectVictim(PickVictim());
        }
        else
        {
            LevelWear();
        }

        CheckpointIfDue();
        return _blocks.FreeCount != before || _nextSequence != sequence;
    }

    /// <summary>
    /// Null while the good blocks left still give the spare that open blocks, GC and the
    /// power-fail reserve need; otherwise why not. Grown bad blocks come out of the spare, and
    /// once they have used it up the device is at the end of its life: writes fail with no space,
    /// and everything written before stays readable.
    /// </summary>
    public string? WornOut()
    {
        int bad = _blocks.BadCount;
        return
            Capacity.WithGoodBlocks(_layout, _blocks.Count - bad).Problem(_layout, _options.HoldUpReserveBlocks)
                is { } problem
            ? $"{bad} bad blocks ({Statistics.GrownBadBlocks} grown since power-on) have used up the spare: {problem}"
            : null;
    }

    /// <summary>
    /// The erase count of every good block that holds data or metadata (as <see cref="Wear"/> counts them), in block
    /// order.
    /// </summary>
    public uint[] EraseCounts()
    {
        var counts = new List<uint>(_blocks.Count);
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (_blocks.StateOf(block) is not (BlockState.Bad or BlockState.Superblock))
            {
                counts.Add(_blocks.EraseCountOf(block));
            }
        }

        return [.. counts];
    }

    /// <summary>
    /// Minimum, mean and maximum erase counts over the good blocks that hold data and metadata
    /// (the two superblock blocks, erased once per block's worth of superblock writes, are left out).
    /// </summary>
    public WearReport Wear()
    {
        uint min = uint.MaxValue;
        uint max = 0;
        double total = 0;
        int blocks = 0;
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (_blocks.StateOf(block) is BlockState.Bad or BlockState.Superblock)
            {
                continue;
            }

            min = Math.Min(min, _blocks.EraseCountOf(block));
            max = Math.Max(max, _blocks.EraseCountOf(block));
            total += _blocks.EraseCountOf(block);
            blocks++;
        }

        return new WearReport(blocks == 0 ? 0 : min, blocks == 0 ? 0 : total / blocks, max, _blocks.BadCount);
    }

    /// <summary>
    /// Forgets a sector's previous place: its physical copy becomes garbage, or its buffered copy
    /// is dropped. A host write or trim over a physical copy (or over a copy GC holds for
    /// relocation) marks the block, so it is not erased before that command is durable: a power
    /// cut before then brings the sector back to this copy, which must still be there.
    /// </summary>
    private void Unlink(uint logical, uint old)
    {
        switch (old)
        {
            case SectorMap.Unmapped:
                return;
            case SectorMap.InHostBuffer:
                _hostBuffer.Remove(logical);
                return;
            case SectorMap.InColdBuffer:
                int slot = _coldBuffer.Find(logical);
                _blocks.Invalidated(_coldSources[slot], _writeTicket);
                _coldBuffer.Remove(logical);
                return;
            default:
                _blocks.Invalidated(_sectors.TakeOff(logical, old), _writeTicket);
                return;
        }
    }

    private FtlReadResult ReadPhysicalSector(uint physical, uint logical, Span<byte> destination)
    {
        int block = _layout.BlockOf(physical);
        int unit = _layout.UnitOf(physical);
        int slot = _layout.SlotOf(physical);
        (bool ok, long completes) = ReadUnit(block, unit, UnitKind.Data);
        if (!ok || _heldSlots[slot] != logical)
        {
            Statistics.UnreadableSectors++;
            destination.Clear();
            return new FtlReadResult(false, completes);
        }

        _heldData.AsSpan(slot * FirmwareConfig.SectorBytes, FirmwareConfig.SectorBytes).CopyTo(destination);
        return new FtlReadResult(true, completes);
    }

    /// <summary>
    /// Reads a whole data unit into the held unit buffer and its slots (at once if it is held already), and
    /// checks every page's metadata. Returns false if a page is unreadable, damaged or of another kind.
    /// </summary>
    private (bool Ok, long CompletesAt) ReadUnit(int block, int unit, UnitKind kind)
    {
        long completes = _clock.NowNanoseconds;
        if (kind == UnitKind.Data && block == _heldBlock && unit == _heldUnit)
        {
            return (true, completes);
        }

        _heldBlock = -1;
        ulong sequence = 0;
        for (int page = 0; page < _layout.PagesPerUnit; page++)
        {
            Span<byte> data =
                _layout.PagesPerUnit == 1
                    ? _heldData
                    : _heldData.AsSpan(page * _nand.Geometry.PageBytes, _nand.Geometry.PageBytes);
            NandCompletion read = _nand.ReadPage(_layout.PageOf(block, unit, page), data, _pageSpare);
            Statistics.NandPagesRead++;
            completes = Math.Max(completes, read.CompletesAtNanoseconds);
            if (
                read.Status == NandStatus.Uncorrectable
                || !PageMetadata.TryRead(_pageSpare, data, _heldSlots, out PageMetadata metadata)
                || metadata.Kind != kind
                || metadata.PageInUnit != page
                || (page > 0 && metadata.Sequence != sequence)
            )
            {
                return (false, completes);
            }

            sequence = metadata.Sequence;
        }

        if (kind == UnitKind.Data)
        {
            (_heldBlock, _heldUnit) = (block, unit);
        }

        return (true, completes);
    }

    /// <summary>Erases <paramref name="block"/>; a unit of it held from an earlier read is held no longer.</summary>
    private NandCompletion EraseBlock(int block)
    {
        if (block == _heldBlock)
        {
            _heldBlock = -1;
        }

        RefuseIfReadOnly("erase", block);
        return _nand.EraseBlock(block);
    }

    /// <summary>
    /// A read-only mount changes nothing: a program or erase reaching here is a fault of the firmware.
    /// </summary>
    private void RefuseIfReadOnly(string operation, int block)
    {
        if (_options.ReadOnly)
        {
            throw new InvalidOperationException(
                $"the FTL is mounted read-only, and was asked to {operation} block {block}"
            );
        }
    }

    private void CheckRange(long sector, long count)
    {
        if (sector < 0 || count < 0 || sector + count > _sectors.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(sector),
                sector,
                $"sectors {sector}..{sector + count - 1} are outside the device's {_sectors.Length} sectors"
            );
        }
    }

    private static void CheckSectorBuffer(int length)
    {
        if (length != FirmwareConfig.SectorBytes)
        {
            throw new ArgumentException($"a sector buffer is {FirmwareConfig.SectorBytes} bytes, not {length}");
        }
    }

    /// <summary>Restores the activity before an <see cref="Enter"/> when disposed.</summary>
    private readonly ref struct ActivityScope(FlashTranslationLayer ftl, FtlActivity previous)
    {
        public void Dispose() => ftl.Activity = previous;
    }

    private readonly record struct Releasing(int Block, long ColdUnitsNeeded, bool BecomesBad);
}

/// <summary>The outcome of a sector read.</summary>
/// <param name="Ok">False when the NAND could not return the sector intact (an uncorrectable read or a damaged
/// page).</param>
/// <param name="CompletesAtNanoseconds">When the data is in the caller's buffer.</param>
public readonly record struct FtlReadResult(bool Ok, long CompletesAtNanoseconds);

/// <summary>Erase counts over the good blocks, and how many blocks are bad.</summary>
public readonly record struct WearReport(uint MinErases, double MeanErases, uint MaxErases, int BadBlocks);

/// <summary>What mounting found and did.</summary>
/// <param name="Formatted">True when the NAND was blank and has just been formatted.</param>
/// <param name="FromCheckpoint">True when recovery started from a valid checkpoint (false: a full scan, or a
/// format).</param>
/// <param name="RecoveryPageReads">NAND page reads recovery made.</param>
/// <param name="ReplayedUnits">Units written after the checkpoint that recovery replayed.</param>
public sealed record MountReport(bool Formatted, bool FromCheckpoint, long RecoveryPageReads, long ReplayedUnits);
