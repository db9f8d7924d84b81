using Controller.Board;
using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;
using Controller.Hosting;
using Controller.Tests.Support;

namespace Controller.Tests.Board;

/// <summary>
/// Dirty expiry in a served device left idle: on a board (the chip behind the SPI driver, the
/// monotonic clock) and in serve on a virtual clock (where the idle wall time passes on it), the
/// unflushed write reaches the NAND on its own; with expiry off it stays in DRAM.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ServedExpiryTests
{
    [Theory]
    [InlineData("board")]
    [InlineData("serve")]
    public async Task AnIdleDeviceWritesBackUnflushedDataOnceItExpires(string device)
    {
        using ServedController controller = Open(device, expireMilliseconds: 100);
        long before = (await controller.GetStatsAsync(CancellationToken.None)).Nand.PagesProgrammed;

        Assert.Equal(
            HostStatus.Ok,
            await controller.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.None,
                8192,
                16384,
                new byte[16384],
                CancellationToken.None
            )
        );
        Controller.Management.DeviceStats stats = await WaitForCleanAsync(controller, TimeSpan.FromSeconds(20));

        Assert.Equal(0, stats.Cache.DirtySectors);
        Assert.True(stats.Nand.PagesProgrammed > before, "the expired sectors were programmed");
    }

    [Theory]
    [InlineData("board")]
    [InlineData("serve")]
    public async Task TheCanaryWithExpiryOffTheWriteStaysDirty(string device)
    {
        using ServedController controller = Open(device, expireMilliseconds: 0);

        Assert.Equal(
            HostStatus.Ok,
            await controller.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.None,
                8192,
                16384,
                new byte[16384],
                CancellationToken.None
            )
        );
        await Task.Delay(500);
        Controller.Management.DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);

        Assert.True(stats.Cache.DirtySectors > 0);
    }

    [Fact]
    public async Task ServeExpiresWhileStatsArePolledFasterThanTheExpiry()
    {
        // Management requests are not host commands: a watcher polling every 20 ms does not hold the expiry back.
        using ServedController controller = Open("serve", expireMilliseconds: 300);

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
        Controller.Management.DeviceStats stats = await WaitForCleanAsync(controller, TimeSpan.FromSeconds(20));

        Assert.Equal(0, stats.Cache.DirtySectors);
    }

    private static async Task<Controller.Management.DeviceStats> WaitForCleanAsync(
        ServedController controller,
        TimeSpan limit
    )
    {
        using var timeout = new CancellationTokenSource(limit);
        while (true)
        {
            Controller.Management.DeviceStats stats = await controller.GetStatsAsync(CancellationToken.None);
            if (stats.Cache.DirtySectors == 0 || timeout.IsCancellationRequested)
            {
                return stats;
            }

            await Task.Delay(20);
        }
    }

    private static ServedController Open(string device, int expireMilliseconds)
    {
        string expiry = $"cache.dirtyExpireMilliseconds={expireMilliseconds}";
        if (device == "serve")
        {
            return EmulatedDevice.Boot(Profiles.Load("tiny", [expiry]), "tiny", null, "ssd");
        }

        ResolvedConfig config = ConfigLoader.Load(
            BoardConfig.Schema,
            Repository.PathOf("hw-config", "boards", "raspberrypi-4.json"),
            ["nand.blocksPerDie=128", "cache.bytes=1M", "board.led=", expiry]
        );
        var clock = new MonotonicClock();
        EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(config), clock);
        return new ServedController(
            BoardDevice.Open(config, new BoardHardware(chip, "the test's bus", []), TextWriter.Null),
            config,
            "ssd"
        );
    }
}
