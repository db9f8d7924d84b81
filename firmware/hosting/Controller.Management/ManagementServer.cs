using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace Controller.Management;

/// <summary>
/// Serves the management endpoint on one connection: a <see cref="MultiplexingStream"/> on which the
/// client offers any of the channels <c>control</c> (JSON-RPC, <see cref="IManagementService"/>),
/// <c>telemetry</c> (a JSON <see cref="TelemetrySample"/> per line at the interval) and <c>log</c>
/// (the server's log lines). The connection ends when the client goes or the server stops.
/// </summary>
public sealed class ManagementServer
{
    /// <summary>The name of the JSON-RPC channel.</summary>
    public const string ControlChannel = "control";

    /// <summary>The name of the telemetry channel.</summary>
    public const string TelemetryChannel = "telemetry";

    /// <summary>The name of the log channel.</summary>
    public const string LogChannel = "log";

    private readonly IManagementService _service;
    private readonly ManagementLog _log;
    private readonly TimeSpan _telemetryInterval;

    /// <summary>
    /// A server for <paramref name="service"/>, sending telemetry every <paramref name="telemetryInterval"/>.
    /// </summary>
    public ManagementServer(IManagementService service, ManagementLog log, TimeSpan telemetryInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(telemetryInterval, TimeSpan.Zero);
        _service = service ?? throw new ArgumentNullException(nameof(service));
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _telemetryInterval = telemetryInterval;
    }

    /// <summary>Serves one connection until the client leaves or <paramref name="stop"/> is cancelled.</summary>
    public async Task ServeAsync(Stream connection, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await using MultiplexingStream mux = await MultiplexingStream
            .CreateAsync(connection, stop)
            .ConfigureAwait(false);
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task[] channels =
        [
            ServeChannelAsync(mux, ControlChannel, ServeControlAsync, ended.Token),
            ServeChannelAsync(mux, TelemetryChannel, ServeTelemetryAsync, ended.Token),
            ServeChannelAsync(mux, LogChannel, ServeLogAsync, ended.Token),
        ];
        try
        {
            await mux.Completion.WaitAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The server stops; the connection goes with it.
        }
        finally
        {
            await ended.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(channels).ConfigureAwait(false);
        }
    }

    /// <summary>Accepts the channel <paramref name="name"/> each time the client offers it, and serves it.</summary>
    private static async Task ServeChannelAsync(
        MultiplexingStream mux,
        string name,
        Func<Stream, CancellationToken, Task> serve,
        CancellationToken ended
    )
    {
        var served = new List<Task>();
        try
        {
            while (!ended.IsCancellationRequested)
            {
                MultiplexingStream.Channel channel = await mux.AcceptChannelAsync(name, ended).ConfigureAwait(false);
                served.Add(ServeOneAsync(channel, serve, ended));
            }
        }
        catch (Exception e)
            when (e
                    is OperationCanceledException
                        or ObjectDisposedException
                        or MultiplexingProtocolException
                        or EndOfStreamException
                        or IOException
            )
        {
            // The connection ended.
        }

        await Task.WhenAll(served).ConfigureAwait(false);
    }

    private static async Task ServeOneAsync(
        MultiplexingStream.Channel channel,
        Func<Stream, CancellationToken, Task> serve,
        CancellationToken ended
    )
    {
        await using Stream stream = channel.AsStream();
        try
        {
            await serve(stream, ended).ConfigureAwait(false);
        }
        catch (Exception e)
            when (e is OperationCanceledException or ObjectDisposedException or IOException or ConnectionLostException)
        {
            // The client closed the channel or the connection.
        }
    }

    private async Task ServeControlAsync(Stream stream, CancellationToken ended)
    {
        using var rpc = new JsonRpc(new HeaderDelimitedMessageHandler(stream, stream, ManagementJson.Formatter()));
        rpc.AddLocalRpcTarget<IManagementService>(_service, null);
        rpc.StartListening();
        await rpc.Completion.WaitAsync(ended).ConfigureAwait(false);
    }

    private async Task ServeTelemetryAsync(Stream stream, CancellationToken ended)
    {
        using var timer = new PeriodicTimer(_telemetryInterval);
        DeviceStats previous = await _service.GetStatsAsync(ended).ConfigureAwait(false);
        long previousTicks = Stopwatch.GetTimestamp();
        while (await timer.WaitForNextTickAsync(ended).ConfigureAwait(false))
        {
            DeviceStats now = await _service.GetStatsAsync(ended).ConfigureAwait(false);
            long ticks = Stopwatch.GetTimestamp();
            TelemetrySample sample = Telemetry.Sample(
                previous,
                now,
                Stopwatch.GetElapsedTime(previousTicks, ticks).TotalSeconds,
                DateTime.UtcNow
            );
            byte[] line = JsonSerializer.SerializeToUtf8Bytes(sample, ManagementJson.Options);
            await stream.WriteAsync(line, ended).ConfigureAwait(false);
            await stream.WriteAsync("\n"u8.ToArray(), ended).ConfigureAwait(false);
            await stream.FlushAsync(ended).ConfigureAwait(false);
            (previous, previousTicks) = (now, ticks);
        }
    }

    private async Task ServeLogAsync(Stream stream, CancellationToken ended)
    {
        await foreach (string line in _log.FollowAsync(ended).ConfigureAwait(false))
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), ended).ConfigureAwait(false);
            await stream.FlushAsync(ended).ConfigureAwait(false);
        }
    }
}

/// <summary>Turns two stats snapshots into a telemetry sample.</summary>
public static class Telemetry
{
    /// <summary>
    /// The rates between <paramref name="before"/> and <paramref name="after"/>, <paramref name="seconds"/> apart.
    /// </summary>
    public static TelemetrySample Sample(DeviceStats before, DeviceStats after, double seconds, DateTime utc)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        double Rate(long from, long to) => seconds > 0 ? Math.Max(0, to - from) / seconds : 0;
        return new TelemetrySample
        {
            Time = utc.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            IntervalSeconds = Math.Round(seconds, 3),
            Iops = Math.Round(Rate(before.Host.Commands, after.Host.Commands), 1),
            ReadIops = Math.Round(Rate(before.Host.Reads, after.Host.Reads), 1),
            WriteIops = Math.Round(Rate(before.Host.Writes, after.Host.Writes), 1),
            ReadMibPerSecond = Math.Round(Rate(before.Host.BytesRead, after.Host.BytesRead) / (1 << 20), 2),
            WriteMibPerSecond = Math.Round(Rate(before.Host.BytesWritten, after.Host.BytesWritten) / (1 << 20), 2),
            Stats = after,
        };
    }
}

/// <summary>The JSON of the management endpoint: camelCase names, on every channel.</summary>
public static class ManagementJson
{
    /// <summary>The serializer options of every channel.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);

    /// <summary>A JSON-RPC formatter with <see cref="Options"/>.</summary>
    public static SystemTextJsonFormatter Formatter() => new() { JsonSerializerOptions = Options };
}
