using System.Numerics;
using Controller.Firmware.Flash;

namespace Controller.Firmware.Config;

/// <summary>
/// The keys the firmware reads: the NAND part (geometry, ECC, endurance), its datasheet timings,
/// and, for SPI parts, the chip's identity. Defaults describe the default emulated device.
/// </summary>
public static class FirmwareConfig
{
    /// <summary>Sector size of the flash translation layer; every block holds whole sectors.</summary>
    public const int SectorBytes = 4096;

    /// <summary>Logical block size the host addresses (the advertised minimum).</summary>
    public const int LogicalBlockBytes = 512;

    /// <summary>Free text shown by the info command.</summary>
    public static readonly TextKey Description = new("description", "what this profile describes", string.Empty);

    /// <summary>Independent NAND channels (buses).</summary>
    public static readonly IntegerKey Channels = new(
        "nand.channels",
        "independent buses between controller and dies",
        4,
        1,
        32
    );

    /// <summary>Dies on each channel.</summary>
    public static readonly IntegerKey DiesPerChannel = new(
        "nand.diesPerChannel",
        "dies sharing each channel",
        2,
        1,
        16
    );

    /// <summary>Erase blocks on each die.</summary>
    public static readonly IntegerKey BlocksPerDie = new(
        "nand.blocksPerDie",
        "erase blocks on each die",
        128,
        1,
        1 << 20
    );

    /// <summary>Pages in each erase block.</summary>
    public static readonly IntegerKey PagesPerBlock = new(
        "nand.pagesPerBlock",
        "pages in each erase block",
        64,
        1,
        4096
    );

    /// <summary>Data bytes in a page.</summary>
    public static readonly IntegerKey PageBytes = new(
        "nand.pageBytes",
        "data bytes in a page (a power of two)",
        16384,
        LogicalBlockBytes,
        64 << 10,
        isByteSize: true
    );

    /// <summary>Spare (out-of-band) bytes in a page.</summary>
    public static readonly IntegerKey SpareBytes = new(
        "nand.spareBytes",
        "spare (out-of-band) bytes in a page",
        1872,
        0,
        16 << 10,
        isByteSize: true
    );

    /// <summary>Rated program/erase cycles of a block.</summary>
    public static readonly IntegerKey EnduranceCycles = new(
        "nand.enduranceCycles",
        "rated program/erase cycles of a block",
        3000,
        1,
        10_000_000
    );

    /// <summary>Data bytes covered by one ECC codeword.</summary>
    public static readonly IntegerKey EccCodewordBytes = new(
        "nand.eccCodewordBytes",
        "data bytes covered by one ECC codeword (divides the page)",
        1024,
        64,
        64 << 10,
        isByteSize: true
    );

    /// <summary>Bit errors one ECC codeword corrects.</summary>
    public static readonly IntegerKey EccCorrectableBits = new(
        "nand.eccCorrectableBits",
        "bit errors one ECC codeword corrects",
        40,
        0,
        1024
    );

    /// <summary>Whether completions wait for the NAND latency in wall time.</summary>
    public static readonly TextKey TimingMode = new(
        "timing.mode",
        "none: NAND costs no wall time (virtual time is still kept); realtime: completions wait for it",
        "none",
        "none",
        "realtime"
    );

    /// <summary>tR in microseconds.</summary>
    public static readonly NumberKey ReadMicroseconds = new(
        "timing.readMicroseconds",
        "array read time tR, microseconds",
        50,
        0,
        1e6
    );

    /// <summary>tPROG in microseconds.</summary>
    public static readonly NumberKey ProgramMicroseconds = new(
        "timing.programMicroseconds",
        "page program time tPROG, microseconds",
        600,
        0,
        1e6
    );

    /// <summary>tBERS in microseconds.</summary>
    public static readonly NumberKey EraseMicroseconds = new(
        "timing.eraseMicroseconds",
        "block erase time tBERS, microseconds",
        3000,
        0,
        1e7
    );

    /// <summary>Channel speed in MB/s (10^6 bytes per second).</summary>
    public static readonly NumberKey ChannelMegabytesPerSecond = new(
        "timing.channelMegabytesPerSecond",
        "channel transfer speed, MB/s (10^6 bytes per second)",
        800,
        0.001,
        100_000
    );

    /// <summary>The part's name, for SPI chips.</summary>
    public static readonly TextKey ChipName = new(
        "chip.name",
        "part number of a SPI NAND chip (empty for raw NAND)",
        string.Empty
    );

    /// <summary>The JEDEC ID the chip answers to its read-ID command.</summary>
    public static readonly HexBytesKey ChipJedecId = new(
        "chip.jedecId",
        "JEDEC ID bytes the chip answers to READ ID (9Fh), e.g. \"EF AA 21\"",
        8
    );

    /// <summary>
    /// How the chip answers READ ID (9Fh): after no extra byte, an address byte (00h), or a dummy byte.
    /// </summary>
    public static readonly TextKey ChipIdMethod = new(
        "chip.idMethod",
        "what follows READ ID (9Fh) before the ID bytes: opcode (nothing), address (a 00h address byte) or dummy (a dummy byte)",
        "dummy",
        "opcode",
        "address",
        "dummy"
    );

    /// <summary>
    /// Whether the chip has the buffer-read bit (Winbond's BUF, configuration register bit 3) to set.
    /// </summary>
    public static readonly BooleanKey ChipBufferReadBit = new(
        "chip.bufferReadBit",
        "the chip has a buffer-read mode bit (configuration register B0h bit 3, Winbond BUF) that the driver sets",
        false
    );

    /// <summary>How the status register's ECC field reads.</summary>
    public static readonly TextKey ChipEccStatus = new(
        "chip.eccStatus",
        "the ECC field of the status register (C0h): \"HI:LO\" bits, then VALUE=BITS for corrected reads (0 for none) and VALUE=x for uncorrectable ones; values not listed are uncorrectable",
        "5:4 0=0 1=1 2=x 3=x"
    );

    /// <summary>Whether the chip holds an ONFI parameter page.</summary>
    public static readonly BooleanKey ChipParameterPage = new(
        "chip.parameterPage",
        "the chip holds an ONFI parameter page (three copies of 256 bytes), read with OTP_EN (B0h bit 6) set at page 01h; ssd-board probe checks the description against it",
        false
    );

    /// <summary>The firmware's schema: every key above and the rules relating them.</summary>
    public static ConfigSchema Schema { get; } =
        new(
            [
                Description,
                Channels,
                DiesPerChannel,
                BlocksPerDie,
                PagesPerBlock,
                PageBytes,
                SpareBytes,
                EnduranceCycles,
                EccCodewordBytes,
                EccCorrectableBits,
                TimingMode,
                ReadMicroseconds,
                ProgramMicroseconds,
                EraseMicroseconds,
                ChannelMegabytesPerSecond,
                ChipName,
                ChipJedecId,
                ChipIdMethod,
                ChipBufferReadBit,
                ChipEccStatus,
                ChipParameterPage,
                .. Ftl.FtlConfig.Keys,
                .. Cache.CacheConfig.Keys,
            ],
            [
                new(PageBytes, c =>
                    BitOperations.IsPow2(c.Get(PageBytes))
                        ? null
                        : $"{c.Get(PageBytes)} is not a power of two, so it does not divide into {LogicalBlockBytes}-byte logical blocks"
                ),
                new(
                    EccCodewordBytes,
                    c =>
                        c.Get(PageBytes) % c.Get(EccCodewordBytes) == 0
                            ? null
                            : $"{c.Get(EccCodewordBytes)} does not divide the page of {c.Get(PageBytes)} bytes",
                    PageBytes
                ),
                new(
                    SpareBytes,
                    c =>
                        c.Get(SpareBytes) % (c.Get(PageBytes) / c.Get(EccCodewordBytes)) == 0
                            ? null
                            : $"{c.Get(SpareBytes)} does not split evenly over the {c.Get(PageBytes) / c.Get(EccCodewordBytes)} ECC codewords of a page",
                    PageBytes,
                    EccCodewordBytes
                ),
                new(
                    PagesPerBlock,
                    c =>
                        c.Get(PagesPerBlock) * c.Get(PageBytes) % SectorBytes == 0
                            ? null
                            : $"a block of {c.Get(PagesPerBlock)} x {c.Get(PageBytes)} bytes does not hold whole {SectorBytes}-byte sectors",
                    PageBytes
                ),
                new(
                    BlocksPerDie,
                    c =>
                        c.Get(Channels) * c.Get(DiesPerChannel) * c.Get(BlocksPerDie) * c.Get(PagesPerBlock)
                        <= int.MaxValue
                            ? null
                            : "the array has more than 2^31 pages",
                    Channels,
                    DiesPerChannel,
                    PagesPerBlock
                ),
                new(SpareBytes, c => Ftl.FtlLayout.Problem(Geometry(c)), PageBytes, PagesPerBlock),
                new(
                    Ftl.FtlConfig.SpareFactor,
                    c =>
                        Ftl.FtlLayout.Problem(Geometry(c)) is null
                            ? Ftl
                                .FtlCapacity.Count(
                                    new Ftl.FtlLayout(Geometry(c)),
                                    Geometry(c).Blocks,
                                    c.Get(Ftl.FtlConfig.SpareFactor)
                                )
                                .Problem(new Ftl.FtlLayout(Geometry(c)), Ftl.FtlConfig.HoldUpReserveBlocks(c))
                            : null,
                    Channels,
                    DiesPerChannel,
                    BlocksPerDie,
                    PagesPerBlock,
                    PageBytes,
                    Cache.CacheConfig.Plp,
                    Cache.CacheConfig.Bytes
                ),
                new(ChipEccStatus, c => Flash.SpiNandEccStatus.Problem(c.Get(ChipEccStatus))),
                .. Cache.CacheConfig.Rules,
            ]
        );

    /// <summary>The NAND geometry the configuration describes.</summary>
    public static NandGeometry Geometry(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new NandGeometry(
            (int)config.Get(Channels),
            (int)config.Get(DiesPerChannel),
            (int)config.Get(BlocksPerDie),
            (int)config.Get(PagesPerBlock),
            (int)config.Get(PageBytes),
            (int)config.Get(SpareBytes)
        );
    }
}
