using System.Device.Spi;
using Controller.Cli;
using Controller.Common;
using Controller.Emulator;
using Controller.Emulator.Nand;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Hosting;
using Controller.Hosting.Recording;

namespace Controller.Board;

/// <summary>
/// <c>ssd-board</c>, the dev-board image: the firmware over a SPI NAND chip on a Raspberry Pi's
/// SPI, an FT232H adapter, or the emulated chip, served over NBD and the management endpoint as
/// the emulator serves it, on the monotonic clock.
/// </summary>
public static class Program
{
    private const string Program_ = "ssd-board";

    /// <summary>
    /// The program, its verbs writing to <paramref name="output"/> and <paramref name="error"/> on
    /// <paramref name="machine"/>.
    /// </summary>
    internal static ProgramSpec Spec(TextWriter output, TextWriter error, Func<IBoardEnvironment> machine)
    {
        OptionSpec board = new(
            "--board",
            "FILE|NAME",
            "a board profile, or the name of one shipped in hw-config/boards: raspberrypi-4, raspberrypi-5, ft232h, or emulated (the emulated chip, no hardware needed)",
            Choices: ["raspberrypi-4", "raspberrypi-5", "ft232h", "emulated"]
        );
        OptionSpec image = new("--image", "FILE", "with an emulated chip only: keep its NAND in FILE");
        OptionSpec yes = new("--yes", null, "go ahead although everything on the chip is lost");
        VerbSpec serve = new(
            "serve",
            "serve the chip over NBD (the default verb: ssd-board --board NAME)",
            "Boots the firmware on the SPI NAND chip the board profile describes and serves it over NBD until Ctrl-C or SIGTERM (systemctl stop), which write back the cache, flush and checkpoint, then exit 0. Pulling the plug is a power cut: at the next boot every flushed write is there. With --record, on a board every reading of its clock is recorded.",
            [board, CommonOptions.Set, image, .. RecordingOptions.Options, .. ServeCommandLine.Options],
            (args, _) => Task.FromResult(Serve(args, output, error, machine))
        )
        {
            Epilogue = $"""
                {ServeCommandLine.SocketActivationNote("ssd-board --board NAME")}

                Examples:
                  sudo ssd-board --board raspberrypi-4 --listen nbd://0.0.0.0 --allow-remote
                  ssd-board --board emulated --listen nbd+unix:///?socket=/tmp/ssd.sock
                """,
        };
        VerbSpec check = new(
            "check",
            "validate a board profile or a chip description and print the resolved keys",
            "Validates a board profile (--board) or a chip description (--config) and prints the resolved keys.",
            [board, new("--config", "FILE", "a chip description (hw-config/chips)"), CommonOptions.Set],
            (args, _) => Task.FromResult(Check(args, output))
        )
        {
            Epilogue = "Example:\n  ssd-board check --board hw-config/boards/raspberrypi-5.json",
        };
        VerbSpec erase = new(
            "erase",
            "erase every block of the chip but the factory-bad ones (needs --yes)",
            "Erases every block of the chip but those its maker marked bad, so a chip that holds other data can be used (the firmware will not format over data it did not write); everything on it is lost, so it needs --yes.",
            [board, CommonOptions.Set, image, yes],
            (args, _) => Task.FromResult(Erase(args, output, error, machine))
        )
        {
            Epilogue = "Example:\n  ssd-board erase --board raspberrypi-4 --yes",
        };
        VerbSpec probe = new(
            "probe",
            "check a freshly wired chip: ID, parameter page, bad blocks, a self-test",
            "Checks a freshly wired chip: its ID against the description, its ONFI parameter page (where the description says it has one: page and spare bytes, pages per block, blocks), the factory bad-block markers and which blocks hold data, then programs, reads back and erases one good block (the last), which it leaves erased. A chip holding data is refused the self-test unless --yes. Prints a report; exits 0 when everything matched and passed, 1 if not.",
            [
                board,
                CommonOptions.Set,
                image,
                new("--yes", null, "run the self-test on a chip that holds data (the block it uses is lost)"),
            ],
            (args, _) => Task.FromResult(Probe(args, output, machine))
        )
        {
            Epilogue =
                "Examples:\n  ssd-board probe --board raspberrypi-4\n  ssd-board probe --board emulated --set 'emulator.spiJedecId=C8 D1 00'   # a chip that answers another ID",
        };
        return new ProgramSpec(
            Program_,
            "ssd-board, the dev-board image: the firmware over a SPI NAND chip on a Raspberry Pi's SPI, an FT232H adapter, or the emulated chip, served over NBD and the management endpoint.",
            [serve, check, erase, probe]
        )
        {
            DefaultVerb = "serve",
            Epilogue =
                "Exit codes: 0 done (stopped cleanly); 1 the board or chip is not usable (SPI off, no device, wrong chip ID, data the firmware did not write) or failed while serving; 2 bad input.",
            ExitCodeOf = e =>
                e switch
                {
                    ConfigException or NandImageException => ExitCodes.Usage,
                    BoardException or SpiNandException or FtlMountException => ExitCodes.Failure,
                    _ => null,
                },
            MessageOf = e =>
                e switch
                {
                    SpiNandException => $"{e.Message}\n{WiringHint}",
                    FtlMountException when e.Message.Contains("refusing to format over it", StringComparison.Ordinal) =>
                        $"{e.Message}\n{Program_}: to use this chip for the SSD, erase it first (everything on it is lost): ssd-board erase --board NAME --yes",
                    _ => e.Message,
                },
        };
    }

    /// <summary>Runs the command line: 0 done, 1 hardware not usable, 2 bad input.</summary>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error, MachineEnvironment.Detect);

    /// <summary>
    /// The command line against <paramref name="machine"/> (the tests hand in a machine of their own).
    /// </summary>
    internal static int Run(string[] args, TextWriter output, TextWriter error, Func<IBoardEnvironment> machine)
    {
        ArgumentNullException.ThrowIfNull(args);
        return CliRunner
            .RunAsync(Spec(output, error, machine), args, output, error, CancellationToken.None)
            .GetAwaiter()
            .GetResult();
    }

    private const string WiringHint =
        $"{Program_}: check the wiring (CS, SCLK, MOSI, MISO, 3.3 V, GND), that WP# and HOLD# are high, and that the profile's chip description matches the part";

    private static int Check(CommandArgs args, TextWriter output)
    {
        ResolvedConfig config =
            args.Single("--board") is { } board
                ? ConfigLoader.Load(BoardConfig.Schema, BoardProfile(board), args.All("--set"))
            : args.Single("--config") is { } file ? ConfigLoader.Load(FirmwareConfig.Schema, file, args.All("--set"))
            : throw new UsageException("check needs --board FILE or --config FILE");
        foreach (ConfigKey key in config.Schema.Keys)
        {
            output.WriteLine($"{key.Path} = {key.Format(config.Get(key))}");
        }

        return 0;
    }

    /// <summary>
    /// Erases every block of the chip that its maker did not mark bad (spare bytes 0-1 of page 0,
    /// which an erase would wipe, so those blocks are left alone). A block whose erase fails is
    /// marked bad the way the Linux SPI-NAND core marks one (00h in the marker), so the firmware
    /// will not use it.
    /// </summary>
    private static int Erase(CommandArgs args, TextWriter output, TextWriter error, Func<IBoardEnvironment> machine)
    {
        (string board, ResolvedConfig config) = LoadBoard(args);
        if (!args.Has("--yes"))
        {
            throw new UsageException(
                $"erase destroys everything on the chip {board} describes ({config.Get(FirmwareConfig.ChipName)}); add --yes to do it"
            );
        }

        using IServedDevice device = OpenDevice(board, config, args.Single("--image"), machine, error);
        SpiNandDevice driver = device switch
        {
            BoardDevice real => real.Driver,
            _ => (SpiNandDevice)device.Nand,
        };
        int blocks = driver.Geometry.Blocks,
            erased = 0,
            factoryBad = 0,
            marked = 0;
        output.WriteLine($"{Program_}: erasing {blocks} blocks of {device.Description}");
        for (int block = 0; block < blocks; block++)
        {
            if (driver.IsFactoryBad(block))
            {
                factoryBad++;
            }
            else if (driver.EraseBlock(block).Status == NandStatus.Ok)
            {
                erased++;
            }
            else
            {
                MarkBad(driver, block);
                marked++;
            }

            if ((block + 1) % Math.Max(1, blocks / 8) == 0 || block + 1 == blocks)
            {
                output.WriteLine($"  {block + 1}/{blocks} blocks");
            }
        }

        output.WriteLine(
            $"{Program_}: erased {erased} blocks; {factoryBad} marked bad by the maker left as they are; {marked} failed to erase and are now marked bad"
        );
        return 0;
    }

    /// <summary>
    /// Probes the chip the profile describes (the emulated one, in memory or in --image, or the real
    /// one on the board's SPI) without booting the firmware: <see cref="ProbeCommand"/>.
    /// </summary>
    private static int Probe(CommandArgs args, TextWriter output, Func<IBoardEnvironment> machine)
    {
        (_, ResolvedConfig config) = LoadBoard(args);
        SpiNandChip chip = SpiNandChip.FromConfig(config);
        var clock = new MonotonicClock();
        string? image = args.Single("--image");
        if (config.Get(BoardConfig.Spi) == "emulated")
        {
            using EmulatedNand array = image is null
                ? EmulatedNand.InMemory(config, clock)
                : EmulatedNand.OpenImage(image, config, clock);
            Emulator.Spi.EmulatedSpiNandChip emulated = Emulator.Spi.EmulatedSpiNandChip.FromConfig(
                config,
                array,
                clock
            );
            return ProbeCommand.Run(
                new SpiNandDevice(emulated, chip, clock),
                chip,
                clock,
                "the emulated SPI bus",
                args.Has("--yes"),
                output
            );
        }

        if (image is not null)
        {
            throw new UsageException($"--image {image}: only an emulated chip keeps its NAND in a file");
        }

        using BoardHardware hardware = BoardOpener.Open(config, machine());
        try
        {
            return ProbeCommand.Run(
                new SpiNandDevice(hardware.Spi, chip, clock),
                chip,
                clock,
                hardware.Where,
                args.Has("--yes"),
                output
            );
        }
        catch (IOException e)
        {
            throw new BoardException(
                $"cannot talk to the chip on {hardware.Where}: {e.Message} (run as root, or add the user to the spi group)"
            );
        }
    }

    private static void MarkBad(SpiNandDevice driver, int block)
    {
        byte[] data = new byte[driver.Geometry.PageBytes];
        byte[] spare = new byte[driver.Geometry.SpareBytes];
        Array.Fill(data, (byte)0xFF);
        Array.Fill(spare, (byte)0xFF);
        spare[0] = spare[1] = 0x00;
        driver.ProgramPage(new PageAddress(block, 0), data, spare);
    }

    /// <summary>
    /// The board profile <c>--board</c> names, resolved with the <c>--set</c> overrides (and, when
    /// <paramref name="serving"/>, what the serving options set: <c>--read-only</c>).
    /// </summary>
    private static (string Board, ResolvedConfig Config) LoadBoard(CommandArgs args, bool serving = false)
    {
        string board = BoardProfile(
            args.Single("--board")
                ?? throw new UsageException(
                    "--board FILE is needed: a profile from hw-config/boards (ssd-board --help)"
                )
        );
        return (
            board,
            ConfigLoader.Load(
                BoardConfig.Schema,
                board,
                serving ? ServeCommandLine.ConfigSets(args) : args.All("--set")
            )
        );
    }

    /// <summary>
    /// The chip the profile describes: the emulated one (in memory, or in <paramref name="image"/>)
    /// on the monotonic clock, or a real one on the board's SPI, initialised by the driver.
    /// </summary>
    private static IServedDevice OpenDevice(
        string board,
        ResolvedConfig config,
        string? image,
        Func<IBoardEnvironment> machine,
        TextWriter error,
        SessionRecorder? recorder = null
    )
    {
        if (config.Get(BoardConfig.Spi) != "emulated")
        {
            return image is null
                ? BoardDevice.Open(config, BoardOpener.Open(config, machine()), error, recorder)
                : throw new UsageException(
                    $"--image {image}: only an emulated chip keeps its NAND in a file; {board} drives a real one (board.spi {config.Get(BoardConfig.Spi)})"
                );
        }

        // Recorded, every reading of the board's clock is an input (the chip is BUSY in real time).
        IClock clock = recorder is null ? new MonotonicClock() : new RecordingClock(new MonotonicClock(), recorder);
        return EmulatedDevice.Open(config, DescribeEmulated(board, config), image, clock);
    }

    private static string DescribeEmulated(string board, ResolvedConfig config) =>
        $"{config.Get(BoardConfig.Name)} ({Path.GetFileName(board)})";

    /// <summary>
    /// A profile file, or the name of one shipped beside the image (raspberrypi-4 for
    /// hw-config/boards/raspberrypi-4.json).
    /// </summary>
    private static string BoardProfile(string board)
    {
        if (
            File.Exists(board)
            || board.Contains('/', StringComparison.Ordinal)
            || board.EndsWith(".json", StringComparison.Ordinal)
        )
        {
            return board;
        }

        string shipped = Path.Combine(AppContext.BaseDirectory, "hw-config", "boards", board + ".json");
        if (File.Exists(shipped))
        {
            return shipped;
        }

        string[] names = Directory.Exists(Path.GetDirectoryName(shipped))
            ?
            [
                .. Directory
                    .GetFiles(Path.GetDirectoryName(shipped)!, "*.json")
                    .Select(Path.GetFileNameWithoutExtension)
                    .Order()!,
            ]
            : [];
        throw new UsageException(
            $"--board {board}: no such file, and no shipped board of that name (shipped: {string.Join(", ", names)})"
        );
    }

    private static int Serve(CommandArgs args, TextWriter output, TextWriter error, Func<IBoardEnvironment> machine)
    {
        (string board, ResolvedConfig config) = LoadBoard(args, serving: true);
        ServeOptions serving = ServeCommandLine.Parse(args, Program_);
        RecordingOptions? record = RecordingOptions.Parse(args);
        // Listening first: a port in use leaves no new image or recording behind.
        using BoundSockets sockets = NbdService.Bind(serving);
        bool realChip = config.Get(BoardConfig.Spi) != "emulated";
        SessionRecorder? recorder = record?.Start(
            config,
            realChip ? board : DescribeEmulated(board, config),
            RecordedClock.Reads,
            jumpsToEvents: false,
            realChip
        );
        IServedDevice device;
        ServedController controller;
        try
        {
            device = OpenDevice(board, config, args.Single("--image"), machine, error, recorder);
        }
        catch
        {
            recorder?.Dispose();
            throw;
        }

        try
        {
            controller = new ServedController(device, config, args.Single("--export") ?? "ssd", recorder: recorder);
            (device as BoardDevice)?.AttachPowerFail(controller, error);
        }
        catch
        {
            device.Dispose();
            recorder?.Dispose();
            throw;
        }

        if (record is not null)
        {
            output.WriteLine(record.Banner(Program_));
        }

        using (controller)
        {
            using var signals = new StopSignals();
            int code = NbdService.Run(controller, serving, sockets, output, Program_, signals.Token);
            if (controller.Failure is SpiNandException)
            {
                error.WriteLine(WiringHint);
            }

            return code;
        }
    }
}
