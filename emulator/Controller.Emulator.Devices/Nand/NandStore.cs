using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Controller.Firmware.Flash;

namespace Controller.Emulator.Nand;

/// <summary>
/// Where the model keeps the array: page data, page spare areas, one state byte per page, and per
/// block an erase count and flags. Two twins: sparse memory, and a memory-mapped image file. In
/// both, page data starts on a boundary of its own size (at least 4 KiB when the page is), so that
/// copying a page in or out is as fast as a well-aligned memcpy.
/// </summary>
internal abstract class NandStore : IDisposable
{
    protected NandStore(NandGeometry geometry)
    {
        Geometry = geometry;
    }

    /// <summary>The shape of the array stored.</summary>
    public NandGeometry Geometry { get; }

    /// <summary>True when the store was just created and holds no factory state yet.</summary>
    public abstract bool IsNew { get; }

    /// <summary>One <see cref="PageState"/> per page, indexed by global page number.</summary>
    public abstract Span<byte> States { get; }

    /// <summary>Erase count of each block.</summary>
    public abstract Span<uint> EraseCounts { get; }

    /// <summary><see cref="BlockFlags"/> of each block.</summary>
    public abstract Span<byte> Flags { get; }

    /// <summary>The data bytes of a page; storage is made on first use.</summary>
    public abstract Span<byte> Data(int page);

    /// <summary>The spare bytes of a page; storage is made on first use.</summary>
    public abstract Span<byte> Spare(int page);

    /// <summary>Pushes everything written to its backing (a no-op in memory).</summary>
    public abstract void Flush();

    /// <summary>
    /// Called once a new store holds its factory state: an image file takes its real name only
    /// now, so a creation that dies halfway leaves no half-made image behind.
    /// </summary>
    public virtual void CommitCreation() { }

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing) { }
}

/// <summary>
/// The array in memory, allocated a block at a time when the block is first written. A block's
/// data lives in a pinned array, at an offset that aligns it, so page copies stay aligned.
/// </summary>
internal sealed unsafe class MemoryNandStore : NandStore
{
    private const int Alignment = 4096;

    private readonly byte[] _states;
    private readonly uint[] _eraseCounts;
    private readonly byte[] _flags;
    private readonly byte[]?[] _data;
    private readonly int[] _dataOffsets;
    private readonly byte[]?[] _spares;

    public MemoryNandStore(NandGeometry geometry)
        : base(geometry)
    {
        _states = new byte[geometry.Pages];
        _eraseCounts = new uint[geometry.Blocks];
        _flags = new byte[geometry.Blocks];
        _data = new byte[]?[geometry.Blocks];
        _dataOffsets = new int[geometry.Blocks];
        _spares = new byte[]?[geometry.Blocks];
    }

    public override bool IsNew => true;

    public override Span<byte> States => _states;

    public override Span<uint> EraseCounts => _eraseCounts;

    public override Span<byte> Flags => _flags;

    /// <summary>How many blocks have storage behind them (for tests of sparseness).</summary>
    public int AllocatedBlocks => _data.Count(b => b is not null);

    public override Span<byte> Data(int page)
    {
        int block = page / Geometry.PagesPerBlock;
        if (_data[block] is null)
        {
            Allocate(block);
        }

        return _data[block]
            .AsSpan(_dataOffsets[block] + ((page % Geometry.PagesPerBlock) * Geometry.PageBytes), Geometry.PageBytes);
    }

    public override Span<byte> Spare(int page)
    {
        int block = page / Geometry.PagesPerBlock;
        if (_spares[block] is null)
        {
            Allocate(block);
        }

        return _spares[block].AsSpan((page % Geometry.PagesPerBlock) * Geometry.SpareBytes, Geometry.SpareBytes);
    }

    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Pinned arrays live on the pinned heap, which only a full collection reclaims: a
            // crash test makes hundreds of thousands of arrays, so they go back to a pool.
            foreach (byte[]? data in _data)
            {
                if (data is not null && Interlocked.Add(ref s_pooledBytes, data.Length) <= MaxPooledBytes)
                {
                    s_pool.Add(data);
                }
                else if (data is not null)
                {
                    Interlocked.Add(ref s_pooledBytes, -data.Length);
                }
            }

            Array.Clear(_data);
        }

        base.Dispose(disposing);
    }

    private void Allocate(int block)
    {
        // Pinned: the array never moves, so the alignment computed here holds for its lifetime.
        // Zeroed: a page torn by an interrupted erase is read back as stored, and what it holds
        // must depend on the seed alone (a pooled array is cleared).
        int length = (int)Geometry.BlockBytes + Alignment;
        byte[] data = Rent(length);
        long address = (long)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
        _dataOffsets[block] = (int)((Alignment - (address % Alignment)) % Alignment);
        _data[block] = data;
        _spares[block] = new byte[Geometry.PagesPerBlock * Geometry.SpareBytes];
    }

    private static byte[] Rent(int length)
    {
        for (int tries = 0; tries < 4 && s_pool.TryTake(out byte[]? pooled); tries++)
        {
            Interlocked.Add(ref s_pooledBytes, -pooled.Length);
            if (pooled.Length == length)
            {
                Array.Clear(pooled);
                return pooled;
            }
        }

        return GC.AllocateArray<byte>(length, pinned: true);
    }

    /// <summary>
    /// What the pool may hold: enough for the small arrays of crash tests and swarms, never a large array's worth.
    /// </summary>
    private const long MaxPooledBytes = 64L << 20;

    private static readonly System.Collections.Concurrent.ConcurrentBag<byte[]> s_pool = [];
    private static long s_pooledBytes;
}
