using System.Diagnostics;
using System.Numerics;
using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Nand;

/// <summary>
/// What a power cut does to the operations in flight. Each die keeps its programs and erases
/// until they complete, with what undoing them takes; a cut walks each die's queue from the newest
/// operation back, so an erase and the programs queued behind it come apart in the right order,
/// and draws for each operation that had started what became of it.
/// </summary>
internal sealed class PowerCutModel
{
    private readonly NandStore _store;
    private readonly NandGeometry _geometry;
    private readonly Prng _prng;
    private readonly InFlightQueue[] _dies;
    private readonly int[] _pendingErases;
    private readonly Stack<byte[]> _stateUndoPool = new();
    private readonly Stack<byte[]> _pageUndoPool = new();

    /// <summary>
    /// Creates the model over <paramref name="store"/>; <paramref name="prng"/> is the array's own, so one seed gives
    /// one sequence of draws.
    /// </summary>
    public PowerCutModel(NandStore store, Prng prng)
    {
        _store = store;
        _geometry = store.Geometry;
        _prng = prng;
        _dies = new InFlightQueue[_geometry.Dies];
        for (int die = 0; die < _dies.Length; die++)
        {
            _dies[die] = new InFlightQueue();
        }

        _pendingErases = new int[_geometry.Blocks];
    }

    /// <summary>
    /// How many of <paramref name="die"/>'s operations in flight end after <paramref name="instant"/>.
    /// </summary>
    public int EndingAfter(int die, long instant)
    {
        InFlightQueue queue = _dies[die];
        int queued = queue.Count;
        while (queued > 0 && queue[queued - 1].EndNanoseconds > instant)
        {
            queued--;
        }

        return queue.Count - queued;
    }

    /// <summary>
    /// Forgets the operations of <paramref name="die"/> that have completed by <paramref name="now"/>.
    /// </summary>
    public void Retire(int die, long now)
    {
        InFlightQueue queue = _dies[die];
        while (queue.Count > 0 && queue.Oldest.EndNanoseconds <= now)
        {
            ref InFlightOperation done = ref queue.Oldest;
            if (done.Kind == NandOperationKind.Erase)
            {
                _pendingErases[done.Block]--;
            }

            ReturnUndo(ref done);
            queue.DequeueOldest();
        }
    }

    /// <summary>
    /// Records a program of <paramref name="address"/> about to change the store. Into a block
    /// whose erase is still in flight, the page's bytes are kept, since undoing that erase brings
    /// them back.
    /// </summary>
    public void Program(int die, PageAddress address, long arrayStart, long end)
    {
        var operation = new InFlightOperation
        {
            Kind = NandOperationKind.Program,
            Block = address.Block,
            Page = address.Page,
            ArrayStartNanoseconds = arrayStart,
            EndNanoseconds = end,
        };
        if (_pendingErases[address.Block] > 0)
        {
            int pageIndex = PageIndex(address);
            Span<byte> storedData = _store.Data(pageIndex);
            operation.Undo = Rent(_pageUndoPool, storedData.Length + _geometry.SpareBytes);
            storedData.CopyTo(operation.Undo);
            _store.Spare(pageIndex).CopyTo(operation.Undo.AsSpan(storedData.Length));
        }

        _dies[die].Enqueue(operation);
    }

    /// <summary>
    /// Records an erase of <paramref name="block"/> about to change the store: its page states and erase count before
    /// it.
    /// </summary>
    public void Erase(int die, int block, long start, long end)
    {
        Span<byte> states = BlockStates(block);
        byte[] undo = Rent(_stateUndoPool, states.Length);
        states.CopyTo(undo);
        _dies[die]
            .Enqueue(
                new InFlightOperation
                {
                    Kind = NandOperationKind.Erase,
                    Block = block,
                    Page = 0,
                    ArrayStartNanoseconds = start,
                    EndNanoseconds = end,
                    Undo = undo,
                    EraseCountBefore = _store.EraseCounts[block],
                }
            );
        _pendingErases[block]++;
    }

    /// <summary>
    /// Cuts the power at <paramref name="now"/>: an operation that had started is torn (a program
    /// leaves its page programmed, erased or corrupted; an erase leaves its block erased, untouched
    /// or unreliable), and one queued behind it never happens. Returns every operation that had not
    /// completed, oldest first, with what became of it. Write pointers are the caller's to recompute.
    /// </summary>
    public List<TornOperation> Cut(long now)
    {
        var torn = new List<TornOperation>();
        for (int die = 0; die < _dies.Length; die++)
        {
            Retire(die, now);
            InFlightQueue queue = _dies[die];
            for (int i = queue.Count - 1; i >= 0; i--)
            {
                ref InFlightOperation operation = ref queue[i];
                PowerCutOutcome outcome =
                    operation.ArrayStartNanoseconds > now ? PowerCutOutcome.NotStarted : DrawOutcome(operation.Kind);
                ApplyOutcome(ref operation, outcome);
                torn.Add(new TornOperation(operation.Kind, new PageAddress(operation.Block, operation.Page), outcome));
                ReturnUndo(ref operation);
            }

            queue.Clear();
        }

        Array.Clear(_pendingErases);
        torn.Reverse();
        return torn;
    }

    /// <summary>
    /// An interrupted or failed program: cells move from 1 to 0 as they program, so some bits that
    /// should have become 0 are still 1. At least one bit ends up different from the data asked for.
    /// </summary>
    public void PartiallyProgram(Span<byte> stored)
    {
        int flips = 1 + _prng.NextInt(Math.Max(1, stored.Length / 16));
        for (int i = 0; i < flips; i++)
        {
            stored[_prng.NextInt(stored.Length)] |= (byte)(1 << _prng.NextInt(8));
        }

        // Setting bits only ever adds 1s, so the page differs from the data as soon as one of them
        // landed on a 0. Make sure one did: raise a 0 bit of some byte that still has one.
        int start = _prng.NextInt(stored.Length);
        int index = stored[start..].IndexOfAnyExcept((byte)0xFF);
        index = index >= 0 ? start + index : stored[..start].IndexOfAnyExcept((byte)0xFF);
        if (index >= 0)
        {
            stored[index] |= (byte)(1 << BitOperations.TrailingZeroCount(~stored[index] & 0xFF));
        }
        else
        {
            // Data of all 1s cannot gain a 1: an over-programmed cell loses one instead.
            stored[start] = 0xFE;
        }
    }

    private PowerCutOutcome DrawOutcome(NandOperationKind kind) =>
        kind switch
        {
            NandOperationKind.Program => _prng.NextInt(3) switch
            {
                0 => PowerCutOutcome.Programmed,
                1 => PowerCutOutcome.LeftErased,
                _ => PowerCutOutcome.Corrupted,
            },
            NandOperationKind.Erase => _prng.NextInt(3) switch
            {
                0 => PowerCutOutcome.Erased,
                1 => PowerCutOutcome.Untouched,
                _ => PowerCutOutcome.Unreliable,
            },
            _ => throw new UnreachableException($"unknown operation kind {kind}"),
        };

    private void ApplyOutcome(ref InFlightOperation operation, PowerCutOutcome outcome)
    {
        switch (operation.Kind, outcome)
        {
            case (NandOperationKind.Program, PowerCutOutcome.Programmed):
            case (NandOperationKind.Erase, PowerCutOutcome.Erased):
                break;
            case (NandOperationKind.Program, PowerCutOutcome.Corrupted):
                int pageIndex = PageIndex(new PageAddress(operation.Block, operation.Page));
                PartiallyProgram(_store.Data(pageIndex));
                _store.States[pageIndex] = (byte)(_prng.NextInt(2) == 0 ? PageState.Torn : PageState.TornSilent);
                break;
            case (NandOperationKind.Program, _):
                UndoProgram(ref operation);
                break;
            case (NandOperationKind.Erase, _)
                when ((BlockFlags)_store.Flags[operation.Block]).HasFlag(BlockFlags.FactoryBad):
                // The erase of a factory-bad block changed nothing; a cut cannot take its marker.
                break;
            case (NandOperationKind.Erase, PowerCutOutcome.Unreliable):
                BlockStates(operation.Block).Fill((byte)PageState.Torn);
                break;
            case (NandOperationKind.Erase, _):
                operation.Undo.AsSpan(0, _geometry.PagesPerBlock).CopyTo(BlockStates(operation.Block));
                _store.EraseCounts[operation.Block] = operation.EraseCountBefore;
                break;
            default:
                throw new UnreachableException($"outcome {outcome} for a {operation.Kind}");
        }
    }

    private void UndoProgram(ref InFlightOperation operation)
    {
        int pageIndex = PageIndex(new PageAddress(operation.Block, operation.Page));
        _store.States[pageIndex] = (byte)PageState.Erased;
        if (operation.Undo is not null)
        {
            Span<byte> data = _store.Data(pageIndex);
            operation.Undo.AsSpan(0, data.Length).CopyTo(data);
            operation.Undo.AsSpan(data.Length, _geometry.SpareBytes).CopyTo(_store.Spare(pageIndex));
        }
    }

    private static byte[] Rent(Stack<byte[]> pool, int length) =>
        pool.TryPop(out byte[]? buffer) ? buffer : new byte[length];

    private void ReturnUndo(ref InFlightOperation operation)
    {
        if (operation.Undo is null)
        {
            return;
        }

        (operation.Kind == NandOperationKind.Erase ? _stateUndoPool : _pageUndoPool).Push(operation.Undo);
        operation.Undo = null;
    }

    private Span<byte> BlockStates(int block) =>
        _store.States.Slice(block * _geometry.PagesPerBlock, _geometry.PagesPerBlock);

    private int PageIndex(PageAddress address) => (address.Block * _geometry.PagesPerBlock) + address.Page;
}
