using System.Device.Spi;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

/// <summary>
/// The SPI NAND driver's bytes on the wire, against a fake that records every transfer and answers as a chip would.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SpiNandDriverTests
{
    [Fact]
    public void InitializeResetsChecksTheIdUnlocksAndSetsEccAndBufferMode()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        spi.Config = 0x40; // OTP left on by something earlier: the driver clears it

        driver.Initialize();

        Assert.Equal(["FF", "0FC000", "9F00000000", "1FA000", "0FB000", "1FB018"], spi.Frames);
    }

    [Fact]
    public void TheGigaDeviceChipIsReadWithAnAddressByteAndHasNoBufferBit()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("gd5f1gq4uexxg.json");

        driver.Initialize();

        Assert.Equal(["FF", "0FC000", "9F000000", "1FA000", "0FB000", "1FB010"], spi.Frames);
    }

    [Fact]
    public void AWrongIdIsRefusedByName()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        spi.Id = [0xC8, 0xD1, 0x00];

        SpiNandException e = Assert.Throws<SpiNandException>(driver.Initialize);

        Assert.Contains("answers READ ID with C8D100, not EFAA21 of the W25N01GV", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APageReadLoadsTheRowWaitsThenReadsPageAndSpareInOneTransfer()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        byte[] data = new byte[2048],
            spare = new byte[64];

        NandCompletion read = driver.ReadPage(new PageAddress(5, 3), data, spare);

        Assert.Equal(NandStatus.Ok, read.Status);
        Assert.Equal(["13000143", "0FC000", "03000000" + new string('0', (2048 + 64) * 2)], spi.Frames);
        Assert.Equal(RecordingSpi.CacheByte(0), data[0]);
        Assert.Equal(RecordingSpi.CacheByte(2048), spare[0]);
    }

    [Theory]
    [InlineData("w25n01gv.json", 0x10, NandStatus.Corrected, 1)]
    [InlineData("w25n01gv.json", 0x20, NandStatus.Uncorrectable, 0)]
    [InlineData("w25n01gv.json", 0x30, NandStatus.Uncorrectable, 0)]
    [InlineData("gd5f1gq4uexxg.json", 0x10, NandStatus.Corrected, 7)]
    [InlineData("gd5f1gq4uexxg.json", 0x30, NandStatus.Corrected, 8)]
    [InlineData("gd5f1gq4uexxg.json", 0x20, NandStatus.Uncorrectable, 0)]
    [InlineData("mt29f1g01abafd.json", 0x10, NandStatus.Corrected, 3)]
    [InlineData("mt29f1g01abafd.json", 0x50, NandStatus.Corrected, 8)]
    [InlineData("mt29f1g01abafd.json", 0x20, NandStatus.Uncorrectable, 0)]
    [InlineData("mt29f1g01abafd.json", 0x70, NandStatus.Uncorrectable, 0)]
    public void TheEccStatusIsReadFromTheLastPollAsTheChipDescribes(
        string chip,
        byte status,
        NandStatus expected,
        int bits
    )
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open(chip);
        spi.Statuses.Enqueue(status);

        NandCompletion read = driver.ReadPage(new PageAddress(0, 0), new byte[2048], []);

        Assert.Equal((expected, bits), (read.Status, read.CorrectedBits));
    }

    [Theory]
    [InlineData("5:4 1=1", "must say 0=0")]
    [InlineData("9:4 0=0", "does not start with the field's bits as HI:LO (0 to 7)")]
    [InlineData(
        "5:4 0=0 7=1",
        "'7=1' in '5:4 0=0 7=1' is not VALUE=BITS or VALUE=x with a value the 2-bit field holds"
    )]
    public void ABadEccStatusTableIsRefusedByName(string table, string expected)
    {
        ConfigException e = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(
                FirmwareConfig.Schema,
                Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
                [$"chip.eccStatus={table}"]
            )
        );

        Assert.Contains("chip.eccStatus", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProgramEnablesWritesLoadsPageAndSpareExecutesAndReportsPFail()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        byte[] data = [.. Enumerable.Repeat((byte)0xA5, 2048)];
        byte[] spare = [.. Enumerable.Repeat((byte)0x5A, 64)];
        spi.Statuses.Enqueue(0x01);
        spi.Statuses.Enqueue(0x08);

        NandCompletion program = driver.ProgramPage(new PageAddress(1, 2), data, spare);

        Assert.Equal(NandStatus.ProgramFailed, program.Status);
        Assert.Equal(
            ["06", "020000" + Convert.ToHexString(data) + Convert.ToHexString(spare), "10000042", "0FC000", "0FC000"],
            spi.Frames
        );
    }

    [Fact]
    public void AnEraseEnablesWritesErasesTheBlocksFirstRowAndReportsEFail()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        spi.Statuses.Enqueue(0x04);

        NandCompletion erase = driver.EraseBlock(1023);

        Assert.Equal(NandStatus.EraseFailed, erase.Status);
        Assert.Equal(["06", "D800FFC0", "0FC000"], spi.Frames);
    }

    [Fact]
    public void BusyIsPolledThroughTheClockAndAStuckChipTimesOut()
    {
        (SpiNandDevice driver, RecordingSpi spi, VirtualClock clock) = Open("w25n01gv.json");
        spi.Statuses.Enqueue(0x01);
        spi.Statuses.Enqueue(0x01);
        driver.EraseBlock(0);
        Assert.Equal(10_000, clock.NowNanoseconds);

        spi.StuckBusy = true;
        SpiNandException e = Assert.Throws<SpiNandException>(() => driver.EraseBlock(0));
        Assert.Contains("stayed busy for 400 ms waiting for a block erase", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFactoryBadBlockIsMarkedInSpareBytesZeroAndOneOfPageZero()
    {
        (SpiNandDevice driver, RecordingSpi spi, _) = Open("w25n01gv.json");
        spi.SpareMarker = 0xFF;
        bool good = driver.IsFactoryBad(7);
        spi.SpareMarker = 0x00;
        bool bad = driver.IsFactoryBad(7);

        Assert.False(good);
        Assert.True(bad);
        Assert.Equal("03080000", spi.Frames[^1][..8]); // column 2048: the spare area only
    }

    private static (SpiNandDevice Driver, RecordingSpi Spi, VirtualClock Clock) Open(string chip)
    {
        ResolvedConfig config = ConfigLoader.Load(
            FirmwareConfig.Schema,
            Repository.PathOf("hw-config", "chips", chip),
            []
        );
        SpiNandChip description = SpiNandChip.FromConfig(config);
        var spi = new RecordingSpi
        {
            Id = description.JedecId,
            IdPrefix = description.IdMethod == SpiNandIdMethod.Opcode ? 1 : 2,
        };
        var clock = new VirtualClock();
        return (new SpiNandDevice(spi, description, clock), spi, clock);
    }

    /// <summary>Records every transfer as hex; answers READ ID, GET FEATURE and READ FROM CACHE.</summary>
    private sealed class RecordingSpi : SpiDevice
    {
        public List<string> Frames { get; } = [];

        public Queue<byte> Statuses { get; } = new();

        public byte[] Id { get; set; } = [];

        public int IdPrefix { get; set; } = 2;

        public byte Config { get; set; }

        public bool StuckBusy { get; set; }

        public byte? SpareMarker { get; set; }

        public override SpiConnectionSettings ConnectionSettings { get; } = new(0, 0);

        public static byte CacheByte(int column) => (byte)(column * 7);

        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
        {
            Frames.Add(Convert.ToHexString(writeBuffer));
            readBuffer.Clear();
            switch (writeBuffer[0])
            {
                case SpiNandDevice.ReadId:
                    Id.AsSpan(0, Math.Min(Id.Length, readBuffer.Length - IdPrefix)).CopyTo(readBuffer[IdPrefix..]);
                    break;
                case SpiNandDevice.GetFeature when writeBuffer[1] == SpiNandDevice.StatusRegister:
                    readBuffer[2] =
                        StuckBusy ? SpiNandDevice.Busy
                        : Statuses.Count > 0 ? Statuses.Dequeue()
                        : (byte)0;
                    break;
                case SpiNandDevice.GetFeature when writeBuffer[1] == SpiNandDevice.ConfigurationRegister:
                    readBuffer[2] = Config;
                    break;
                case SpiNandDevice.ReadFromCache:
                    int column = (writeBuffer[1] << 8) | writeBuffer[2];
                    for (int i = 4; i < readBuffer.Length; i++)
                    {
                        readBuffer[i] =
                            SpareMarker is { } marker && column + i - 4 >= 2048 ? marker : CacheByte(column + i - 4);
                    }

                    break;
            }
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Frames.Add(Convert.ToHexString(buffer));

        public override void WriteByte(byte value) => Write([value]);

        public override void Read(Span<byte> buffer) =>
            throw new NotSupportedException("the driver reads only inside full-duplex transfers");

        public override byte ReadByte() =>
            throw new NotSupportedException("the driver reads only inside full-duplex transfers");
    }
}
