using System.Diagnostics;
using Controller.Emulator.Cli;
using Controller.Emulator;
using Controller.Hosting;
using Controller.Firmware.Host;

namespace Controller.Tests.Nbd;

/// <summary>The emulated SSD behind serve, driven directly.</summary>
public sealed class ServedControllerTests
{
    [Fact]
    public async Task RealtimeTimingHoldsACompletionUntilTheNandWouldHaveFinished()
    {
        // A page program of 200 ms: a flush that programs pages cannot complete sooner in realtime.
        using ServedController export = EmulatedDevice.Boot(Profiles.Load("tiny", ["timing.mode=realtime", "timing.programMicroseconds=200000"]), "tiny", null, "ssd");
        byte[] data = new byte[65536];
        Assert.Equal(HostStatus.Ok, await export.ExecuteAsync(HostOpcode.Write, HostCommandOptions.None, 0, data.Length, data, CancellationToken.None));

        long started = Stopwatch.GetTimestamp();
        HostStatus status = await export.ExecuteAsync(HostOpcode.Flush, HostCommandOptions.None, 0, 0, Memory<byte>.Empty, CancellationToken.None);
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal(HostStatus.Ok, status);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(200), $"the flush completed after {elapsed.TotalMilliseconds} ms");
    }
}
