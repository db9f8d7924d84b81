using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>
/// How the FTL carves a NAND array. Its write unit is the smallest run of pages holding whole
/// 4 KiB sectors: one page when pages are 4 KiB or larger (then a unit holds PageBytes / 4 KiB
/// sectors), two pages of a 2 KiB-page chip for one sector. A physical sector address numbers
/// sectors unit by unit, block by block: <c>(block * UnitsPerBlock + unit) * SectorsPerUnit + slot</c>.
/// </summary>
public sealed class FtlLayout
{
    /// <summary>
    /// Where the FTL's metadata starts in a page's spare area; bytes 0 and 1 are the bad-block marker's.
    /// </summary>
    public const int SpareMetadataOffset = 2;

    /// <summary>Blocks that hold the superblock, written in turn.</summary>
    public const int SuperblockBlocks = 2;

    /// <summary>Null when the FTL can lay out <paramref name="geometry"/>; otherwise why not.</summary>
    public static string? Problem(NandGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        int pagesPerUnit = Math.Max(1, FirmwareConfig.SectorBytes / geometry.PageBytes);
        int sectorsPerUnit = Math.Max(1, geometry.PageBytes / FirmwareConfig.SectorBytes);
        int needed = SpareMetadataOffset + PageMetadata.Size(sectorsPerUnit);
        return geometry.PagesPerBlock % pagesPerUnit != 0
                ? $"a block of {geometry.PagesPerBlock} pages does not hold whole write units of {pagesPerUnit} pages"
            : geometry.SpareBytes < needed
                ? $"a spare area of {geometry.SpareBytes} bytes cannot hold the FTL's page metadata of {needed} bytes"
            : null;
    }

    /// <summary>
    /// Creates the layout of <paramref name="geometry"/>; throws when <see cref="Problem"/> has an objection.
    /// </summary>
    public FtlLayout(NandGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        if (Problem(geometry) is { } problem)
        {
            throw new ArgumentException(problem, nameof(geometry));
        }

        Nand = geometry;
        PagesPerUnit = Math.Max(1, FirmwareConfig.SectorBytes / geometry.PageBytes);
        SectorsPerUnit = Math.Max(1, geometry.PageBytes / FirmwareConfig.SectorBytes);
        UnitsPerBlock = geometry.PagesPerBlock / PagesPerUnit;
        Invariant.Holds(geometry.PagesPerBlock % PagesPerUnit == 0, "a block holds whole units");
        SectorsPerBlock = UnitsPerBlock * SectorsPerUnit;
        UnitBytes = SectorsPerUnit * FirmwareConfig.SectorBytes;
        Invariant.Holds(
            UnitBytes == PagesPerUnit * Math.Min(geometry.PageBytes, FirmwareConfig.SectorBytes) * SectorsPerUnit,
            "a unit is whole pages of whole sectors"
        );
    }

    /// <summary>The NAND array.</summary>
    public NandGeometry Nand { get; }

    /// <summary>NAND pages in one write unit.</summary>
    public int PagesPerUnit { get; }

    /// <summary>Sectors in one write unit.</summary>
    public int SectorsPerUnit { get; }

    /// <summary>Write units in one erase block.</summary>
    public int UnitsPerBlock { get; }

    /// <summary>Sectors in one erase block.</summary>
    public int SectorsPerBlock { get; }

    /// <summary>Data bytes of one write unit.</summary>
    public int UnitBytes { get; }

    /// <summary>Physical sectors of the whole array (addresses run from 0 to this).</summary>
    public long PhysicalSectors => (long)Nand.Blocks * SectorsPerBlock;

    /// <summary>The block of a physical sector address.</summary>
    public int BlockOf(uint physicalSector) => (int)(physicalSector / (uint)SectorsPerBlock);

    /// <summary>The unit within its block of a physical sector address.</summary>
    public int UnitOf(uint physicalSector) => (int)(physicalSector % (uint)SectorsPerBlock) / SectorsPerUnit;

    /// <summary>The slot within its unit of a physical sector address.</summary>
    public int SlotOf(uint physicalSector) => (int)(physicalSector % (uint)SectorsPerUnit);

    /// <summary>The physical sector address of a slot.</summary>
    public uint Address(int block, int unit, int slot) =>
        (uint)((((long)block * UnitsPerBlock) + unit) * SectorsPerUnit) + (uint)slot;

    /// <summary>The NAND page holding page <paramref name="pageInUnit"/> of a unit.</summary>
    public PageAddress PageOf(int block, int unit, int pageInUnit) => new(block, (unit * PagesPerUnit) + pageInUnit);

    /// <summary>
    /// Blocks one checkpoint takes: the map of every raw sector (an upper bound of the user
    /// capacity), one record per block, and a header.
    /// </summary>
    public int CheckpointBlocks =>
        (int)Math.Ceiling((double)CheckpointCodec.MaxBytes(this) / ((long)UnitsPerBlock * UnitBytes));

    /// <summary>
    /// Blocks held for metadata besides the superblocks: room for two checkpoints (the valid one
    /// and the one being written) and the journal between them.
    /// </summary>
    public int MetadataReserveBlocks => (2 * CheckpointBlocks) + 2;

    /// <summary>
    /// The most free blocks below which the host waits for garbage collection (foreground GC):
    /// the part of the metadata reserve not in use (all of it, at most), one block for the host
    /// stream's next allocation and one for GC's own relocations. Every block held free is space
    /// the write amplification model counts as spare, so the FTL holds no more than progress needs.
    /// </summary>
    public int ForegroundGcFreeBlocks => MetadataReserveBlocks + 2;

    /// <summary>The most free blocks below which garbage collection runs when there is nothing else to do.</summary>
    public int BackgroundGcFreeBlocks => ForegroundGcFreeBlocks + Nand.Dies;
}

/// <summary>The user capacity and how it was counted, fixed when the NAND is formatted.</summary>
/// <param name="GoodBlocks">Blocks without a factory bad-block mark.</param>
/// <param name="DataBlocks">Good blocks that can hold user data: all but the superblocks and the metadata
/// reserve.</param>
/// <param name="PhysicalSectors">T: sectors in the data blocks.</param>
/// <param name="LogicalSectors">U: sectors the host sees, T x (1 - Sf) rounded down.</param>
public sealed record FtlCapacity(int GoodBlocks, int DataBlocks, long PhysicalSectors, long LogicalSectors)
{
    /// <summary>Sf as counted: (T - U) / T.</summary>
    public double SpareFactor => (double)(PhysicalSectors - LogicalSectors) / PhysicalSectors;

    /// <summary>
    /// Counts the capacity of <paramref name="layout"/> with <paramref name="goodBlocks"/> good blocks.
    /// </summary>
    public static FtlCapacity Count(FtlLayout layout, int goodBlocks, double spareFactor)
    {
        ArgumentNullException.ThrowIfNull(layout);
        int dataBlocks = goodBlocks - FtlLayout.SuperblockBlocks - layout.MetadataReserveBlocks;
        long physical = (long)Math.Max(0, dataBlocks) * layout.SectorsPerBlock;
        long logical = (long)Math.Floor(physical * (1 - spareFactor));
        return new FtlCapacity(goodBlocks, dataBlocks, physical, logical);
    }

    /// <summary>
    /// The same logical capacity over <paramref name="goodBlocks"/> good blocks, as when blocks have gone bad since the
    /// format.
    /// </summary>
    public FtlCapacity WithGoodBlocks(FtlLayout layout, int goodBlocks) =>
        Count(layout, goodBlocks, 0) with
        {
            LogicalSectors = LogicalSectors,
        };

    /// <summary>
    /// Null when the spare blocks can hold every open block and GC's reserve; otherwise why not.
    /// </summary>
    public string? Problem(FtlLayout layout, int holdUpReserveBlocks = 0)
    {
        ArgumentNullException.ThrowIfNull(layout);
        long spareBlocks = (PhysicalSectors - LogicalSectors) / layout.SectorsPerBlock;
        // An open host block per die and the cold stream's open block, whose unwritten pages GC
        // cannot reclaim; as many again, so that GC's victims hold enough garbage to gain space
        // at a bounded cost; the GC reserve; and (with power-loss protection) the free blocks a
        // save on hold-up energy writes into. With only the open blocks and the reserve covered,
        // a device filled to the last sector had a few invalid sectors per block, and GC gave up.
        long needed = (2 * (layout.Nand.Dies + 1)) + 4 + holdUpReserveBlocks;
        if (DataBlocks <= 0)
        {
            return $"the array has {GoodBlocks} good blocks, too few for the superblocks and {layout.MetadataReserveBlocks} metadata blocks";
        }

        return spareBlocks >= needed ? null
            : holdUpReserveBlocks == 0
                ? $"leaves {spareBlocks} spare blocks; open blocks and garbage collection need at least {needed} on this geometry"
            : $"leaves {spareBlocks} spare blocks; open blocks, garbage collection and the {holdUpReserveBlocks} blocks power-loss protection holds back for saving the cache need at least {needed} on this geometry";
    }
}
