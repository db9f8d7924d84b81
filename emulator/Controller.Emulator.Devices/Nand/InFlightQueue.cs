namespace Controller.Emulator.Nand;

/// <summary>
/// The kind of a NAND operation (reads change nothing, so only programs and erases are ever in flight).
/// </summary>
public enum NandOperationKind
{
    /// <summary>A page read.</summary>
    Read,

    /// <summary>A page program.</summary>
    Program,

    /// <summary>A block erase.</summary>
    Erase,
}

/// <summary>
/// An operation issued to a die and not yet complete, with what is needed to undo it if the power
/// is cut before it completes.
/// </summary>
internal struct InFlightOperation
{
    public NandOperationKind Kind;
    public int Block;
    public int Page;

    /// <summary>When the die starts changing cells (after the data transfer, for a program).</summary>
    public long ArrayStartNanoseconds;
    public long EndNanoseconds;

    /// <summary>
    /// For an erase: the page states of the block before it. For a program into a block whose
    /// erase is still in flight: the page bytes before it, since undoing that erase brings them back.
    /// </summary>
    public byte[]? Undo;
    public uint EraseCountBefore;
}

/// <summary>
/// A first-in first-out ring of in-flight operations that grows but never shrinks, so steady state allocates nothing.
/// </summary>
internal sealed class InFlightQueue
{
    private InFlightOperation[] _items = new InFlightOperation[8];
    private int _head;

    public int Count { get; private set; }

    public ref InFlightOperation Oldest => ref _items[_head];

    public ref InFlightOperation this[int index] => ref _items[(_head + index) % _items.Length];

    public void Enqueue(in InFlightOperation operation)
    {
        if (Count == _items.Length)
        {
            var larger = new InFlightOperation[_items.Length * 2];
            for (int i = 0; i < Count; i++)
            {
                larger[i] = this[i];
            }

            _items = larger;
            _head = 0;
        }

        _items[(_head + Count) % _items.Length] = operation;
        Count++;
    }

    public void DequeueOldest()
    {
        _items[_head] = default;
        _head = (_head + 1) % _items.Length;
        Count--;
    }

    public void Clear()
    {
        Array.Clear(_items);
        _head = 0;
        Count = 0;
    }
}
