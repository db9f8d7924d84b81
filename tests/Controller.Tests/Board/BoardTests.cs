using System.Device.Gpio;
using Controller.Board;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;
using Controller.Hosting;
using Controller.Tests.Support;

namespace Controller.Tests.Board;

/// <summary>
/// The board image off a board: its checks of the machine (a fake one), its profiles, the GPIO
/// pins it holds high (a fake GPIO driver), and the real-chip device with the emulated chip
/// standing in on the SPI bus.
/// </summary>
public sealed class BoardTests
{
    private static string BoardFile(string name) => Repository.PathOf("hw-config", "boards", name + ".json");

    [Fact]
    public void ARaspberryPiWithSpiOffIsToldHowToTurnItOnAndTheImageExitsNonZero()
    {
        var machine = new FakeMachine { IsRaspberryPi = true, IsSpiActivated = false };
        (int code, string output, string error) = Run(machine, "--board", BoardFile("raspberrypi-4"));

        Assert.Equal(1, code);
        Assert.Contains("SPI is not enabled on this Raspberry Pi", error, StringComparison.Ordinal);
        Assert.Contains("dtparam=spi=on", error, StringComparison.Ordinal);
        Assert.Contains("raspi-config nonint do_spi 0", error, StringComparison.Ordinal);
        Assert.DoesNotContain("serving", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ARaspberryPiWhoseConfigTurnsSpiOnButHasNoDeviceNodeIsToldToReboot()
    {
        var machine = new FakeMachine { IsRaspberryPi = true, IsSpiActivated = true, BoardName = "Raspberry Pi 5 Model B Rev 1.0" };
        (int code, _, string error) = Run(machine, "--board", BoardFile("raspberrypi-5"), "--set", "board.chipSelect=1");

        Assert.Equal(1, code);
        Assert.Contains("/dev/spidev0.1 does not exist on Raspberry Pi 5 Model B Rev 1.0, though config.txt turns SPI on: reboot", error, StringComparison.Ordinal);
    }

    [Fact]
    public void APcWithoutSpiIsPointedToTheFt232hAndEmulatedProfiles()
    {
        var machine = new FakeMachine { IsRaspberryPi = false, BoardName = "GenericBoard" };
        (int code, _, string error) = Run(machine, "--board", BoardFile("raspberrypi-4"));

        Assert.Equal(1, code);
        Assert.Contains("/dev/spidev0.0 does not exist: this is not a Raspberry Pi (Iot.Device.Board found GenericBoard)", error, StringComparison.Ordinal);
        Assert.Contains("hw-config/boards/emulated.json", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSpidevChecksPassWhenSpiIsOnAndTheNodeIsThere()
    {
        // The other side of the checks above: with SPI on and the node present, nothing stops the open.
        ResolvedConfig config = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);
        var machine = new FakeMachine { IsRaspberryPi = true, IsSpiActivated = true, Nodes = { "/dev/spidev0.0" } };

        Assert.Null(BoardOpener.SpidevProblem(config, machine));
        // The node decides (SPI may be on through an overlay config.txt's parser does not know).
        Assert.Null(BoardOpener.SpidevProblem(config, machine with { IsSpiActivated = false }));
        Assert.NotNull(BoardOpener.SpidevProblem(config, machine with { Nodes = [] }));
    }

    [Theory]
    [InlineData("raspberrypi-4", "spidev", "W25N01GV")]
    [InlineData("raspberrypi-5", "spidev", "W25N01GV")]
    [InlineData("ft232h", "ft232h", "W25N01GV")]
    [InlineData("emulated", "emulated", "W25N01GV")]
    public void EveryBoardProfileLoadsWithItsChip(string board, string spi, string chip)
    {
        (int code, string output, string error) = Run(new FakeMachine(), "check", "--board", BoardFile(board));

        Assert.True(code == 0, error);
        Assert.Contains($"board.spi = {spi}", output, StringComparison.Ordinal);
        Assert.Contains($"chip.name = {chip}", output, StringComparison.Ordinal);
        Assert.Contains("chip.jedecId = EF AA 21", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ARealChipRefusesTheEmulatorsFaultKeysAndAnImage()
    {
        (int faults, _, string faultError) = Run(new FakeMachine(), "--board", BoardFile("raspberrypi-4"), "--set", "faults.rawBitErrorRate=0.001");
        (int image, _, string imageError) = Run(new FakeMachine(), "--board", BoardFile("raspberrypi-4"), "--image", "/tmp/x.img");
        (int missing, _, string missingError) = Run(new FakeMachine(), "--listen", "nbd://127.0.0.1:1");
        (int bad, _, string badError) = Run(new FakeMachine(), "--board", BoardFile("raspberrypi-4"), "--set", "board.clockHz=1");

        Assert.Equal((2, 2, 2, 2), (faults, image, missing, bad));
        Assert.Contains("faults.rawBitErrorRate is the emulator's; a real chip (spidev) has its own faults", faultError, StringComparison.Ordinal);
        Assert.Contains("--image /tmp/x.img: only an emulated chip keeps its NAND in a file", imageError, StringComparison.Ordinal);
        Assert.Contains("--board FILE is needed", missingError, StringComparison.Ordinal);
        Assert.Contains("board.clockHz", badError, StringComparison.Ordinal);
    }

    [Fact]
    public void AnIncludeThatIsMissingOrLoopsIsABadProfile()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("missing.json"), """{ "include": "nowhere.json" }""");
        File.WriteAllText(temp.File("loop.json"), """{ "include": "loop.json" }""");

        ConfigException missing = Assert.Throws<ConfigException>(() => ConfigLoader.Load(BoardConfig.Schema, temp.File("missing.json"), []));
        ConfigException loop = Assert.Throws<ConfigException>(() => ConfigLoader.Load(BoardConfig.Schema, temp.File("loop.json"), []));

        Assert.Contains("include: 'nowhere.json' cannot be read", missing.Message, StringComparison.Ordinal);
        Assert.Contains("includes nest deeper than", loop.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProfilesOwnKeysOverrideTheChipItIncludes()
    {
        ResolvedConfig chip = ConfigLoader.Load(FirmwareConfig.Schema, Repository.PathOf("hw-config", "chips", "w25n01gv.json"), []);
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);

        Assert.Equal(67_108_864, chip.Get(Controller.Firmware.Cache.CacheConfig.Bytes));
        Assert.Equal(16_777_216, board.Get(Controller.Firmware.Cache.CacheConfig.Bytes));
        Assert.Equal(chip.Get(FirmwareConfig.BlocksPerDie), board.Get(FirmwareConfig.BlocksPerDie));
    }

    [Fact]
    public void WriteProtectAndHoldAreDrivenHighAsOutputs()
    {
        var driver = new FakeGpioDriver();
        using GpioController? gpio = BoardHardware.HoldHigh(() => new GpioController(driver), ("WP#", 25), ("HOLD#", 24));

        Assert.NotNull(gpio);
        Assert.Equal(PinMode.Output, driver.Modes[25]);
        Assert.Equal(PinMode.Output, driver.Modes[24]);
        Assert.Equal(PinValue.High, driver.Values[25]);
        Assert.Equal(PinValue.High, driver.Values[24]);
        Assert.Null(BoardHardware.HoldHigh(() => throw new InvalidOperationException("no GPIO is opened when both are tied high"), ("WP#", -1), ("HOLD#", -1)));
    }

    [Fact]
    public void APinThatCannotBeDrivenIsABoardErrorNamingIt()
    {
        var driver = new FakeGpioDriver { Refused = 24 };

        BoardException e = Assert.Throws<BoardException>(() => BoardHardware.HoldHigh(() => new GpioController(driver), ("WP#", 25), ("HOLD#", 24)));

        Assert.Contains("cannot drive HOLD# high on GPIO 24", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRealChipDeviceServesAndRefusesPowerCutsAndFaultsWithoutEndingConnections()
    {
        ResolvedConfig config = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), ["nand.blocksPerDie=128", "cache.bytes=1M"]);
        var clock = new MonotonicClock();
        EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock);
        BoardDevice device = BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", [array]), TextWriter.Null);
        using var controller = new ServedController(device, config, "ssd");
        int ended = 0;
        controller.EndConnections = () => ++ended;
        byte[] data = [.. Enumerable.Range(0, 65536).Select(i => (byte)(i * 7))];
        byte[] back = new byte[data.Length];

        HostStatus write = await controller.ExecuteAsync(HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 4096, data.Length, data, CancellationToken.None);
        HostStatus read = await controller.ExecuteAsync(HostOpcode.Read, HostCommandOptions.None, 4096, back.Length, back, CancellationToken.None);
        NotSupportedException cut = await Assert.ThrowsAsync<NotSupportedException>(() => controller.PowerCutAsync(CancellationToken.None));
        await Assert.ThrowsAsync<NotSupportedException>(() => controller.SetFaultsAsync(new Controller.Management.FaultRequest { RawBitErrorRate = 0.001 }, CancellationToken.None));
        Controller.Management.DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);

        Assert.Equal((HostStatus.Ok, HostStatus.Ok), (write, read));
        Assert.Equal(data, back);
        Assert.Contains("unplug the board", cut.Message, StringComparison.Ordinal);
        Assert.Equal(0, ended);
        Assert.Equal("Raspberry Pi 4, SPI NAND W25N01GV on the test's bus", stats.Device);
        Assert.True(stats.Nand.PagesProgrammed >= 32, $"{stats.Nand.PagesProgrammed} pages programmed for 64 KiB written through");
    }

    [Fact]
    public void TheWrongChipOnTheBusIsRefusedByItsId()
    {
        // A GigaDevice part answers where the profile expects the Winbond: the driver's ID check stops the boot.
        ResolvedConfig gigadevice = ConfigLoader.Load(Controller.Emulator.EmulatorConfig.Schema, Repository.PathOf("hw-config", "chips", "gd5f1gq4uexxg.json"), []);
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);
        var clock = new MonotonicClock();
        EmulatedNand array = EmulatedNand.InMemory(gigadevice, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(gigadevice), clock);

        SpiNandException e = Assert.Throws<SpiNandException>(() => BoardDevice.Open(board, new BoardHardware(chip, "the test's bus", [array]), TextWriter.Null));

        Assert.Contains("not EFAA21 of the W25N01GV", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASpiNodeThatCannotBeOpenedAndAMissingGpioLibraryAreBoardErrorsSayingWhatToDo()
    {
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);

        BoardException spi = Assert.Throws<BoardException>(() => BoardDevice.Open(board, new BoardHardware(new UnopenableSpi(), "/dev/spidev0.0 at 10 MHz", []), TextWriter.Null));
        BoardException gpio = Assert.Throws<BoardException>(() => BoardHardware.HoldHigh(() => throw new DllNotFoundException("libgpiod.so.2"), ("WP#", 25), ("HOLD#", 24)));

        Assert.Contains("cannot talk to the chip on /dev/spidev0.0 at 10 MHz: Can not open SPI device file", spi.Message, StringComparison.Ordinal);
        Assert.Contains("spi group", spi.Message, StringComparison.Ordinal);
        Assert.Contains("cannot open the GPIO controller for WP# (GPIO 25) and HOLD# (GPIO 24): libgpiod.so.2", gpio.Message, StringComparison.Ordinal);
        Assert.Contains("install libgpiod2", gpio.Message, StringComparison.Ordinal);
    }

    private static (int Code, string Output, string Error) Run(FakeMachine machine, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = Controller.Board.Program.Run(args, output, error, () => machine);
        return (code, output.ToString(), error.ToString());
    }

    private sealed record FakeMachine : IBoardEnvironment
    {
        public string BoardName { get; init; } = "a test machine";

        public bool IsRaspberryPi { get; init; }

        public bool? IsSpiActivated { get; init; }

        public HashSet<string> Nodes { get; init; } = [];

        public bool Exists(string path) => Nodes.Contains(path);
    }

    /// <summary>What SpiDevice.Create gives when the node is missing: every transfer fails.</summary>
    private sealed class UnopenableSpi : System.Device.Spi.SpiDevice
    {
        public override System.Device.Spi.SpiConnectionSettings ConnectionSettings { get; } = new(0, 0);

        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer) => throw Unopenable();

        public override void Write(ReadOnlySpan<byte> buffer) => throw Unopenable();

        public override void WriteByte(byte value) => throw Unopenable();

        public override void Read(Span<byte> buffer) => throw Unopenable();

        public override byte ReadByte() => throw Unopenable();

        private static IOException Unopenable() => new("Can not open SPI device file '/dev/spidev0.0'.");
    }
}
