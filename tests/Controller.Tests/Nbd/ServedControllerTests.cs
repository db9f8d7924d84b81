using System.Diagnostics;
using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Firmware.Config;
using Controller.Firmware.Host;
using Controller.Hosting;

namespace Controller.Tests.Nbd;

/// <summary>The emulated SSD behind serve, driven directly.</summary>
[Trait("Category", "Unit")]
public sealed class ServedControllerTests
{
    [Fact]
    public async Task RealtimeTimingHoldsACompletionUntilTheNandWouldHaveFinished()
    {
        // A page program of 200 ms: a flush that programs pages cannot complete sooner in realtime.
        using ServedController export = EmulatedDevice.Boot(
            Profiles.Load("tiny", ["timing.mode=realtime", "timing.programMicroseconds=200000"]),
            "tiny",
            null,
            "ssd"
        );
        byte[] data = new byte[65536];
        Assert.Equal(
            HostStatus.Ok,
            await export.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.None,
                0,
                data.Length,
                data,
                CancellationToken.None
            )
        );

        long started = Stopwatch.GetTimestamp();
        HostStatus status = await export.ExecuteAsync(
            HostOpcode.Flush,
            HostCommandOptions.None,
            0,
            0,
            Memory<byte>.Empty,
            CancellationToken.None
        );
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal(HostStatus.Ok, status);
        Assert.True(
            elapsed >= TimeSpan.FromMilliseconds(200),
            $"the flush completed after {elapsed.TotalMilliseconds} ms"
        );
    }

    /// <summary>
    /// A broken invariant stops the device cleanly, in the build that ships: the command that broke
    /// it and every later one get EIO, the log says what broke, and the clean shutdown writes
    /// nothing over the bad state (a restart finds the NAND as the last flush left it).
    /// </summary>
    [Fact]
    public async Task ABrokenInvariantStopsTheDeviceCommandsGetIoErrorsAndNothingIsCheckpointed()
    {
        using var temp = new Support.TempDirectory();
        string image = temp.File("ssd.img");
        var log = new StringWriter();
        ResolvedConfig config = Profiles.Load("tiny", ["cache.trimPolicy=zero-fill"]);
        using (
            ServedController broken = EmulatedDevice.Boot(
                config,
                "tiny",
                image,
                "ssd",
                Support.Sabotage.InvariantBreakingStore
            )
        )
        {
            broken.Log = new Controller.Management.ManagementLog(log);
            byte[] data = new byte[65536];
            Array.Fill(data, (byte)0x5A);
            Assert.Equal(
                HostStatus.Ok,
                await broken.ExecuteAsync(
                    HostOpcode.Write,
                    HostCommandOptions.None,
                    0,
                    data.Length,
                    data,
                    CancellationToken.None
                )
            );
            Assert.Equal(
                HostStatus.Ok,
                await broken.ExecuteAsync(
                    HostOpcode.Flush,
                    HostCommandOptions.None,
                    0,
                    0,
                    Memory<byte>.Empty,
                    CancellationToken.None
                )
            );
            Assert.Equal(
                HostStatus.Ok,
                await broken.ExecuteAsync(
                    HostOpcode.Trim,
                    HostCommandOptions.None,
                    16384,
                    16384,
                    Memory<byte>.Empty,
                    CancellationToken.None
                )
            );

            HostStatus intoHole = await broken.ExecuteAsync(
                HostOpcode.Write,
                HostCommandOptions.ForceUnitAccess,
                16384,
                4096,
                data.AsMemory(0, 4096),
                CancellationToken.None
            );
            HostStatus afterwards = await broken.ExecuteAsync(
                HostOpcode.Read,
                HostCommandOptions.None,
                0,
                4096,
                data.AsMemory(0, 4096),
                CancellationToken.None
            );
            broken.Shutdown();

            Assert.Equal((HostStatus.IoError, HostStatus.IoError), (intoHole, afterwards));
            Assert.IsType<Controller.Firmware.Invariants.InvariantViolationException>(broken.Failure);
            Assert.Contains(
                "an invariant broke: sabotage: the write-back of sector 4, trimmed before, breaks an invariant",
                log.ToString(),
                StringComparison.Ordinal
            );
        }

        using ServedController restarted = EmulatedDevice.Boot(config, "tiny", image, "ssd");
        Assert.False(restarted.Mount.Formatted);
        Assert.True(
            restarted.Mount.ReplayedUnits > 0,
            "no checkpoint was taken at the shutdown after the failure, so the restart replays the log"
        );
    }
}
