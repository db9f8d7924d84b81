using Controller.Firmware.Flash;

namespace Controller.Emulator.Nand;

/// <summary>
/// Where the model keeps the array: page contents (data followed by spare, one stride per page),
/// one state byte per page, and per block an erase count and flags. Two twins: sparse memory, and a
/// memory-mapped image file.
/// </summary>
internal abstract class NandStore : IDisposable
{
    protected NandStore(NandGeometry geometry)
    {
        Geometry = geometry;
        PageStride = geometry.PageBytes + geometry.SpareBytes;
    }

    /// <summary>The shape of the array stored.</summary>
    public NandGeometry Geometry { get; }

    /// <summary>Bytes of one page as stored: data, then spare.</summary>
    public int PageStride { get; }

    /// <summary>True when the store was just created and holds no factory state yet.</summary>
    public abstract bool IsNew { get; }

    /// <summary>One <see cref="PageState"/> per page, indexed by global page number.</summary>
    public abstract Span<byte> States { get; }

    /// <summary>Erase count of each block.</summary>
    public abstract Span<uint> EraseCounts { get; }

    /// <summary><see cref="BlockFlags"/> of each block.</summary>
    public abstract Span<byte> Flags { get; }

    /// <summary>The stored bytes of a page, for writing; storage is made on first use.</summary>
    public abstract Span<byte> PageForWrite(int page);

    /// <summary>The stored bytes of a page, or an empty span if the page was never written.</summary>
    public abstract ReadOnlySpan<byte> PageForRead(int page);

    /// <summary>Pushes everything written to its backing (a no-op in memory).</summary>
    public abstract void Flush();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>The array in memory, allocated a block at a time when the block is first programmed.</summary>
internal sealed class MemoryNandStore : NandStore
{
    private readonly byte[] _states;
    private readonly uint[] _eraseCounts;
    private readonly byte[] _flags;
    private readonly byte[]?[] _blocks;

    public MemoryNandStore(NandGeometry geometry)
        : base(geometry)
    {
        _states = new byte[geometry.Pages];
        _eraseCounts = new uint[geometry.Blocks];
        _flags = new byte[geometry.Blocks];
        _blocks = new byte[]?[geometry.Blocks];
    }

    public override bool IsNew => true;

    public override Span<byte> States => _states;

    public override Span<uint> EraseCounts => _eraseCounts;

    public override Span<byte> Flags => _flags;

    /// <summary>How many blocks have storage behind them (for tests of sparseness).</summary>
    public int AllocatedBlocks => _blocks.Count(b => b is not null);

    public override Span<byte> PageForWrite(int page)
    {
        int block = page / Geometry.PagesPerBlock;
        byte[] storage = _blocks[block] ??= new byte[Geometry.PagesPerBlock * PageStride];
        return storage.AsSpan((page % Geometry.PagesPerBlock) * PageStride, PageStride);
    }

    public override ReadOnlySpan<byte> PageForRead(int page)
    {
        byte[]? storage = _blocks[page / Geometry.PagesPerBlock];
        return storage is null ? [] : storage.AsSpan((page % Geometry.PagesPerBlock) * PageStride, PageStride);
    }

    public override void Flush()
    {
    }
}
