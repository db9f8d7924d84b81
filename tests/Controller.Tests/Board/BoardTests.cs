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
[Trait("Category", "Unit")]
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
        var machine = new FakeMachine
        {
            IsRaspberryPi = true,
            IsSpiActivated = true,
            BoardName = "Raspberry Pi 5 Model B Rev 1.0",
        };
        (int code, _, string error) = Run(
            machine,
            "--board",
            BoardFile("raspberrypi-5"),
            "--set",
            "board.chipSelect=1"
        );

        Assert.Equal(1, code);
        Assert.Contains(
            "/dev/spidev0.1 does not exist on Raspberry Pi 5 Model B Rev 1.0, though config.txt turns SPI on: reboot",
            error,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void APcWithoutSpiIsPointedToTheFt232hAndEmulatedProfiles()
    {
        var machine = new FakeMachine { IsRaspberryPi = false, BoardName = "GenericBoard" };
        (int code, _, string error) = Run(machine, "--board", BoardFile("raspberrypi-4"));

        Assert.Equal(1, code);
        Assert.Contains(
            "/dev/spidev0.0 does not exist: this is not a Raspberry Pi (Iot.Device.Board found GenericBoard)",
            error,
            StringComparison.Ordinal
        );
        Assert.Contains("hw-config/boards/emulated.json", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSpidevChecksPassWhenSpiIsOnAndTheNodeIsThere()
    {
        // The other side of the checks above: with SPI on and the node present, nothing stops the open.
        ResolvedConfig config = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);
        var machine = new FakeMachine
        {
            IsRaspberryPi = true,
            IsSpiActivated = true,
            Nodes = { "/dev/spidev0.0" },
        };

        Assert.Null(BoardOpener.SpidevProblem(config, machine));
        // The node decides (SPI may be on through an overlay config.txt's parser does not know).
        Assert.Null(BoardOpener.SpidevProblem(config, machine with { IsSpiActivated = false }));
        Assert.NotNull(BoardOpener.SpidevProblem(config, machine with { Nodes = [] }));
    }

    [Fact]
    public void AnFt232hThatCannotBeFoundSaysWhatItNeedsAndTheImageExitsNonZero()
    {
        // On a machine without FTDI's D2XX library (CI), or with it and no adapter plugged in.
        (int code, string output, string error) = Run(new FakeMachine(), "--board", BoardFile("ft232h"));

        Assert.Equal(1, code);
        Assert.Matches(
            "cannot look for an FT232H: FTDI's D2XX library was not found.*libftd2xx|no FT232H adapter found: plug it in",
            error
        );
        Assert.Single(error.Trim().Split('\n'));
        Assert.DoesNotContain("serving", output, StringComparison.Ordinal);
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
        (int faults, _, string faultError) = Run(
            new FakeMachine(),
            "--board",
            BoardFile("raspberrypi-4"),
            "--set",
            "faults.rawBitErrorRate=0.001"
        );
        (int image, _, string imageError) = Run(
            new FakeMachine(),
            "--board",
            BoardFile("raspberrypi-4"),
            "--image",
            "/tmp/x.img"
        );
        (int missing, _, string missingError) = Run(new FakeMachine(), "--listen", "nbd://127.0.0.1:1");
        (int bad, _, string badError) = Run(
            new FakeMachine(),
            "--board",
            BoardFile("raspberrypi-4"),
            "--set",
            "board.clockHz=1"
        );

        Assert.Equal((2, 2, 2, 2), (faults, image, missing, bad));
        Assert.Contains(
            "faults.rawBitErrorRate is the emulator's; a real chip (spidev) has its own faults",
            faultError,
            StringComparison.Ordinal
        );
        Assert.Contains(
            "--image /tmp/x.img: only an emulated chip keeps its NAND in a file",
            imageError,
            StringComparison.Ordinal
        );
        Assert.Contains("--board FILE is needed", missingError, StringComparison.Ordinal);
        Assert.Contains("board.clockHz", badError, StringComparison.Ordinal);
    }

    [Fact]
    public void AnIncludeThatIsMissingOrLoopsIsABadProfile()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("missing.json"), """{ "include": "nowhere.json" }""");
        File.WriteAllText(temp.File("loop.json"), """{ "include": "loop.json" }""");

        ConfigException missing = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(BoardConfig.Schema, temp.File("missing.json"), [])
        );
        ConfigException loop = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(BoardConfig.Schema, temp.File("loop.json"), [])
        );

        Assert.Contains("include: 'nowhere.json' cannot be read", missing.Message, StringComparison.Ordinal);
        Assert.Contains("includes nest deeper than", loop.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProfilesOwnKeysOverrideTheChipItIncludes()
    {
        ResolvedConfig chip = ConfigLoader.Load(
            FirmwareConfig.Schema,
            Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
            []
        );
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);

        Assert.Equal(67_108_864, chip.Get(Controller.Firmware.Cache.CacheConfig.Bytes));
        Assert.Equal(16_777_216, board.Get(Controller.Firmware.Cache.CacheConfig.Bytes));
        Assert.Equal(chip.Get(FirmwareConfig.BlocksPerDie), board.Get(FirmwareConfig.BlocksPerDie));
    }

    [Fact]
    public void WriteProtectAndHoldAreDrivenHighAsOutputs()
    {
        var driver = new FakeGpioDriver();
        using GpioController? gpio = BoardHardware.HoldHigh(
            () => new GpioController(driver),
            ("WP#", 25),
            ("HOLD#", 24)
        );

        Assert.NotNull(gpio);
        Assert.Equal(PinMode.Output, driver.Modes[25]);
        Assert.Equal(PinMode.Output, driver.Modes[24]);
        Assert.Equal(PinValue.High, driver.Values[25]);
        Assert.Equal(PinValue.High, driver.Values[24]);
        Assert.Null(
            BoardHardware.HoldHigh(
                () => throw new InvalidOperationException("no GPIO is opened when both are tied high"),
                ("WP#", -1),
                ("HOLD#", -1)
            )
        );
    }

    [Fact]
    public void APinThatCannotBeDrivenIsABoardErrorNamingIt()
    {
        var driver = new FakeGpioDriver { Refused = 24 };

        BoardException e = Assert.Throws<BoardException>(() =>
            BoardHardware.HoldHigh(() => new GpioController(driver), ("WP#", 25), ("HOLD#", 24))
        );

        Assert.Contains("cannot drive HOLD# high on GPIO 24", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A session on a real chip (the driver over the SPI bus, on the monotonic clock), recorded: the
    /// replay has no chip, and answers every NAND operation and clock reading from the recording,
    /// to the session's hash.
    /// </summary>
    [Fact]
    public async Task ARealChipSessionReplaysFromItsRecordedOutcomes()
    {
        ResolvedConfig config = ConfigLoader.Load(
            BoardConfig.Schema,
            BoardFile("raspberrypi-4"),
            ["nand.blocksPerDie=128", "cache.bytes=256k", "board.led="]
        );
        using var temp = new TempDirectory();
        string path = temp.File("chip.rec");
        var clock = new MonotonicClock();
        using EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock);
        var recorder = new Controller.Hosting.Recording.SessionRecorder(
            path,
            Controller.Hosting.Recording.RecordingOptions.ConfigJson(config),
            "a Pi",
            Controller.Hosting.Recording.RecordedData.Digest,
            Controller.Hosting.Recording.RecordedClock.Reads,
            Controller.Hosting.Recording.RecordedNand.Outcomes,
            jumpsToEvents: false
        );
        ulong hash;
        using (
            var controller = new ServedController(
                BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", []), TextWriter.Null, recorder),
                config,
                "ssd",
                recorder: recorder
            )
        )
        {
            byte[] buffer = new byte[32768];
            for (int i = 0; i < 40; i++)
            {
                HostOpcode opcode = i % 3 == 2 ? HostOpcode.Read : HostOpcode.Write;
                Assert.Equal(
                    HostStatus.Ok,
                    await controller.ExecuteAsync(
                        opcode,
                        i % 5 == 0 ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None,
                        (i * 12288) % (1 << 20),
                        buffer.Length,
                        buffer,
                        CancellationToken.None
                    )
                );
            }

            controller.Shutdown();
            hash = controller.TraceHash;
        }

        using var output = new StringWriter();
        int exitCode = Controller.Emulator.Cli.SessionReplay.Run(path, until: 0, tracePath: null, output);

        Assert.True(exitCode == 0, output.ToString());
        Assert.Contains("NAND: its recorded outcomes", output.ToString(), StringComparison.Ordinal);
        Assert.Contains($"trace-hash={hash:x16} (the session's)", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRealChipDeviceServesAndRefusesPowerCutsAndFaultsWithoutEndingConnections()
    {
        ResolvedConfig config = ConfigLoader.Load(
            BoardConfig.Schema,
            BoardFile("raspberrypi-4"),
            ["nand.blocksPerDie=128", "cache.bytes=1M", "board.led="]
        );
        var clock = new MonotonicClock();
        using EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock);
        byte[] data = [.. Enumerable.Range(0, 65536).Select(i => (byte)(i * 7))];
        byte[] back = new byte[data.Length];
        long programmed;
        using (
            var controller = new ServedController(
                BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", []), TextWriter.Null),
                config,
                "ssd"
            )
        )
        {
            int ended = 0;
            controller.EndConnections = () => ++ended;
            long before = (await controller.GetStatsAsync(CancellationToken.None)).Nand.PagesProgrammed;

            HostStatus write = await controller.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.ForceUnitAccess,
                4096,
                data.Length,
                data,
                CancellationToken.None
            );
            NotSupportedException cut = await Assert.ThrowsAsync<NotSupportedException>(() =>
                controller.PowerCutAsync(CancellationToken.None)
            );
            await Assert.ThrowsAsync<NotSupportedException>(() =>
                controller.SetFaultsAsync(
                    new Controller.Management.FaultRequest { RawBitErrorRate = 0.001 },
                    CancellationToken.None
                )
            );
            Controller.Management.DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);
            HostStatus still = await controller.ExecuteAsync(
                HostOpcode.Read,
                HostCommandOptions.None,
                4096,
                back.Length,
                back,
                CancellationToken.None
            );

            Assert.Equal((HostStatus.Ok, HostStatus.Ok), (write, still));
            Assert.Contains("unplug the board", cut.Message, StringComparison.Ordinal);
            Assert.Equal(0, ended);
            Assert.Equal("Raspberry Pi 4, SPI NAND W25N01GV on the test's bus", stats.Device);
            programmed = stats.Nand.PagesProgrammed - before;
            Assert.True(programmed >= 32, $"{programmed} pages programmed for 64 KiB written with FUA (2 KiB pages)");
            controller.Shutdown();
        }

        // A second boot on the same chip reads the data back from the NAND, through the driver.
        chip.PowerOn();
        using var again = new ServedController(
            BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", []), TextWriter.Null),
            config,
            "ssd"
        );
        Array.Clear(back);
        HostStatus read = await again.ExecuteAsync(
            HostOpcode.Read,
            HostCommandOptions.None,
            4096,
            back.Length,
            back,
            CancellationToken.None
        );
        Controller.Management.DeviceStats reread = await again.GetStatsAsync(CancellationToken.None);

        Assert.False(again.Mount.Formatted);
        Assert.Equal(HostStatus.Ok, read);
        Assert.Equal(data, back);
        Assert.True(reread.Nand.PagesRead >= 32, $"{reread.Nand.PagesRead} pages read");
    }

    [Fact]
    public async Task AChipThatStopsAnsweringFailsTheDeviceCommandsGetIoErrorsAndNothingTouchesItAgain()
    {
        ResolvedConfig config = ConfigLoader.Load(
            BoardConfig.Schema,
            BoardFile("raspberrypi-4"),
            ["nand.blocksPerDie=128", "cache.bytes=1M", "board.led="]
        );
        var clock = new MonotonicClock();
        using EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var unplugged = new UnpluggableSpi(new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock));
        using var controller = new ServedController(
            BoardDevice.Open(config, new BoardHardware(unplugged, "the test's bus", []), TextWriter.Null),
            config,
            "ssd"
        );
        var failed = new TaskCompletionSource<Exception>();
        controller.Failed = e => failed.TrySetResult(e);
        byte[] data = new byte[65536];

        HostStatus before = await controller.ExecuteAsync(
            HostOpcode.Write,
            HostCommandOptions.ForceUnitAccess,
            0,
            data.Length,
            data,
            CancellationToken.None
        );
        unplugged.Unplugged = true;
        HostStatus during = await controller.ExecuteAsync(
            HostOpcode.Write,
            HostCommandOptions.ForceUnitAccess,
            65536,
            data.Length,
            data,
            CancellationToken.None
        );
        int transfersAtFailure = unplugged.Transfers;
        HostStatus after = await controller.ExecuteAsync(
            HostOpcode.Flush,
            HostCommandOptions.None,
            0,
            0,
            Memory<byte>.Empty,
            CancellationToken.None
        );
        Exception failure = await failed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        controller.Shutdown();

        Assert.Equal((HostStatus.Ok, HostStatus.IoError, HostStatus.IoError), (before, during, after));
        Assert.IsType<IOException>(failure);
        Assert.Same(failure, controller.Failure);
        Assert.Equal(transfersAtFailure, unplugged.Transfers);
    }

    [Fact]
    public void AChipHoldingOtherDataIsRefusedWithAHintAndEraseMakesItUsable()
    {
        using var temp = new TempDirectory();
        string image = temp.File("chip.img");
        string[] sets = ["--set", "nand.blocksPerDie=128", "--set", "faults.factoryBadBlockFraction=0.05"];
        ResolvedConfig config = ConfigLoader.Load(
            BoardConfig.Schema,
            BoardFile("emulated"),
            ["nand.blocksPerDie=128", "faults.factoryBadBlockFraction=0.05"]
        );
        var clock = new Controller.Emulator.Time.VirtualClock();
        int foreign;
        int[] factoryBad;
        byte[] spare = new byte[64];
        using (EmulatedNand array = EmulatedNand.OpenImage(image, config, clock))
        {
            factoryBad = [.. Enumerable.Range(0, 128).Where(b => IsMarkedBad(array, clock, b))];
            foreign = Enumerable.Range(5, 100).First(b => !factoryBad.Contains(b));
            clock.Await(array.EraseBlock(foreign));
            byte[] data = new byte[2048];
            data.AsSpan().Fill(0x42);
            spare.AsSpan().Fill(0xFF);
            spare[8] = 0x17; // another system's metadata, the marker bytes left FFh
            clock.Await(array.ProgramPage(new PageAddress(foreign, 0), data, spare));
        }

        Assert.NotEmpty(factoryBad);
        (int serve, _, string refused) = Run(
            new FakeMachine(),
            ["--board", BoardFile("emulated"), "--image", image, .. sets]
        );
        (int unconfirmed, _, string confirm) = Run(
            new FakeMachine(),
            ["erase", "--board", BoardFile("emulated"), "--image", image, .. sets]
        );
        bool stillForeign;
        using (EmulatedNand array = EmulatedNand.OpenImage(image, config, clock))
        {
            stillForeign = !IsErased(array, clock, foreign);
        }

        (int erase, string erased, string eraseError) = Run(
            new FakeMachine(),
            ["erase", "--board", BoardFile("emulated"), "--image", image, "--yes", .. sets]
        );

        Assert.Equal(1, serve);
        Assert.Contains(
            $"the NAND holds data that is not this FTL's (block {foreign} page 0); refusing to format over it",
            refused,
            StringComparison.Ordinal
        );
        Assert.Contains(
            "erase it first (everything on it is lost): ssd-board erase --board NAME --yes",
            refused,
            StringComparison.Ordinal
        );
        Assert.Equal(2, unconfirmed);
        Assert.Contains("add --yes to do it", confirm, StringComparison.Ordinal);
        Assert.True(stillForeign, "erase without --yes changed the chip");
        Assert.True(erase == 0, eraseError);
        Assert.Contains(
            $"erased {128 - factoryBad.Length} blocks; {factoryBad.Length} marked bad by the maker left as they are; 0 failed",
            erased,
            StringComparison.Ordinal
        );
        Assert.Contains("128/128 blocks", erased, StringComparison.Ordinal);
        using (EmulatedNand array = EmulatedNand.OpenImage(image, config, clock))
        {
            Assert.True(IsErased(array, clock, foreign));
            Assert.All(factoryBad, b =>
                Assert.True(IsMarkedBad(array, clock, b), $"factory bad block {b} lost its marker")
            );
        }
    }

    private static bool IsMarkedBad(EmulatedNand array, Controller.Emulator.Time.VirtualClock clock, int block)
    {
        byte[] spare = new byte[64];
        clock.Await(array.ReadPage(new PageAddress(block, 0), [], spare));
        return spare[0] != 0xFF || spare[1] != 0xFF;
    }

    private static bool IsErased(EmulatedNand array, Controller.Emulator.Time.VirtualClock clock, int block)
    {
        byte[] data = new byte[2048],
            spare = new byte[64];
        clock.Await(array.ReadPage(new PageAddress(block, 0), data, spare));
        return data.AsSpan().IndexOfAnyExcept((byte)0xFF) < 0 && spare.AsSpan().IndexOfAnyExcept((byte)0xFF) < 0;
    }

    [Fact]
    public void TheActivityLedIsLitByNandWorkPutOutWhenIdleAndGivenBackAtTheEnd()
    {
        var led = new FakeLed { Trigger = "mmc0" };
        var log = new StringWriter();
        ActivityLed? activity = ActivityLed.TryOpen(
            "ACT,led0",
            log,
            name => name == "ACT" ? throw new DirectoryNotFoundException("no /sys/class/leds/ACT") : led,
            () => ["led0", "led1"]
        );

        Assert.NotNull(activity);
        Assert.Equal(("none", 0), (led.Trigger, led.Brightness));
        activity!.On();
        activity.On();
        activity.On();
        Assert.Equal((255, 2), (led.Brightness, led.Writes));
        activity.Off();
        activity.Off();
        Assert.Equal((0, 3), (led.Brightness, led.Writes));
        activity.On();
        activity.Dispose();

        Assert.Equal(("mmc0", 0, true), (led.Trigger, led.Brightness, led.Disposed));
        Assert.Equal(string.Empty, log.ToString());
    }

    [Fact]
    public void AnLedThatIsMissingOrStopsTakingWritesIsGivenUpWithAWarningNotAnError()
    {
        var log = new StringWriter();
        ActivityLed? none = ActivityLed.TryOpen(
            "ACT,led0",
            log,
            name => throw new UnauthorizedAccessException($"/sys/class/leds/{name}/trigger is root's"),
            () => ["ACT", "PWR"]
        );
        var failing = new FakeLed();
        ActivityLed broken = ActivityLed.TryOpen("ACT", log, _ => failing, () => [])!;
        failing.FailWrites = true;
        broken.On();
        broken.Off();
        broken.On();

        Assert.Null(none);
        Assert.Contains(
            "no activity LED (ACT: /sys/class/leds/ACT/trigger is root's; led0: /sys/class/leds/led0/trigger is root's); LEDs here: ACT, PWR",
            log.ToString(),
            StringComparison.Ordinal
        );
        Assert.Single(log.ToString().Split('\n'), line =>
            line.Contains("stopped taking writes", StringComparison.Ordinal)
        );
    }

    [Fact]
    public void DetectionOnThisMachineTellsWhetherItIsARaspberryPiWithoutThrowing()
    {
        MachineEnvironment machine = MachineEnvironment.Detect();
        bool piModel =
            File.Exists("/proc/device-tree/model")
            && File.ReadAllText("/proc/device-tree/model").StartsWith("Raspberry Pi", StringComparison.Ordinal);

        Assert.Equal(piModel, machine.IsRaspberryPi);
        Assert.False(string.IsNullOrEmpty(machine.BoardName));
    }

    [Fact]
    public void TheWrongChipOnTheBusIsRefusedByItsId()
    {
        // A GigaDevice part answers where the profile expects the Winbond: the driver's ID check stops the boot.
        ResolvedConfig gigadevice = ConfigLoader.Load(
            Controller.Emulator.EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "chips", "gd5f1gq4uexxg.json"),
            []
        );
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);
        var clock = new MonotonicClock();
        EmulatedNand array = EmulatedNand.InMemory(gigadevice, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(gigadevice), clock);

        var owned = new DisposeSpy();
        SpiNandException e = Assert.Throws<SpiNandException>(() =>
            BoardDevice.Open(board, new BoardHardware(chip, "the test's bus", [array, owned]), TextWriter.Null)
        );

        Assert.Contains("not EFAA21 of the W25N01GV", e.Message, StringComparison.Ordinal);
        Assert.True(owned.Disposed, "the board's hardware is let go when the chip is refused");
    }

    [Fact]
    public void ASpiNodeThatCannotBeOpenedAndAMissingGpioLibraryAreBoardErrorsSayingWhatToDo()
    {
        ResolvedConfig board = ConfigLoader.Load(BoardConfig.Schema, BoardFile("raspberrypi-4"), []);

        var owned = new DisposeSpy();
        BoardException spi = Assert.Throws<BoardException>(() =>
            BoardDevice.Open(
                board,
                new BoardHardware(new UnopenableSpi(), "/dev/spidev0.0 at 10 MHz", [owned]),
                TextWriter.Null
            )
        );
        Assert.True(owned.Disposed, "the GPIO pins are let go when the SPI node cannot be opened");
        BoardException gpio = Assert.Throws<BoardException>(() =>
            BoardHardware.HoldHigh(() => throw new DllNotFoundException("libgpiod.so.2"), ("WP#", 25), ("HOLD#", 24))
        );

        Assert.Contains(
            "cannot talk to the chip on /dev/spidev0.0 at 10 MHz: Can not open SPI device file",
            spi.Message,
            StringComparison.Ordinal
        );
        Assert.Contains("spi group", spi.Message, StringComparison.Ordinal);
        Assert.Contains(
            "cannot open the GPIO controller for WP# (GPIO 25) and HOLD# (GPIO 24): libgpiod.so.2",
            gpio.Message,
            StringComparison.Ordinal
        );
        Assert.Contains("install libgpiod2", gpio.Message, StringComparison.Ordinal);
    }

    private static (int Code, string Output, string Error) Run(FakeMachine machine, params string[] args) =>
        BoardRun.Run(() => machine, args);

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

        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer) =>
            throw Unopenable();

        public override void Write(ReadOnlySpan<byte> buffer) => throw Unopenable();

        public override void WriteByte(byte value) => throw Unopenable();

        public override void Read(Span<byte> buffer) => throw Unopenable();

        public override byte ReadByte() => throw Unopenable();

        private static IOException Unopenable() => new("Can not open SPI device file '/dev/spidev0.0'.");
    }

    private sealed class DisposeSpy : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    /// <summary>The chip behind a bus that can be unplugged: every transfer fails from then on.</summary>
    private sealed class UnpluggableSpi(System.Device.Spi.SpiDevice chip) : System.Device.Spi.SpiDevice
    {
        public bool Unplugged { get; set; }

        public int Transfers { get; private set; }

        public override System.Device.Spi.SpiConnectionSettings ConnectionSettings => chip.ConnectionSettings;

        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
        {
            Transfer();
            chip.TransferFullDuplex(writeBuffer, readBuffer);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Transfer();
            chip.Write(buffer);
        }

        public override void WriteByte(byte value)
        {
            Transfer();
            chip.WriteByte(value);
        }

        public override void Read(Span<byte> buffer)
        {
            Transfer();
            chip.Read(buffer);
        }

        public override byte ReadByte()
        {
            Transfer();
            return chip.ReadByte();
        }

        private void Transfer()
        {
            Transfers++;
            if (Unplugged)
            {
                throw new IOException("Error 19 performing SPI data transfer (no such device)");
            }
        }
    }

    private sealed class FakeLed : ILed
    {
        public int MaxBrightness => 255;

        public int Writes { get; private set; }

        public bool FailWrites { get; set; }

        public bool Disposed { get; private set; }

        public string Trigger { get; set; } = "none";

        public int Brightness
        {
            get;
            set
            {
                if (FailWrites)
                {
                    throw new IOException("No such device");
                }

                field = value;
                Writes++;
            }
        }

        public void Dispose() => Disposed = true;
    }
}
