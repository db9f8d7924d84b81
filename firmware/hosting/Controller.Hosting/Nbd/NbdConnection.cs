using Controller.Firmware.Host;
using Controller.Nbd;

namespace Controller.Hosting.Nbd;

/// <summary>
/// One NBD connection over any duplex byte stream (TCP, a Unix socket, an in-process pipe): the
/// fixed newstyle handshake (<see cref="NbdHandshake"/>), then transmission
/// (<see cref="NbdTransmission"/>) until the client disconnects. It only parses and answers; the
/// commands go to an <see cref="INbdExport"/>, which feeds the controller loop. Bad input gets the
/// error the protocol names, or, where no answer is possible, the end of this connection (an
/// <see cref="NbdProtocolException"/>); nothing is executed for it.
/// </summary>
public sealed class NbdConnection : IDisposable
{
    private readonly Stream _connection;
    private readonly NbdInput _input;
    private readonly IReadOnlyList<INbdExport> _exports;
    private readonly NbdServerOptions _options;

    /// <summary>A connection on <paramref name="stream"/> serving <paramref name="exports"/>.</summary>
    public NbdConnection(Stream stream, IReadOnlyList<INbdExport> exports, NbdServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(exports);
        _connection = stream;
        _input = new NbdInput(stream);
        _exports = exports;
        _options = options ?? new NbdServerOptions();
    }

    /// <summary>
    /// The connection's number on its server (from 1, in the order they were accepted; 0 when not numbered).
    /// </summary>
    public int Number { get; init; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_input.Stream != _connection)
        {
            // The TLS session's stream; the connection's own belongs to the caller.
            _input.Stream.Dispose();
        }
    }

    /// <summary>
    /// Runs the connection to its end. <paramref name="handshake"/> cancels a handshake that takes
    /// too long (the caller sets its deadline); <paramref name="stop"/> ends the connection.
    /// Returns when the client disconnects; throws <see cref="NbdProtocolException"/> when it broke the protocol.
    /// </summary>
    public async Task RunAsync(CancellationToken handshake, CancellationToken stop)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(handshake, stop);
        NbdAgreement? agreement;
        try
        {
            agreement = await new NbdHandshake(_input, _exports, _options).RunAsync(both.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (handshake.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            throw new NbdProtocolException("the client did not finish the handshake in time");
        }

        if (agreement is null)
        {
            return;
        }

        using var transmission = new NbdTransmission(_input, agreement, _options, Number);
        await transmission.RunAsync(stop).ConfigureAwait(false);
    }

    /// <summary>
    /// The command flags <paramref name="command"/> accepts. FUA on every command: the protocol
    /// says a server that advertises FUA must accept it on all of them (even by ignoring it), and
    /// clients are known to set it on reads and flushes. Then each command's own: DF on READ,
    /// NO_HOLE and FAST_ZERO on WRITE_ZEROES, REQ_ONE on BLOCK_STATUS.
    /// </summary>
    public static NbdCommandModifiers AllowedFlags(NbdCommand command) =>
        NbdCommandModifiers.Fua
        | command switch
        {
            NbdCommand.Read => NbdCommandModifiers.DontFragment,
            NbdCommand.WriteZeroes => NbdCommandModifiers.NoHole | NbdCommandModifiers.FastZero,
            NbdCommand.BlockStatus => NbdCommandModifiers.RequestOne,
            _ => NbdCommandModifiers.None,
        };

    /// <summary>
    /// The host command a valid request becomes, or null for one answered without the loop (CACHE,
    /// BLOCK_STATUS, DISC). FUA and NO_HOLE pass through; DF and FAST_ZERO only shape the reply.
    /// </summary>
    public static (HostOpcode Opcode, HostCommandOptions Options)? HostCommandFor(
        NbdCommand command,
        NbdCommandModifiers flags
    )
    {
        HostOpcode? opcode = command switch
        {
            NbdCommand.Read => HostOpcode.Read,
            NbdCommand.Write => HostOpcode.Write,
            NbdCommand.Flush => HostOpcode.Flush,
            NbdCommand.Trim => HostOpcode.Trim,
            NbdCommand.WriteZeroes => HostOpcode.WriteZeroes,
            _ => null,
        };
        var options =
            (flags.HasFlag(NbdCommandModifiers.Fua) ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None)
            | (flags.HasFlag(NbdCommandModifiers.NoHole) ? HostCommandOptions.NoHole : HostCommandOptions.None);
        return opcode is { } known ? (known, options) : null;
    }

    /// <summary>The transmission flags advertised for <paramref name="export"/>.</summary>
    public static NbdExportFeatures AdvertisedFlags(INbdExport export)
    {
        ArgumentNullException.ThrowIfNull(export);
        return NbdExportFeatures.HasFlags
            | NbdExportFeatures.SendFlush
            | NbdExportFeatures.SendFua
            | NbdExportFeatures.SendTrim
            | NbdExportFeatures.SendWriteZeroes
            | NbdExportFeatures.SendFastZero
            | NbdExportFeatures.SendCache
            | NbdExportFeatures.CanMultiConn
            | (export.IsReadOnly ? NbdExportFeatures.ReadOnly : NbdExportFeatures.None);
    }
}
