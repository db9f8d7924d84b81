using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Firmware.Host;
using Controller.Hosting;
using Controller.Management;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace Controller.Tests.Management;

/// <summary>
/// The management endpoint in process: the emulated SSD on one end of a duplex pipe, the client on the other.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ManagementTests : IAsyncLifetime, IDisposable
{
    private readonly CancellationTokenSource _stop = new(TimeSpan.FromMinutes(2));
    private readonly ManagementLog _log = new(output: null);
    private ServedController _export = null!;
    private Task _serving = Task.CompletedTask;
    private ManagementClient _client = null!;

    public async Task InitializeAsync()
    {
        // zero-fill keeps a punched page whole with its sectors marked holes, which the stats count.
        _export = EmulatedDevice.Boot(Profiles.Load("tiny", ["cache.trimPolicy=zero-fill"]), "tiny", null, "ssd");
        _export.Log = _log;
        (Stream serverEnd, Stream clientEnd) = FullDuplexStream.CreatePair();
        _serving = new ManagementServer(_export, _log, TimeSpan.FromMilliseconds(50)).ServeAsync(
            serverEnd,
            _stop.Token
        );
        _client = await ManagementClient.OpenAsync(clientEnd, _stop.Token);
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _stop.CancelAsync();
        await _serving;
        _export.Dispose();
    }

    public void Dispose() => _stop.Dispose();

    [Fact]
    public async Task StatsCountTheCommandsTheirBytesAndLatencies()
    {
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, Pattern(1, 65536)));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Trim, 16384, new byte[16384], buffer: false));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Read, 0, new byte[32768]));
        Assert.Equal(HostStatus.InvalidArgument, await Execute(HostOpcode.Read, _export.SizeBytes, new byte[4096]));

        DeviceStats stats = await _client.Control.GetStatsAsync(_stop.Token);

        Assert.Equal(_export.SizeBytes, stats.CapacityBytes);
        Assert.Equal(
            (2L, 1L, 1L, 0L, 1L),
            (stats.Host.Reads, stats.Host.Writes, stats.Host.Trims, stats.Host.Flushes, stats.Host.Errors)
        );
        Assert.Equal(
            (32768L, 65536L, 16384L),
            (stats.Host.BytesRead, stats.Host.BytesWritten, stats.Host.BytesTrimmed)
        );
        Assert.Equal(1, stats.LatencyMicroseconds["write"].Count);
        Assert.True(stats.LatencyMicroseconds["write"].P50 > 0);
        Assert.Equal(12, stats.Cache.DirtySectors);
        Assert.Equal(4, stats.Cache.HoleSectors);
        Assert.Equal(_export.SizeBytes / 4096, stats.Ftl.LogicalSectors);
        Assert.True(stats.Ftl.FreeBlocks > 0);
    }

    [Fact]
    public async Task TheCachesCountersAreKeptAcrossAPowerCut()
    {
        // zero-fill zeroes the punched sectors in place: one partial punch, 16 KiB zeroed, then a
        // power cut (a new cache after recovery), then another punch.
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, Pattern(1, 65536)));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Trim, 16384, new byte[16384], buffer: false));
        await _client.Control.PowerCutAsync(_stop.Token);
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, Pattern(2, 65536)));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Trim, 32768, new byte[8192], buffer: false));

        DeviceStats stats = await _client.Control.GetStatsAsync(_stop.Token);

        Assert.Equal(2, stats.Cache.PartialPagePunches);
        Assert.Equal(16384 + 8192, stats.Cache.BytesZeroed);
        Assert.Equal((0L, 0L), (stats.Cache.SplitFallbacks, stats.Cache.MigrateFallbacks));
    }

    [Fact]
    public async Task TelemetrySendsAStatsLinePerIntervalWithRates()
    {
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, Pattern(2, 8192)));
        var samples = new List<TelemetrySample>();
        await foreach (TelemetrySample sample in _client.TelemetryAsync(_stop.Token))
        {
            samples.Add(sample);
            if (samples.Count == 1)
            {
                Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 8192, Pattern(3, 8192)));
            }

            if (samples.Sum(s => s.WriteIops * s.IntervalSeconds) >= 0.5)
            {
                break;
            }
        }

        TelemetrySample last = samples[^1];
        Assert.Equal(2, last.Stats.Host.Writes);
        Assert.True(last.IntervalSeconds > 0);
        Assert.True(last.WriteMibPerSecond > 0);
        Assert.EndsWith("Z", last.Time, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckpointWritesBackTheCacheAndIsLogged()
    {
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, Pattern(4, 16384)));
        await using IAsyncEnumerator<string> log = _client.LogAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
        ValueTask<bool> next = log.MoveNextAsync();

        // The log channel is open once the server has accepted it; until then lines are not sent to it.
        CheckpointResult first = await _client.Control.CheckpointAsync(_stop.Token);
        for (int i = 0; i < 100 && !next.IsCompleted; i++)
        {
            await Task.Delay(20);
            await _client.Control.CheckpointAsync(_stop.Token);
        }

        Assert.True(await next);
        Assert.Contains("checkpoint", log.Current, StringComparison.Ordinal);
        Assert.Equal(4, first.SectorsWrittenBack);
        Assert.Equal(0, (await _client.Control.GetStatsAsync(_stop.Token)).Cache.DirtySectors);
    }

    [Fact]
    public async Task InjectedProgramFailuresHappenAndTheFtlKeepsTheData()
    {
        FaultSettings settings = await _client.Control.SetFaultsAsync(
            new FaultRequest { FailNextPrograms = 2, RawBitErrorRate = 1e-6 },
            _stop.Token
        );
        byte[] data = Pattern(5, 1 << 20);
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, data));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Flush, 0, [], buffer: false));
        await _client.Control.CheckpointAsync(_stop.Token);
        byte[] back = new byte[data.Length];
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Read, 0, back));

        DeviceStats stats = await _client.Control.GetStatsAsync(_stop.Token);
        Assert.Equal(1e-6, settings.RawBitErrorRate);
        Assert.Equal(2, stats.Nand.ProgramFailures);
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData(2.0, null, "rawBitErrorRate is a probability from 0 to 0.01, not 2")]
    [InlineData(null, -1, "failNextPrograms (-1)")]
    public async Task ABadFaultRequestIsRefusedByNameAndChangesNothing(double? rate, int? programs, string expected)
    {
        RemoteInvocationException e = await Assert.ThrowsAsync<RemoteInvocationException>(() =>
            _client.Control.SetFaultsAsync(
                new FaultRequest { RawBitErrorRate = rate, FailNextPrograms = programs },
                _stop.Token
            )
        );

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        FaultSettings unchanged = await _client.Control.SetFaultsAsync(new FaultRequest(), _stop.Token);
        Assert.Equal(
            Profiles.Load("tiny", []).Get(Controller.Emulator.EmulatorConfig.RawBitErrorRate),
            unchanged.RawBitErrorRate
        );
    }

    [Fact]
    public async Task APowerCutLosesTheDirtyCacheKeepsFlushedDataAndServesAgain()
    {
        byte[] flushed = Pattern(6, 128 << 10);
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 0, flushed));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Flush, 0, [], buffer: false));
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Write, 1 << 20, Pattern(7, 64 << 10)));
        long dirty = (await _client.Control.GetStatsAsync(_stop.Token)).Cache.DirtySectors;
        _export.EndConnections = () => 3;

        PowerCutResult cut = await _client.Control.PowerCutAsync(_stop.Token);

        byte[] back = new byte[flushed.Length];
        Assert.Equal(HostStatus.Ok, await Execute(HostOpcode.Read, 0, back));
        Assert.Equal(flushed, back);
        Assert.Equal(3, cut.ConnectionsEnded);
        Assert.Equal(16, dirty);
        Assert.Equal(dirty, cut.DirtySectorsLost);
        Assert.True(cut.RecoveryPageReads > 0);
        DeviceStats after = await _client.Control.GetStatsAsync(_stop.Token);
        Assert.Equal(1, after.PowerCuts);
        Assert.Equal(0, after.Cache.DirtySectors);
    }

    private async Task<HostStatus> Execute(HostOpcode opcode, long offset, byte[] data, bool buffer = true) =>
        await _export.ExecuteAsync(
            opcode,
            HostCommandOptions.None,
            offset,
            data.Length,
            buffer ? data : Memory<byte>.Empty,
            _stop.Token
        );

    private static byte[] Pattern(byte seed, int length) =>
        [.. Enumerable.Range(0, length).Select(i => (byte)(seed + (i * 13)))];
}
