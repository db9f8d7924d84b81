using System.Buffers.Binary;

namespace Controller.Firmware.Ftl;

/// <summary>Checkpoints of the map and block table, and the superblock that points at the newest.</summary>
public sealed partial class FlashTranslationLayer
{
    private const ulong SuperblockMagic = 0x31304C5446445353; // "SSDFTL01"
    private const uint FormatVersion = 1;

    private readonly int[] _superblocks = [-1, -1];
    private readonly List<int> _currentCheckpointBlocks = [];
    private readonly int[] _superblockUnitsWritten = new int[2];
    private int _activeSuperblock;
    private int _superblockNextUnit;
    private ulong _formatNonce;

    /// <summary>
    /// Takes a checkpoint when the interval has passed, or when the journal has filled what the
    /// metadata reserve leaves it: the current checkpoint's blocks and the open metadata block are
    /// in use, and the next checkpoint needs as many again, so journal blocks beyond that would
    /// eat into space the data needs.
    /// </summary>
    private void CheckpointIfDue()
    {
        if (_savingOnHoldUp)
        {
            return;
        }

        if (
            _pagesSinceCheckpoint >= _options.CheckpointIntervalPages
            || _metadataBlocks.Count > _layout.CheckpointBlocks + 1
        )
        {
            TakeCheckpoint();
        }
    }

    /// <summary>
    /// A clean shutdown's last step: makes everything durable and takes a checkpoint now, so the
    /// next mount replays nothing.
    /// </summary>
    public void CheckpointNow() => TakeCheckpoint();

    /// <summary>
    /// Makes everything durable, writes the map and block table as checkpoint units into the
    /// metadata stream, waits for them, then points the superblock at them. Only once that pointer
    /// is durable are the previous checkpoint's blocks and the journal before it let go.
    /// </summary>
    private void TakeCheckpoint()
    {
        using (Enter(FtlActivity.Checkpoint))
        {
            TakeCheckpointCore();
        }
    }

    private void TakeCheckpointCore()
    {
        FlushCore();
        if (_coldBuffer.Count > 0)
        {
            ProgramColdBuffer();
        }

        _clock.WaitUntil(_latestCompletion);
        ReleaseVictims(force: true);
        ulong sequence = _nextSequence - 1;
        byte[] bytes = CheckpointCodec.Encode(
            sequence,
            _sectors.Entries,
            _blocks.EraseCounts,
            _blocks.States,
            _blocks.Uses,
            _blocks.Streams
        );
        int parts = (int)((bytes.Length + _layout.UnitBytes - 1) / _layout.UnitBytes);
        ulong firstPart = _nextSequence;
        var blocks = new List<int>();
        for (int part = 0; part < parts; part++)
        {
            int offset = part * _layout.UnitBytes;
            Span<byte> data = _unitData;
            data.Clear();
            bytes.AsSpan(offset, Math.Min(_layout.UnitBytes, bytes.Length - offset)).CopyTo(data);
            int block = ProgramMetadataUnit(UnitKind.Checkpoint, (uint)part, data);
            if (!blocks.Contains(block))
            {
                blocks.Add(block);
            }
        }

        ulong lastPart = _nextSequence - 1;
        _clock.WaitUntil(_latestCompletion);
        WriteSuperblock(new CheckpointPointer(sequence, firstPart, lastPart, parts, blocks));
        _clock.WaitUntil(_latestCompletion);
        LetGoOfOldMetadata(blocks);
        _pagesSinceCheckpoint = 0;
        Statistics.Checkpoints++;
    }

    /// <summary>
    /// The erase count the FTL holds for <paramref name="block"/> (for tests of its survival across cuts).
    /// </summary>
    internal uint EraseCountOf(int block) => _blocks.EraseCountOf(block);

    /// <summary>The blocks holding the current checkpoint (for tests that damage it).</summary>
    internal IReadOnlyList<int> CheckpointBlocks => _currentCheckpointBlocks;

    /// <summary>Frees metadata blocks that hold nothing newer than the checkpoint just made durable.</summary>
    private void LetGoOfOldMetadata(List<int> current)
    {
        int open = _blocks.Stream(MetaStream).Block;
        for (int i = _metadataBlocks.Count - 1; i >= 0; i--)
        {
            int block = _metadataBlocks[i];
            if (current.Contains(block) || block == open)
            {
                continue;
            }

            _metadataBlocks.RemoveAt(i);
            if (_blocks.StateOf(block) == BlockState.Bad)
            {
                continue;
            }

            _blocks.Free(block, _clock.NowNanoseconds);
        }

        _currentCheckpointBlocks.Clear();
        _currentCheckpointBlocks.AddRange(current);
    }

    /// <summary>
    /// Appends a superblock unit: the format record and <paramref name="pointer"/>. When the active
    /// superblock block is full, the other one is erased and becomes active; the newest pointer
    /// is then still in the full one until the first unit of the new one is written.
    /// </summary>
    private void WriteSuperblock(CheckpointPointer? pointer)
    {
        EncodeSuperblock(_unitData, pointer);
        Array.Fill(_slots, PageMetadata.EmptySlot);
        for (int attempt = 0; attempt < 4; attempt++)
        {
            if (_superblockNextUnit == _layout.UnitsPerBlock)
            {
                SwitchSuperblock();
            }

            int block = _superblocks[_activeSuperblock];
            bool programmed = ProgramUnit(block, _superblockNextUnit, UnitKind.Superblock, 0, _slots, _unitData);
            _superblockNextUnit++;
            if (programmed)
            {
                Statistics.SuperblockUnitsProgrammed++;
                return;
            }

            // A failed superblock page: move to the other block, which is erased first.
            _superblockNextUnit = _layout.UnitsPerBlock;
        }

        throw new FtlException($"the superblock could not be written to block {_superblocks[0]} or {_superblocks[1]}");
    }

    private const int SuperblockEraseAttempts = 4;

    private void SwitchSuperblock()
    {
        _activeSuperblock = 1 - _activeSuperblock;
        EraseSuperblock(_activeSuperblock);
        _superblockNextUnit = 0;
    }

    /// <summary>
    /// Erases a superblock block. The superblocks live at fixed places (mount looks for them in
    /// the first two good blocks), so a failed erase is retried; a block that keeps failing ends
    /// the FTL's ability to record checkpoints, which is reported rather than written over.
    /// </summary>
    private void EraseSuperblock(int index)
    {
        int block = _superblocks[index];
        for (int attempt = 0; attempt < SuperblockEraseAttempts; attempt++)
        {
            var erased = EraseBlock(block);
            _latestCompletion = Math.Max(_latestCompletion, erased.CompletesAtNanoseconds);
            Statistics.BlocksErased++;
            if (erased.Succeeded)
            {
                _blocks.Erased(block);
                return;
            }

            Statistics.EraseFailures++;
        }

        throw new FtlException(
            $"superblock block {block} failed to erase {SuperblockEraseAttempts} times; checkpoints can no longer be recorded"
        );
    }

    private void EncodeSuperblock(Span<byte> data, CheckpointPointer? pointer)
    {
        data.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(data, SuperblockMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(data[8..], FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(data[12..], _formatNonce);
        var geometry = _nand.Geometry;
        int[] shape =
        [
            geometry.Channels,
            geometry.DiesPerChannel,
            geometry.BlocksPerDie,
            geometry.PagesPerBlock,
            geometry.PageBytes,
            geometry.SpareBytes,
        ];
        for (int i = 0; i < shape.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(data[(20 + (4 * i))..], shape[i]);
        }

        BinaryPrimitives.WriteInt64LittleEndian(data[44..], _sectors.Length);
        BinaryPrimitives.WriteInt32LittleEndian(data[52..], Capacity.GoodBlocks);
        BinaryPrimitives.WriteInt32LittleEndian(data[56..], _superblocks[0]);
        BinaryPrimitives.WriteInt32LittleEndian(data[60..], _superblocks[1]);
        BinaryPrimitives.WriteInt64LittleEndian(data[64..], Capacity.DataBlocks);
        if (pointer is null)
        {
            return;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(data[72..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(data[76..], pointer.Sequence);
        BinaryPrimitives.WriteUInt64LittleEndian(data[84..], pointer.FirstPartSequence);
        BinaryPrimitives.WriteUInt64LittleEndian(data[92..], pointer.LastPartSequence);
        BinaryPrimitives.WriteInt32LittleEndian(data[100..], pointer.Parts);
        BinaryPrimitives.WriteInt32LittleEndian(data[104..], pointer.Blocks.Count);
        for (int i = 0; i < pointer.Blocks.Count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(data[(108 + (4 * i))..], pointer.Blocks[i]);
        }
    }

    /// <summary>
    /// Decodes a superblock unit read into the scratch buffer; null when it is not one of this geometry.
    /// </summary>
    private SuperblockRecord? DecodeSuperblock(ReadOnlySpan<byte> data, ulong sequence, int block, int unit)
    {
        if (BinaryPrimitives.ReadUInt64LittleEndian(data) != SuperblockMagic)
        {
            return null;
        }

        var geometry = _nand.Geometry;
        int[] shape =
        [
            geometry.Channels,
            geometry.DiesPerChannel,
            geometry.BlocksPerDie,
            geometry.PagesPerBlock,
            geometry.PageBytes,
            geometry.SpareBytes,
        ];
        int[] stored = new int[shape.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            stored[i] = BinaryPrimitives.ReadInt32LittleEndian(data[(20 + (4 * i))..]);
        }

        CheckpointPointer? pointer = null;
        if (BinaryPrimitives.ReadUInt32LittleEndian(data[72..]) == 1)
        {
            int count = BinaryPrimitives.ReadInt32LittleEndian(data[104..]);
            var blocks = new List<int>();
            for (int i = 0; i < count && 108 + (4 * i) + 4 <= data.Length; i++)
            {
                blocks.Add(BinaryPrimitives.ReadInt32LittleEndian(data[(108 + (4 * i))..]));
            }

            pointer = new CheckpointPointer(
                BinaryPrimitives.ReadUInt64LittleEndian(data[76..]),
                BinaryPrimitives.ReadUInt64LittleEndian(data[84..]),
                BinaryPrimitives.ReadUInt64LittleEndian(data[92..]),
                BinaryPrimitives.ReadInt32LittleEndian(data[100..]),
                blocks
            );
        }

        return new SuperblockRecord(
            sequence,
            block,
            unit,
            BinaryPrimitives.ReadUInt32LittleEndian(data[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(data[12..]),
            stored.AsSpan().SequenceEqual(shape),
            string.Join(",", stored),
            BinaryPrimitives.ReadInt64LittleEndian(data[44..]),
            BinaryPrimitives.ReadInt32LittleEndian(data[52..]),
            BinaryPrimitives.ReadInt64LittleEndian(data[64..]),
            [BinaryPrimitives.ReadInt32LittleEndian(data[56..]), BinaryPrimitives.ReadInt32LittleEndian(data[60..])],
            pointer
        );
    }

    /// <summary>
    /// Where a checkpoint is: its covering sequence, the sequence numbers of its parts, and the blocks holding them.
    /// </summary>
    private sealed record CheckpointPointer(
        ulong Sequence,
        ulong FirstPartSequence,
        ulong LastPartSequence,
        int Parts,
        List<int> Blocks
    );

    private sealed record SuperblockRecord(
        ulong Sequence,
        int Block,
        int Unit,
        uint Version,
        ulong Nonce,
        bool GeometryMatches,
        string Geometry,
        long LogicalSectors,
        int GoodBlocks,
        long DataBlocks,
        int[] Superblocks,
        CheckpointPointer? Pointer
    );
}
