using System.Device.Gpio;
using Controller.Board;
using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;
using Controller.Hosting;
using Controller.Management;
using Controller.Tests.Support;

namespace Controller.Tests.Board;

/// <summary>
/// The power-fail signal: a board profile's input (through a fake GPIO driver) and the management
/// endpoint's powerFail on the emulated device. Its edge saves the cache on hold-up energy: what was
/// written and never flushed is there after the power goes; without the edge it is not.
/// </summary>
[Trait("Category", "Interop")]
public sealed class PowerFailTests
{
    private const int Pin = 17;

    [Fact]
    public void ThePinIsAnInputWithItsBiasAndOnlyItsEdgeRaisesTheSignalOnce()
    {
        var driver = new FakeGpioDriver();
        ResolvedConfig config = BoardConfigWith(Pin, "falling", "up");
        (GpioController? gpio, PowerFailInput? input) = BoardHardware.OpenPins(
            () => new GpioController(driver),
            config,
            ("WP#", 5)
        );
        using GpioController owned = gpio!;
        using PowerFailInput watched = input!;
        int raised = 0;
        watched.Raised = () => raised++;

        driver.Drive(Pin, PinValue.High);
        int afterRising = raised;
        driver.Drive(Pin, PinValue.Low);
        driver.Drive(Pin, PinValue.High);
        driver.Drive(Pin, PinValue.Low);

        Assert.Equal(PinMode.InputPullUp, driver.Modes[Pin]);
        Assert.Equal(PinMode.Output, driver.Modes[5]);
        Assert.Equal(0, afterRising);
        Assert.Equal(1, raised);
    }

    [Theory]
    [InlineData("rising", "down", PinMode.InputPullDown)]
    [InlineData("rising", "none", PinMode.Input)]
    public void ARisingEdgeProfileListensForRisingEdges(string edge, string pull, PinMode mode)
    {
        var driver = new FakeGpioDriver();
        (GpioController? gpio, PowerFailInput? input) = BoardHardware.OpenPins(
            () => new GpioController(driver),
            BoardConfigWith(Pin, edge, pull)
        );
        using GpioController owned = gpio!;
        using PowerFailInput watched = input!;
        int raised = 0;
        watched.Raised = () => raised++;

        driver.Values[Pin] = PinValue.High;
        driver.Drive(Pin, PinValue.Low);
        int afterFalling = raised;
        driver.Drive(Pin, PinValue.High);

        Assert.Equal(mode, driver.Modes[Pin]);
        Assert.Equal(0, afterFalling);
        Assert.Equal(1, raised);
    }

    [Fact]
    public void APowerFailPinWithoutPowerLossProtectionOrOnAnOutputPinIsRefused()
    {
        string profile = Repository.PathOf("hw-config", "boards", "raspberrypi-4.json");

        ConfigException noPlp = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(BoardConfig.Schema, profile, [$"board.powerFailPin={Pin}"])
        );
        ConfigException shared = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(
                BoardConfig.Schema,
                profile,
                [.. PlpSets(profile), "board.writeProtectPin=17", $"board.powerFailPin={Pin}"]
            )
        );

        Assert.Contains("power.plp=true", noPlp.Message, StringComparison.Ordinal);
        Assert.Contains("GPIO 17 is also board.writeProtectPin", shared.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheEdgeSavesTheUnflushedWriteOnHoldUpEnergyAndTheFirmwareStops(bool edge)
    {
        // With no edge (the canary), the power goes with the write still in DRAM, and it is lost.
        ResolvedConfig config = BoardConfigWith(Pin, "falling", "up");
        var clock = new MonotonicClock();
        using EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock);
        var driver = new FakeGpioDriver();
        driver.Values[Pin] = PinValue.High;
        byte[] data = [.. Enumerable.Range(0, 32768).Select(i => (byte)(i * 11 + 1))];
        (GpioController? gpio, PowerFailInput? input) = BoardHardware.OpenPins(
            () => new GpioController(driver),
            config
        );
        var device = BoardDevice.Open(
            config,
            new BoardHardware(chip, "the test's bus", [gpio!], input),
            TextWriter.Null
        );
        using (var controller = new ServedController(device, config, "ssd"))
        {
            device.AttachPowerFail(controller, TextWriter.Null);
            Assert.Equal(
                HostStatus.Ok,
                await controller.ExecuteAsync(
                    HostOpcode.Write,
                    HostCommandOptions.None,
                    65536,
                    data.Length,
                    data,
                    CancellationToken.None
                )
            );
            Assert.True((await controller.GetStatsAsync(CancellationToken.None)).Cache.DirtySectors > 0);
            if (edge)
            {
                driver.Drive(Pin, PinValue.Low);
                await WaitForAsync(() => controller.Failure is not null);
                Assert.IsType<PowerFailedException>(controller.Failure);
                Assert.Equal(
                    HostStatus.IoError,
                    await controller.ExecuteAsync(
                        HostOpcode.Read,
                        HostCommandOptions.None,
                        0,
                        4096,
                        new byte[4096],
                        CancellationToken.None
                    )
                );
            }
        }

        // The power goes; the next boot recovers from the chip.
        array.PowerCut();
        array.PowerOn();
        chip.PowerOn();
        using var again = new ServedController(
            BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", []), TextWriter.Null),
            config,
            "ssd"
        );
        byte[] back = new byte[data.Length];
        Assert.Equal(
            HostStatus.Ok,
            await again.ExecuteAsync(
                HostOpcode.Read,
                HostCommandOptions.None,
                65536,
                back.Length,
                back,
                CancellationToken.None
            )
        );

        if (edge)
        {
            Assert.Equal(data, back);
        }
        else
        {
            Assert.NotEqual(data, back);
        }
    }

    [Fact]
    public async Task TheEmulatedDeviceRaisesItFromTheManagementEndpointSavesAndServesAgain()
    {
        ResolvedConfig config = Profiles.Load("tiny", PlpSets(null));
        using ServedController controller = EmulatedDevice.Boot(config, "tiny", null, "ssd");
        byte[] data = [.. Enumerable.Range(0, 65536).Select(i => (byte)(i * 3 + 7))];
        Assert.Equal(
            HostStatus.Ok,
            await controller.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.None,
                0,
                data.Length,
                data,
                CancellationToken.None
            )
        );

        PowerFailResult result = await controller.PowerFailAsync(CancellationToken.None);
        byte[] back = new byte[data.Length];
        HostStatus read = await controller.ExecuteAsync(
            HostOpcode.Read,
            HostCommandOptions.None,
            0,
            back.Length,
            back,
            CancellationToken.None
        );
        DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);

        Assert.Equal(16, result.DirtySectorsSaved);
        Assert.True(
            result.PagesSavedOnHoldUp > 0 && result.PagesSavedOnHoldUp <= result.HoldUpBudgetPages,
            $"{result.PagesSavedOnHoldUp} pages of {result.HoldUpBudgetPages}"
        );
        Assert.NotNull(result.Cut);
        Assert.Equal(0, result.Cut.DirtySectorsLost);
        Assert.Equal(HostStatus.Ok, read);
        Assert.Equal(data, back);
        Assert.Equal(1, stats.PowerCuts);
        Assert.Null(controller.Failure);
    }

    [Fact]
    public async Task WithoutPowerLossProtectionThePowerFailRequestIsRefusedAndChangesNothing()
    {
        using ServedController controller = EmulatedDevice.Boot(Profiles.Load("tiny", []), "tiny", null, "ssd");
        Assert.Equal(
            HostStatus.Ok,
            await controller.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.None,
                0,
                4096,
                new byte[4096],
                CancellationToken.None
            )
        );

        InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            controller.PowerFailAsync(CancellationToken.None)
        );
        DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);

        Assert.Contains("power.plp", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, stats.PowerCuts);
        Assert.Equal(1, stats.Cache.DirtySectors);
    }

    [SkippableFact]
    public async Task SsdhostRaisesThePowerFailSignalOnTheEmulatedBoard()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        string profile = Repository.PathOf("hw-config", "boards", "emulated.json");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "ssd-board.dll"), "--board", profile },
        };
        foreach (string set in PlpSets(profile))
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(set);
        }

        using ServerProcess board = await ServerProcess.StartCommandAsync(
            temp,
            start,
            control: true,
            TimeSpan.FromMinutes(1)
        );
        Assert.Equal(0, ExternalTool.Run(qemuIo, "-f", "raw", board.Uri, "-c", "write -P 0x7e 0 128k").ExitCode);

        var (exitCode, output, error) = await HostRun.RunAsync("power-fail", "--control", board.Control);
        var after = ExternalTool.Run(qemuIo, "-f", "raw", board.Uri, "-c", "read -P 0x7e 0 128k");

        Assert.True(exitCode == 0, error);
        Assert.Contains("the power went", output, StringComparison.Ordinal);
        Assert.True(
            after.ExitCode == 0 && !after.Output.Contains("Pattern verification failed", StringComparison.Ordinal),
            after.Output + after.Error
        );
    }

    /// <summary>Power-loss protection with the budget a full cache needs (of the board profile, or of tiny).</summary>
    private static string[] PlpSets(string? profile)
    {
        string[] sets = ["cache.bytes=256k", "ftl.spareFactor=0.25"];
        ResolvedConfig loose = profile is null
            ? Profiles.Load("tiny", sets)
            : ConfigLoader.Load(BoardConfig.Schema, profile, sets);
        return [.. sets, "power.plp=true", $"power.plpBudgetPages={CacheConfig.PlpPagesNeeded(loose)}"];
    }

    private static ResolvedConfig BoardConfigWith(int pin, string edge, string pull)
    {
        string profile = Repository.PathOf("hw-config", "boards", "raspberrypi-4.json");
        return ConfigLoader.Load(
            BoardConfig.Schema,
            profile,
            [
                "nand.blocksPerDie=128",
                "board.led=",
                .. PlpSets(profile),
                $"board.powerFailPin={pin}",
                $"board.powerFailEdge={edge}",
                $"board.powerFailPull={pull}",
            ]
        );
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
