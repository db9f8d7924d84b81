using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>
/// What the FTL knows of each block: its state and use, its erase count, whether it must be erased
/// before it is written, when it may be taken after being freed, when it was last written and when
/// a host command last invalidated data in it; the free pool's size; and each stream's open block.
/// States change only through this class, which keeps the free count equal to the number of free
/// blocks (<see cref="CheckInvariants"/>).
/// </summary>
internal sealed class BlockTable
{
    private readonly BlockState[] _states;
    private readonly BlockUse[] _uses;
    private readonly uint[] _eraseCounts;
    private readonly bool[] _needsErase;

    /// <summary>
    /// Per block, the instant it was let go (a GC victim released, old metadata let go): what made
    /// it free (relocated copies, a flush, a new checkpoint) is complete by then on the timeline
    /// that freed it. A command on an earlier timeline that takes the block waits for that instant
    /// before it erases or programs it, so the erase can never come before what it depends on.
    /// </summary>
    private readonly long[] _freeNotBefore;
    private readonly ulong[] _lastWritten;
    private readonly long[] _invalidatedAt;
    private readonly (int Block, int NextUnit)[] _streams;

    /// <summary>
    /// Creates the table of <paramref name="blocks"/> blocks, all free, and <paramref name="streams"/> streams with no
    /// open block.
    /// </summary>
    public BlockTable(int blocks, int streams)
    {
        _states = new BlockState[blocks];
        _uses = new BlockUse[blocks];
        _eraseCounts = new uint[blocks];
        _needsErase = new bool[blocks];
        _freeNotBefore = new long[blocks];
        _lastWritten = new ulong[blocks];
        _invalidatedAt = new long[blocks];
        _streams = new (int, int)[streams];
        Array.Fill(_streams, (-1, 0));
        FreeCount = blocks;
    }

    /// <summary>Blocks in the table.</summary>
    public int Count => _states.Length;

    /// <summary>Blocks in the free pool.</summary>
    public int FreeCount { get; private set; }

    /// <summary>Every block's state, for a checkpoint.</summary>
    public ReadOnlySpan<BlockState> States => _states;

    /// <summary>Every block's use, for a checkpoint.</summary>
    public ReadOnlySpan<BlockUse> Uses => _uses;

    /// <summary>Every block's erase count, for a checkpoint.</summary>
    public ReadOnlySpan<uint> EraseCounts => _eraseCounts;

    /// <summary>Every stream's open block and next unit, for a checkpoint.</summary>
    public ReadOnlySpan<(int Block, int NextUnit)> Streams => _streams;

    /// <summary>Streams (one per die for host data, the cold stream, the metadata stream).</summary>
    public int StreamCount => _streams.Length;

    /// <summary>Blocks marked bad.</summary>
    public int BadCount => _states.Count(s => s == BlockState.Bad);

    /// <summary>The state of <paramref name="block"/>.</summary>
    public BlockState StateOf(int block) => _states[block];

    /// <summary>What <paramref name="block"/> holds.</summary>
    public BlockUse UseOf(int block) => _uses[block];

    /// <summary>True when <paramref name="block"/> holds host or relocated data.</summary>
    public bool HoldsData(int block) => _uses[block] is BlockUse.HostData or BlockUse.ColdData;

    /// <summary>How often <paramref name="block"/> has been erased.</summary>
    public uint EraseCountOf(int block) => _eraseCounts[block];

    /// <summary>True when <paramref name="block"/> holds old data and must be erased before it is programmed.</summary>
    public bool NeedsErase(int block) => _needsErase[block];

    /// <summary>The instant before which <paramref name="block"/>, freed, must not be erased or programmed.</summary>
    public long FreeNotBefore(int block) => _freeNotBefore[block];

    /// <summary>The sequence number of the last unit written to <paramref name="block"/>.</summary>
    public ulong LastWritten(int block) => _lastWritten[block];

    /// <summary>The host write ticket that last invalidated a sector of <paramref name="block"/>.</summary>
    public long InvalidatedAt(int block) => _invalidatedAt[block];

    /// <summary>A stream's open block (-1: none) and the next unit to program in it.</summary>
    public (int Block, int NextUnit) Stream(int stream) => _streams[stream];

    /// <summary>Sets a stream's open block and next unit (-1: no open block).</summary>
    public void SetStream(int stream, int block, int nextUnit) => _streams[stream] = (block, nextUnit);

    /// <summary>Closes every stream (recovery: nothing is open after a cut).</summary>
    public void CloseAllStreams() => Array.Fill(_streams, (-1, 0));

    /// <summary>Sets <paramref name="block"/>'s state, keeping the free count.</summary>
    public void SetState(int block, BlockState state)
    {
        FreeCount += (state == BlockState.Free ? 1 : 0) - (_states[block] == BlockState.Free ? 1 : 0);
        _states[block] = state;
    }

    /// <summary>Sets what <paramref name="block"/> holds.</summary>
    public void SetUse(int block, BlockUse use) => _uses[block] = use;

    /// <summary>
    /// Puts <paramref name="block"/> in the free pool as it was found at mount (it needs an erase unless it reads
    /// erased).
    /// </summary>
    public void Found(int block, bool needsErase)
    {
        SetState(block, BlockState.Free);
        _needsErase[block] = needsErase;
    }

    /// <summary>
    /// Takes a free block out of the pool for a stream. It is open from now on; the caller erases
    /// it first if <see cref="NeedsErase"/> says so, and marks it bad if that fails.
    /// </summary>
    public void Take(int block, BlockUse use)
    {
        Invariant.Holds(_states[block] == BlockState.Free, "only a free block is taken for a stream");
        SetState(block, BlockState.Open);
        _uses[block] = use;
        _invalidatedAt[block] = 0;
    }

    /// <summary>
    /// Returns <paramref name="block"/> to the free pool; it holds old data and may not be erased before
    /// <paramref name="notBefore"/>.
    /// </summary>
    public void Free(int block, long notBefore)
    {
        SetState(block, BlockState.Free);
        _uses[block] = BlockUse.None;
        _needsErase[block] = true;
        _freeNotBefore[block] = notBefore;
    }

    /// <summary>Marks <paramref name="block"/> bad for good.</summary>
    public void MarkBad(int block)
    {
        SetState(block, BlockState.Bad);
        _uses[block] = BlockUse.None;
    }

    /// <summary>Counts an erase of <paramref name="block"/> that succeeded: it no longer needs one.</summary>
    public void Erased(int block)
    {
        _eraseCounts[block]++;
        _needsErase[block] = false;
    }

    /// <summary>Raises <paramref name="block"/>'s erase count to one read from its pages, if that is higher.</summary>
    public void SawEraseCount(int block, uint eraseCount) =>
        _eraseCounts[block] = Math.Max(_eraseCounts[block], eraseCount);

    /// <summary>
    /// Records that a unit with sequence <paramref name="sequence"/> was written to <paramref name="block"/>.
    /// </summary>
    public void Written(int block, ulong sequence) => _lastWritten[block] = sequence;

    /// <summary>Recovery: raises <paramref name="block"/>'s last-written sequence to one read from its pages.</summary>
    public void SawSequence(int block, ulong sequence) => _lastWritten[block] = Math.Max(_lastWritten[block], sequence);

    /// <summary>
    /// Records that host write ticket <paramref name="ticket"/> invalidated a sector of <paramref name="block"/>.
    /// </summary>
    public void Invalidated(int block, long ticket) => _invalidatedAt[block] = ticket;

    /// <summary>Checks that the free count is the number of free blocks.</summary>
    public void CheckInvariants()
    {
        int free = _states.Count(s => s == BlockState.Free);
        Invariant.Holds(free == FreeCount, $"{free} blocks are free, the count says {FreeCount}");
    }
}
