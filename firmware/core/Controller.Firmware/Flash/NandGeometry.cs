using Controller.Firmware.Invariants;

namespace Controller.Firmware.Flash;

/// <summary>
/// The shape of a NAND array. Blocks are numbered globally, die-major: block <c>b</c> lives on die
/// <c>b / BlocksPerDie</c>. Dies are interleaved over channels (die <c>d</c> is on channel
/// <c>d % Channels</c>), so consecutive dies sit on different buses and their transfers overlap.
/// </summary>
public sealed record NandGeometry
{
    /// <summary>Creates a geometry and checks that its numbers are positive and fit in an int.</summary>
    public NandGeometry(
        int channels,
        int diesPerChannel,
        int blocksPerDie,
        int pagesPerBlock,
        int pageBytes,
        int spareBytes
    )
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(diesPerChannel);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocksPerDie);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pagesPerBlock);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(spareBytes);
        Channels = channels;
        DiesPerChannel = diesPerChannel;
        BlocksPerDie = blocksPerDie;
        PagesPerBlock = pagesPerBlock;
        PageBytes = pageBytes;
        SpareBytes = spareBytes;
        Dies = checked(channels * diesPerChannel);
        Blocks = checked(Dies * blocksPerDie);
        Pages = checked(Blocks * pagesPerBlock);
        Invariant.Holds(Pages >= Blocks, "a block holds at least one page");
    }

    /// <summary>Independent buses; transfers on one channel take turns.</summary>
    public int Channels { get; }

    /// <summary>Dies sharing each channel.</summary>
    public int DiesPerChannel { get; }

    /// <summary>Erase blocks on each die.</summary>
    public int BlocksPerDie { get; }

    /// <summary>Pages in each erase block, programmed in ascending order.</summary>
    public int PagesPerBlock { get; }

    /// <summary>Bytes of data in a page.</summary>
    public int PageBytes { get; }

    /// <summary>Bytes of spare (out-of-band) area in a page.</summary>
    public int SpareBytes { get; }

    /// <summary>All dies of the array.</summary>
    public int Dies { get; }

    /// <summary>All erase blocks of the array.</summary>
    public int Blocks { get; }

    /// <summary>All pages of the array.</summary>
    public int Pages { get; }

    /// <summary>Bytes of data in an erase block.</summary>
    public long BlockBytes => (long)PagesPerBlock * PageBytes;

    /// <summary>Bytes of data in the array, spare areas not counted.</summary>
    public long DataBytes => (long)Pages * PageBytes;

    /// <summary>Bytes of spare area in the array.</summary>
    public long SpareBytesTotal => (long)Pages * SpareBytes;

    /// <summary>The die holding <paramref name="block"/>.</summary>
    public int DieOf(int block) => block / BlocksPerDie;

    /// <summary>The channel <paramref name="die"/> transfers on.</summary>
    public int ChannelOf(int die) => die % Channels;

    /// <summary>True when <paramref name="block"/> names a block of this array.</summary>
    public bool Contains(int block) => (uint)block < (uint)Blocks;

    /// <summary>True when <paramref name="address"/> names a page of this array.</summary>
    public bool Contains(PageAddress address) => Contains(address.Block) && (uint)address.Page < (uint)PagesPerBlock;

    /// <summary>A one-line summary, e.g. "4 ch x 2 dies x 128 blocks x 64 pages x (16384+1872) B".</summary>
    public override string ToString() =>
        $"{Channels} ch x {DiesPerChannel} dies x {BlocksPerDie} blocks x {PagesPerBlock} pages x ({PageBytes}+{SpareBytes}) B";
}

/// <summary>A page: the global block number and the page within it.</summary>
public readonly record struct PageAddress(int Block, int Page)
{
    /// <summary>"block 12 page 3".</summary>
    public override string ToString() => $"block {Block} page {Page}";
}
