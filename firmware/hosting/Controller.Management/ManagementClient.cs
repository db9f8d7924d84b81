using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace Controller.Management;

/// <summary>
/// A connection to a management endpoint: the control service, and the telemetry and log channels on demand.
/// </summary>
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
    public static Task<ManagementClient> ConnectAsync(string uri, CancellationToken cancellationToken) =>
        ConnectAsync(uri, tls: null, token: null, cancellationToken);

    /// <summary>
    /// Connects to the endpoint <paramref name="uri"/> names; a tls:// endpoint with
    /// <paramref name="tls"/> (the server's certificate checked against its ca-cert.pem, this
    /// client's certificate presented when it has one) and, when given, <paramref name="token"/>
    /// sent first.
    /// </summary>
    /// <exception cref="FormatException">The URI is not an endpoint, or tls:// without credentials.</exception>
    public static async Task<ManagementClient> ConnectAsync(
        string uri,
        TlsCredentials? tls,
        string? token,
        CancellationToken cancellationToken
    )
    {
        EndPoint endpoint = ManagementEndpoint.Parse(uri);
        bool overTls = ManagementEndpoint.IsTls(uri);
        if (overTls && tls is null)
        {
            throw new FormatException(
                $"'{uri}' is a TLS endpoint; give the directory with its ca-cert.pem (--tls-certificates DIR)"
            );
        }

        Stream stream = await ManagementEndpoint.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        try
        {
            if (overTls)
            {
                stream = await tls!
                    .AuthenticateAsClientAsync(stream, TlsCredentials.HostOf(endpoint), cancellationToken)
                    .ConfigureAwait(false);
                if (token is not null)
                {
                    await stream
                        .WriteAsync(Encoding.UTF8.GetBytes(token.Trim() + "\n"), cancellationToken)
                        .ConfigureAwait(false);
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            return await OpenAsync(stream, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Speaks the management protocol over <paramref name="connection"/>, which the client then owns.
    /// </summary>
    public static async Task<ManagementClient> OpenAsync(Stream connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        MultiplexingStream mux = await MultiplexingStream
            .CreateAsync(connection, cancellationToken)
            .ConfigureAwait(false);
        try
        {
            MultiplexingStream.Channel control = await mux.OfferChannelAsync(
                    ManagementServer.ControlChannel,
                    cancellationToken
                )
                .ConfigureAwait(false);
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
    public async IAsyncEnumerable<TelemetrySample> TelemetryAsync(
        [EnumeratorCancellation] CancellationToken cancellationToken
    )
    {
        await foreach (
            string line in LinesAsync(ManagementServer.TelemetryChannel, cancellationToken).ConfigureAwait(false)
        )
        {
            TelemetrySample? sample = JsonSerializer.Deserialize<TelemetrySample>(line, ManagementJson.Options);
            if (sample is not null)
            {
                yield return sample;
            }
        }
    }

    /// <summary>The server's log lines from now on, until cancelled or the connection ends.</summary>
    public IAsyncEnumerable<string> LogAsync(CancellationToken cancellationToken) =>
        LinesAsync(ManagementServer.LogChannel, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _rpc.Dispose();
        await _mux.DisposeAsync().ConfigureAwait(false);
    }

    private async IAsyncEnumerable<string> LinesAsync(
        string name,
        [EnumeratorCancellation] CancellationToken cancellationToken
    )
    {
        MultiplexingStream.Channel channel = await _mux.OfferChannelAsync(name, cancellationToken)
            .ConfigureAwait(false);
        await using Stream stream = channel.AsStream();
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            yield return line;
        }
    }
}
