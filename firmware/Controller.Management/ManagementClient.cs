using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace Controller.Management;

/// <summary>A connection to a management endpoint: the control service, and the telemetry and log channels on demand.</summary>
public sealed class ManagementClient : IAsyncDisposable
{
    private readonly MultiplexingStream _mux;
    private readonly JsonRpc _rpc;

    private ManagementClient(MultiplexingStream mux, JsonRpc rpc)
    {
        _mux = mux;
        _rpc = rpc;
        Control = rpc.Attach<IManagementService>();
    }

    /// <summary>The control service (JSON-RPC).</summary>
    public IManagementService Control { get; }

    /// <summary>Connects to <paramref name="uri"/> (<c>tcp://HOST:PORT</c> or <c>unix:PATH</c>).</summary>
    public static async Task<ManagementClient> ConnectAsync(string uri, CancellationToken cancellationToken)
    {
        EndPoint endpoint = ManagementEndpoint.Parse(uri);
        Stream stream = await ManagementEndpoint.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return await OpenAsync(stream, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Speaks the management protocol over <paramref name="connection"/>, which the client then owns.</summary>
    public static async Task<ManagementClient> OpenAsync(Stream connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        MultiplexingStream mux = await MultiplexingStream.CreateAsync(connection, cancellationToken).ConfigureAwait(false);
        try
        {
            MultiplexingStream.Channel control = await mux.OfferChannelAsync(ManagementServer.ControlChannel, cancellationToken).ConfigureAwait(false);
            Stream stream = control.AsStream();
            var rpc = new JsonRpc(new HeaderDelimitedMessageHandler(stream, stream, ManagementJson.Formatter()));
            var client = new ManagementClient(mux, rpc);
            rpc.StartListening();
            return client;
        }
        catch
        {
            await mux.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Telemetry samples as the server sends them, until cancelled or the connection ends.</summary>
    public async IAsyncEnumerable<TelemetrySample> TelemetryAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (string line in LinesAsync(ManagementServer.TelemetryChannel, cancellationToken).ConfigureAwait(false))
        {
            TelemetrySample? sample = JsonSerializer.Deserialize<TelemetrySample>(line, ManagementJson.Options);
            if (sample is not null)
            {
                yield return sample;
            }
        }
    }

    /// <summary>The server's log lines from now on, until cancelled or the connection ends.</summary>
    public IAsyncEnumerable<string> LogAsync(CancellationToken cancellationToken) => LinesAsync(ManagementServer.LogChannel, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _rpc.Dispose();
        await _mux.DisposeAsync().ConfigureAwait(false);
    }

    private async IAsyncEnumerable<string> LinesAsync(string name, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        MultiplexingStream.Channel channel = await _mux.OfferChannelAsync(name, cancellationToken).ConfigureAwait(false);
        await using Stream stream = channel.AsStream();
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            yield return line;
        }
    }
}
