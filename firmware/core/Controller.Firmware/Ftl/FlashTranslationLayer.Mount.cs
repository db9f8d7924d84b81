using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Firmware.Ftl;

/// <summary>Format on first boot, and mount with recovery otherwise.</summary>
public sealed partial class FlashTranslationLayer
{
    /// <summary>
    /// Mounts the FTL on <paramref name="nand"/>: formats a blank NAND, recovers a formatted one
    /// (the newest valid checkpoint plus everything written after it, or a full scan when no
    /// checkpoint is valid), and refuses a NAND that holds something else.
    /// </summary>
    /// <exception cref="FtlMountException">The NAND holds data that is not this FTL's, or was formatted for another
    /// geometry.</exception>
    public static FlashTranslationLayer Mount(INandDevice nand, IClock clock, Prng prng, FtlOptions options)
    {
        ArgumentNullException.ThrowIfNull(nand);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(prng);
        ArgumentNullException.ThrowIfNull(options);
        var ftl = new FlashTranslationLayer(nand, clock, options);
        ftl.MountOrFormat(prng);
        ftl.Activity = FtlActivity.Host;
        return ftl;
    }

    private void MountOrFormat(Prng prng)
    {
        long readsBefore = Statistics.NandPagesRead;
        FirstUnit[] firsts = ReadFirstUnits();
        int[] good = [.. Enumerable.Range(0, firsts.Length).Where(b => firsts[b].Class != FirstUnitClass.FactoryBad)];
        if (good.Length < FtlLayout.SuperblockBlocks)
        {
            throw new FtlMountException(
                $"the NAND has {good.Length} good blocks; the FTL needs more than {FtlLayout.SuperblockBlocks}"
            );
        }

        _superblocks[0] = good[0];
        _superblocks[1] = good[1];
        List<SuperblockRecord> superblocks = ReadSuperblocks();
        if (superblocks.Count == 0)
        {
            RefuseUnlessBlank(firsts);
            if (_options.ReadOnly)
            {
                throw new FtlMountException(
                    "the NAND is blank, and a read-only mount cannot format it; serve it once without --read-only first"
                );
            }

            Format(prng, good.Length, firsts);
            LastMount = new MountReport(true, false, Statistics.NandPagesRead - readsBefore, 0);
            return;
        }

        SuperblockRecord newest = superblocks[0];
        if (!newest.GeometryMatches)
        {
            throw new FtlMountException(
                $"the NAND was formatted for a geometry of {newest.Geometry} (channels, dies per channel, blocks per die, pages per block, page and spare bytes); refusing to mount it as another"
            );
        }

        (bool fromCheckpoint, long replayed) = Recover(newest, superblocks, firsts);
        LastMount = new MountReport(false, fromCheckpoint, Statistics.NandPagesRead - readsBefore, replayed);
        if (!_options.ReadOnly)
        {
            TakeCheckpoint();
        }
    }

    /// <summary>
    /// What the first unit of every block says: factory bad, erased, the FTL's (with its sequence), damaged, or
    /// foreign.
    /// </summary>
    private FirstUnit[] ReadFirstUnits()
    {
        var firsts = new FirstUnit[_nand.Geometry.Blocks];
        for (int block = 0; block < firsts.Length; block++)
        {
            firsts[block] = ReadFirstUnit(block);
        }

        return firsts;
    }

    private FirstUnit ReadFirstUnit(int block)
    {
        Span<byte> data = _layout.PagesPerUnit == 1 ? _unitData : _unitData.AsSpan(0, _nand.Geometry.PageBytes);
        NandCompletion read = _nand.ReadPage(new PageAddress(block, 0), data, _pageSpare);
        Statistics.NandPagesRead++;
        _clock.WaitUntil(read.CompletesAtNanoseconds);
        if (read.Status != NandStatus.Uncorrectable && _pageSpare[0] != 0xFF)
        {
            return new FirstUnit(FirstUnitClass.FactoryBad, 0);
        }

        if (read.Succeeded && !data.ContainsAnyExcept((byte)0xFF) && !_pageSpare.AsSpan().ContainsAnyExcept((byte)0xFF))
        {
            return new FirstUnit(FirstUnitClass.Erased, 0);
        }

        if (read.Succeeded && PageMetadata.TryRead(_pageSpare, data, _slots, out PageMetadata metadata))
        {
            _blocks.SawEraseCount(block, metadata.EraseCount);
            return new FirstUnit(FirstUnitClass.Ours, metadata.Sequence);
        }

        return new FirstUnit(
            read.Status == NandStatus.Uncorrectable || PageMetadata.HasMagic(_pageSpare)
                ? FirstUnitClass.Damaged
                : FirstUnitClass.Foreign,
            0
        );
    }

    /// <summary>
    /// A NAND without a valid superblock is formatted only if it is blank; the two superblock
    /// blocks may hold the damaged remains of a format a power cut interrupted.
    /// </summary>
    private void RefuseUnlessBlank(FirstUnit[] firsts)
    {
        for (int block = 0; block < firsts.Length; block++)
        {
            bool superblock = block == _superblocks[0] || block == _superblocks[1];
            switch (firsts[block].Class)
            {
                case FirstUnitClass.Foreign when !superblock:
                    throw new FtlMountException(
                        $"the NAND holds data that is not this FTL's (block {block} page 0); refusing to format over it"
                    );
                case FirstUnitClass.Ours when !superblock:
                case FirstUnitClass.Damaged when !superblock:
                    throw new FtlMountException(
                        $"the NAND holds FTL data (block {block}) but no valid superblock; its metadata is lost, refusing to format over it"
                    );
                default:
                    break;
            }
        }
    }

    private void Format(Prng prng, int goodBlocks, FirstUnit[] firsts)
    {
        Capacity = FtlCapacity.Count(_layout, goodBlocks, _options.SpareFactor);
        string? problem = Capacity.Problem(_layout, _options.HoldUpReserveBlocks);
        if (problem is not null)
        {
            throw new FtlMountException($"ftl.spareFactor {_options.SpareFactor}: {problem}");
        }

        _sectors.Reset(Capacity.LogicalSectors);
        _formatNonce = prng.NextUInt64();
        for (int block = 0; block < _blocks.Count; block++)
        {
            if (firsts[block].Class == FirstUnitClass.FactoryBad)
            {
                _blocks.SetState(block, BlockState.Bad);
            }
            else if (block == _superblocks[0] || block == _superblocks[1])
            {
                _blocks.SetState(block, BlockState.Superblock);
            }
            else
            {
                // A block whose first unit reads erased needs no erase before its first program (a
                // chip fresh from the factory, or blocks never written): pages are programmed in
                // order, and a torn erase leaves its pages unreadable, not erased. Recovery trusts
                // the same reading for its free blocks.
                _blocks.Found(block, needsErase: firsts[block].Class != FirstUnitClass.Erased);
            }
        }

        // Erase the superblock blocks, then write the format record before anything else, so a
        // power cut from here on finds a formatted (if empty) device.
        EraseSuperblock(0);
        EraseSuperblock(1);
        _activeSuperblock = 0;
        _superblockNextUnit = 0;
        WriteSuperblock(null);
        _clock.WaitUntil(_latestCompletion);
        Statistics.Formats++;
        TakeCheckpoint();
    }

    /// <summary>
    /// The valid superblock units of both superblock blocks, newest first. Also notes how many
    /// units of each block are written, valid or not: the next superblock goes after them all.
    /// </summary>
    private List<SuperblockRecord> ReadSuperblocks()
    {
        var records = new List<SuperblockRecord>();
        for (int index = 0; index < _superblocks.Length; index++)
        {
            int block = _superblocks[index];
            _superblockUnitsWritten[index] = 0;
            for (int unit = 0; unit < _layout.UnitsPerBlock; unit++)
            {
                UnitRead read = ReadUnitAny(block, unit);
                if (read.Class == FirstUnitClass.Erased)
                {
                    break;
                }

                _superblockUnitsWritten[index] = unit + 1;

                if (
                    read.Class == FirstUnitClass.Ours
                    && read.Metadata.Kind == UnitKind.Superblock
                    && DecodeSuperblock(_unitData, read.Metadata.Sequence, block, unit) is { } record
                )
                {
                    records.Add(record);
                }
            }
        }

        records.Sort((a, b) => b.Sequence.CompareTo(a.Sequence));
        return records;
    }

    /// <summary>
    /// Reads a whole unit of any kind into the scratch buffers and classifies it: erased when every
    /// page is, the FTL's when every page carries intact metadata of one unit, damaged otherwise
    /// (a torn page, or a unit of two pages cut between them).
    /// </summary>
    private UnitRead ReadUnitAny(int block, int unit)
    {
        int erasedPages = 0;
        bool damaged = false;
        PageMetadata first = default;
        for (int page = 0; page < _layout.PagesPerUnit; page++)
        {
            Span<byte> data =
                _layout.PagesPerUnit == 1
                    ? _unitData
                    : _unitData.AsSpan(page * _nand.Geometry.PageBytes, _nand.Geometry.PageBytes);
            NandCompletion read = _nand.ReadPage(_layout.PageOf(block, unit, page), data, _pageSpare);
            Statistics.NandPagesRead++;
            _clock.WaitUntil(read.CompletesAtNanoseconds);
            if (
                read.Succeeded
                && !data.ContainsAnyExcept((byte)0xFF)
                && !_pageSpare.AsSpan().ContainsAnyExcept((byte)0xFF)
            )
            {
                erasedPages++;
                continue;
            }

            if (
                !read.Succeeded
                || !PageMetadata.TryRead(_pageSpare, data, _slots, out PageMetadata metadata)
                || metadata.PageInUnit != page
                || (page > 0 && metadata.Sequence != first.Sequence)
            )
            {
                damaged = true;
                continue;
            }

            first = metadata;
        }

        return erasedPages == _layout.PagesPerUnit ? new UnitRead(FirstUnitClass.Erased, default)
            : damaged || erasedPages > 0 ? new UnitRead(FirstUnitClass.Damaged, default)
            : new UnitRead(FirstUnitClass.Ours, first);
    }

    private enum FirstUnitClass
    {
        FactoryBad,
        Erased,
        Ours,
        Damaged,
        Foreign,
    }

    private readonly record struct FirstUnit(FirstUnitClass Class, ulong Sequence);

    private readonly record struct UnitRead(FirstUnitClass Class, PageMetadata Metadata);
}

/// <summary>The NAND cannot be mounted: it holds something else, another geometry's format, or lost metadata.</summary>
public sealed class FtlMountException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FtlMountException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers.</summary>
    public FtlMountException() { }

    /// <summary>Required by the analyzers.</summary>
    public FtlMountException(string message, Exception innerException)
        : base(message, innerException) { }
}
