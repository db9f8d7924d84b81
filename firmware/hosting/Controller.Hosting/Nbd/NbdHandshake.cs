using System.Text;
using Controller.Nbd;

namespace Controller.Hosting.Nbd;

/// <summary>What the handshake settled: the export, and how transmission is to reply.</summary>
/// <param name="Export">The export chosen.</param>
/// <param name="Structured">The client asked for structured replies.</param>
/// <param name="AllocationContext">The client selected base:allocation (BLOCK_STATUS is allowed).</param>
internal sealed record NbdAgreement(INbdExport Export, bool Structured, bool AllocationContext);

/// <summary>
/// The server's side of the fixed newstyle handshake: the greeting, the client's flags, then
/// option after option (with NBD_OPT_STARTTLS, the TLS session) until one enters transmission or
/// the client gives up. A malformed option gets the error reply the protocol names; where no
/// reply is possible, an <see cref="NbdProtocolException"/> ends the connection.
/// </summary>
internal sealed class NbdHandshake(NbdInput input, IReadOnlyList<INbdExport> exports, NbdServerOptions options)
{
    /// <summary>The id of base:allocation in NBD_REP_META_CONTEXT and BLOCK_STATUS replies.</summary>
    public const uint BaseAllocationContextId = 1;

    private readonly byte[] _header = new byte[Math.Max(NbdGreeting.Bytes, NbdOptionHeader.Bytes)];
    private bool _tlsStarted;
    private bool _noZeroes;
    private bool _structured;
    private bool _allocationContext;

    private Stream Output => input.Stream;

    /// <summary>Runs the handshake; null when the client left (or aborted) without choosing an export.</summary>
    public async Task<NbdAgreement?> RunAsync(CancellationToken cancellation)
    {
        new NbdGreeting(NbdHandshakeFeatures.FixedNewstyle | NbdHandshakeFeatures.NoZeroes).Write(_header);
        await Output.WriteAsync(_header.AsMemory(0, NbdGreeting.Bytes), cancellation).ConfigureAwait(false);
        await Output.FlushAsync(cancellation).ConfigureAwait(false);

        if (!await input.ReadOrEndAsync(_header.AsMemory(0, NbdClientFlags.Bytes), cancellation).ConfigureAwait(false))
        {
            return null;
        }

        NbdClientFeatures clientFlags = NbdClientFlags.Read(_header).Features;
        if ((clientFlags & ~(NbdClientFeatures.FixedNewstyle | NbdClientFeatures.NoZeroes)) != 0)
        {
            throw new NbdProtocolException($"unknown client flags 0x{(uint)clientFlags:x8}");
        }

        _noZeroes = clientFlags.HasFlag(NbdClientFeatures.NoZeroes);
        if (options.Tls is { Mode: NbdTlsMode.Required } && !clientFlags.HasFlag(NbdClientFeatures.FixedNewstyle))
        {
            throw new NbdProtocolException(
                "this server requires TLS, which needs fixed newstyle negotiation, and the client did not take it"
            );
        }

        while (true)
        {
            if (
                !await input
                    .ReadOrEndAsync(_header.AsMemory(0, NbdOptionHeader.Bytes), cancellation)
                    .ConfigureAwait(false)
            )
            {
                return null;
            }

            NbdOptionHeader header = NbdOptionHeader.Read(_header);
            if (header.Magic != NbdProtocol.OptionMagic)
            {
                throw new NbdProtocolException($"option magic 0x{header.Magic:x16}, not IHAVEOPT");
            }

            if (header.Length > options.MaximumOptionBytes)
            {
                throw new NbdProtocolException(
                    $"option {(uint)header.Option} carries {header.Length} bytes, more than the {options.MaximumOptionBytes} taken"
                );
            }

            byte[] data = new byte[header.Length];
            await input.ReadExactlyAsync(data, cancellation).ConfigureAwait(false);
            INbdExport? chosen = await OptionAsync(header.Option, data, cancellation).ConfigureAwait(false);
            if (chosen is not null)
            {
                return new NbdAgreement(chosen, _structured, _allocationContext);
            }

            if (header.Option == NbdOption.Abort)
            {
                return null;
            }
        }
    }

    /// <summary>Answers one option; returns the export when the option enters transmission.</summary>
    private async Task<INbdExport?> OptionAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        if (option == NbdOption.StartTls)
        {
            await StartTlsAsync(data, cancellation).ConfigureAwait(false);
            return null;
        }

        if (options.Tls is { Mode: NbdTlsMode.Required } && !_tlsStarted && option != NbdOption.Abort)
        {
            if (option == NbdOption.ExportName)
            {
                // NBD_OPT_EXPORT_NAME has no error reply: the session ends.
                throw new NbdProtocolException(
                    "NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS, and this server requires TLS"
                );
            }

            await ErrorAsync(
                    option,
                    NbdOptionReply.ErrorTlsRequired,
                    "this server requires TLS: send NBD_OPT_STARTTLS first",
                    cancellation
                )
                .ConfigureAwait(false);
            return null;
        }

        switch (option)
        {
            case NbdOption.ExportName:
                INbdExport export = Find(Encoding.UTF8.GetString(data))
                    ?? throw new NbdProtocolException(
                        $"NBD_OPT_EXPORT_NAME asked for export '{Encoding.UTF8.GetString(data)}', which is not served"
                    );
                await Output
                    .WriteAsync(
                        NbdOptionData.ExportNameReply(
                            export.SizeBytes,
                            NbdConnection.AdvertisedFlags(export),
                            _noZeroes
                        ),
                        cancellation
                    )
                    .ConfigureAwait(false);
                await Output.FlushAsync(cancellation).ConfigureAwait(false);
                return export;
            case NbdOption.Abort:
                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.List when data.Length != 0:
                await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "NBD_OPT_LIST takes no data", cancellation)
                    .ConfigureAwait(false);
                return null;
            case NbdOption.List:
                foreach (INbdExport each in exports)
                {
                    await ReplyAsync(option, NbdOptionReply.Server, NbdOptionData.Server(each.Name), cancellation)
                        .ConfigureAwait(false);
                }

                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.Info or NbdOption.Go:
                return await InfoAsync(option, data, cancellation).ConfigureAwait(false);
            case NbdOption.StructuredReply when data.Length != 0:
                await ErrorAsync(
                        option,
                        NbdOptionReply.ErrorInvalid,
                        "NBD_OPT_STRUCTURED_REPLY takes no data",
                        cancellation
                    )
                    .ConfigureAwait(false);
                return null;
            case NbdOption.StructuredReply:
                _structured = true;
                await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
                return null;
            case NbdOption.ListMetaContext or NbdOption.SetMetaContext:
                await MetaContextAsync(option, data, cancellation).ConfigureAwait(false);
                return null;
            default:
                await ErrorAsync(
                        option,
                        NbdOptionReply.ErrorUnsupported,
                        $"option {(uint)option} is not supported",
                        cancellation
                    )
                    .ConfigureAwait(false);
                return null;
        }
    }

    /// <summary>
    /// NBD_OPT_STARTTLS: the NBD_REP_ACK, then the TLS handshake; everything after it goes over TLS.
    /// Refused (the session goes on in the clear) with no TLS configured, with data, or a second time.
    /// </summary>
    private async Task StartTlsAsync(byte[] data, CancellationToken cancellation)
    {
        if (options.Tls is not { } tls)
        {
            await ErrorAsync(
                    NbdOption.StartTls,
                    NbdOptionReply.ErrorPolicy,
                    "TLS is off on this server (serve --tls on|require --tls-certificates DIR)",
                    cancellation
                )
                .ConfigureAwait(false);
            return;
        }

        if (data.Length != 0 || _tlsStarted)
        {
            await ErrorAsync(
                    NbdOption.StartTls,
                    NbdOptionReply.ErrorInvalid,
                    _tlsStarted ? "TLS is already running" : "NBD_OPT_STARTTLS takes no data",
                    cancellation
                )
                .ConfigureAwait(false);
            return;
        }

        await ReplyAsync(NbdOption.StartTls, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
        if (input.Buffered != 0)
        {
            // Bytes read past the option before the acknowledgement cannot be handed to TLS.
            throw new NbdProtocolException(
                $"the client sent {input.Buffered} bytes after NBD_OPT_STARTTLS without waiting for its reply"
            );
        }

        input.SwitchTo(await tls.StartAsync(input.Stream, cancellation).ConfigureAwait(false));
        _tlsStarted = true;
    }

    private async Task<INbdExport?> InfoAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        if (NbdOptionData.ReadInfo(data) is not var (name, requests))
        {
            await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "malformed NBD_OPT_INFO/GO data", cancellation)
                .ConfigureAwait(false);
            return null;
        }

        if (Find(name) is not { } export)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorUnknown, $"no export '{name}'", cancellation)
                .ConfigureAwait(false);
            return null;
        }

        await ReplyAsync(
                option,
                NbdOptionReply.Info,
                NbdOptionData.ExportInfo(export.SizeBytes, NbdConnection.AdvertisedFlags(export)),
                cancellation
            )
            .ConfigureAwait(false);
        foreach (NbdInfo requested in requests)
        {
            if (requested is NbdInfo.Name or NbdInfo.Description)
            {
                string text = requested == NbdInfo.Name ? export.Name : export.Description;
                await ReplyAsync(option, NbdOptionReply.Info, NbdOptionData.TextInfo(requested, text), cancellation)
                    .ConfigureAwait(false);
            }
        }

        byte[] sizes = NbdOptionData.BlockSizeInfo(
            (uint)options.MinimumBlockBytes,
            (uint)options.PreferredBlockBytes,
            (uint)options.MaximumBlockBytes
        );
        await ReplyAsync(option, NbdOptionReply.Info, sizes, cancellation).ConfigureAwait(false);
        await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
        return option == NbdOption.Go ? export : null;
    }

    private async Task MetaContextAsync(NbdOption option, byte[] data, CancellationToken cancellation)
    {
        if (option == NbdOption.SetMetaContext && !_structured)
        {
            await ErrorAsync(
                    option,
                    NbdOptionReply.ErrorInvalid,
                    "NBD_OPT_SET_META_CONTEXT needs structured replies first",
                    cancellation
                )
                .ConfigureAwait(false);
            return;
        }

        if (NbdOptionData.ReadMetaContext(data) is not var (name, queries))
        {
            await ErrorAsync(option, NbdOptionReply.ErrorInvalid, "malformed meta context data", cancellation)
                .ConfigureAwait(false);
            return;
        }

        if (Find(name) is null)
        {
            await ErrorAsync(option, NbdOptionReply.ErrorUnknown, $"no export '{name}'", cancellation)
                .ConfigureAwait(false);
            return;
        }

        bool matches =
            option == NbdOption.ListMetaContext && queries.Count == 0
            || queries.Exists(q =>
                q == NbdProtocol.BaseAllocation || (option == NbdOption.ListMetaContext && q == "base:")
            );
        if (option == NbdOption.SetMetaContext)
        {
            _allocationContext = matches;
        }

        if (matches)
        {
            await ReplyAsync(
                    option,
                    NbdOptionReply.MetaContext,
                    NbdOptionData.MetaContextReply(BaseAllocationContextId, NbdProtocol.BaseAllocation),
                    cancellation
                )
                .ConfigureAwait(false);
        }

        await ReplyAsync(option, NbdOptionReply.Ack, [], cancellation).ConfigureAwait(false);
    }

    private async Task ReplyAsync(NbdOption option, NbdOptionReply type, byte[] data, CancellationToken cancellation)
    {
        await Output.WriteAsync(NbdOptionReplyHeader.Message(option, type, data), cancellation).ConfigureAwait(false);
        await Output.FlushAsync(cancellation).ConfigureAwait(false);
    }

    private Task ErrorAsync(NbdOption option, NbdOptionReply type, string message, CancellationToken cancellation) =>
        ReplyAsync(option, type, Encoding.UTF8.GetBytes(message), cancellation);

    private INbdExport? Find(string name) =>
        name.Length == 0 && exports.Count > 0 ? exports[0] : exports.FirstOrDefault(e => e.Name == name);
}
