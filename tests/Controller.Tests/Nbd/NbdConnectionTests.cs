using Controller.Common;
using Controller.Firmware.Host;
using Controller.Hosting.Nbd;
using Controller.Nbd;
using Controller.Tests.Support;
using Nerdbank.Streams;

namespace Controller.Tests.Nbd;

/// <summary>The NBD server over an in-process duplex pipe, against a memory export, byte by byte.</summary>
[Trait("Category", "Unit")]
public sealed class NbdConnectionTests
{
    private const long Size = 1 << 20;

    [Fact]
    public async Task GoReportsTheExportItsFlagsAndBlockSizes()
    {
        await using var session = NbdSession.Start(new MemoryExport(Size));

        NbdHandshakeFeatures handshake = await session.Client.GreetAsync();
        (long size, NbdExportFeatures features, uint[] sizes) = await session.Client.GoAsync("ssd");

        Assert.Equal(NbdHandshakeFeatures.FixedNewstyle | NbdHandshakeFeatures.NoZeroes, handshake);
        Assert.Equal(Size, size);
        NbdExportFeatures expected =
            NbdExportFeatures.HasFlags
            | NbdExportFeatures.SendFlush
            | NbdExportFeatures.SendFua
            | NbdExportFeatures.SendTrim
            | NbdExportFeatures.SendWriteZeroes
            | NbdExportFeatures.SendFastZero
            | NbdExportFeatures.SendCache
            | NbdExportFeatures.CanMultiConn;
        Assert.Equal(expected, features);
        Assert.Equal([512u, 4096u, 32u << 20], sizes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AWriteReadsBackAndATrimReadsAsZerosAndAHole(bool structured)
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        await session.Client.GoAsync(structured: structured, allocation: structured);
        byte[] data = Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray();

        Assert.Equal(
            NbdError.None,
            (await session.Client.RequestAsync(NbdCommand.Write, 4096, 8192, data, NbdCommandModifiers.Fua)).Error
        );
        NbdTestReply read = await session.Client.RequestAsync(NbdCommand.Read, 4096, 8192);
        Assert.Equal(NbdError.None, (await session.Client.RequestAsync(NbdCommand.Trim, 4096, 4096)).Error);
        NbdTestReply afterTrim = await session.Client.RequestAsync(NbdCommand.Read, 4096, 8192);
        Assert.Equal(NbdError.None, (await session.Client.RequestAsync(NbdCommand.Flush, 0, 0)).Error);

        Assert.Equal(NbdError.None, read.Error);
        Assert.Equal(data, read.Data);
        Assert.Equal(new byte[4096], afterTrim.Data[..4096]);
        Assert.Equal(data[4096..], afterTrim.Data[4096..]);
        Assert.Contains((HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 4096L, 8192L), export.Executed);
        if (structured)
        {
            NbdTestReply status = await session.Client.RequestAsync(NbdCommand.BlockStatus, 0, 16384);
            Assert.Equal(
                [
                    (8192u, NbdAllocationState.Hole | NbdAllocationState.Zero),
                    (4096u, NbdAllocationState.None),
                    (4096u, NbdAllocationState.Hole | NbdAllocationState.Zero),
                ],
                status.Extents
            );
        }
    }

    [Fact]
    public async Task RequestsArePipelinedAndRepliesMayOvertakeEachOther()
    {
        // The write to offset 0 waits at a gate; the one after it completes first, and its reply
        // comes first. Then the gate opens and the first reply follows.
        var export = new MemoryExport(Size);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        export.Gate = offset => offset == 0 ? gate.Task : Task.CompletedTask;
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        await session.Client.GoAsync(structured: false, allocation: false);

        await session.Client.SendRequestAsync(
            NbdCommand.Write,
            NbdCommandModifiers.None,
            0,
            4096,
            new byte[4096],
            handle: 1
        );
        await session.Client.SendRequestAsync(
            NbdCommand.Write,
            NbdCommandModifiers.None,
            4096,
            4096,
            new byte[4096],
            handle: 2
        );
        (ulong first, NbdError firstError) = await session.Client.ReadAnySimpleReplyAsync();
        gate.SetResult();
        (ulong second, NbdError secondError) = await session.Client.ReadAnySimpleReplyAsync();

        Assert.Equal((2ul, NbdError.None), (first, firstError));
        Assert.Equal((1ul, NbdError.None), (second, secondError));
    }

    [Theory]
    [InlineData(NbdCommand.Read, NbdCommandModifiers.None, Size, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.Read, NbdCommandModifiers.None, Size - 512, 1024u, NbdError.Invalid)]
    [InlineData(NbdCommand.Write, NbdCommandModifiers.None, Size - 512, 1024u, NbdError.NoSpace)]
    [InlineData(NbdCommand.Trim, NbdCommandModifiers.None, ulong.MaxValue - 511, 1024u, NbdError.NoSpace)]
    [InlineData(NbdCommand.Read, NbdCommandModifiers.None, 100ul, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.Write, NbdCommandModifiers.None, 0ul, 100u, NbdError.Invalid)]
    [InlineData(NbdCommand.Read, NbdCommandModifiers.None, 0ul, (32u << 20) + 512, NbdError.Overflow)]
    [InlineData(NbdCommand.Read, NbdCommandModifiers.NoHole, 0ul, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.Trim, NbdCommandModifiers.FastZero, 0ul, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.Write, NbdCommandModifiers.RequestOne, 0ul, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.Flush, NbdCommandModifiers.None, 4096ul, 0u, NbdError.Invalid)]
    [InlineData(
        NbdCommand.WriteZeroes,
        NbdCommandModifiers.NoHole | NbdCommandModifiers.FastZero,
        0ul,
        4096u,
        NbdError.NotSupported
    )]
    [InlineData((NbdCommand)9, NbdCommandModifiers.None, 0ul, 512u, NbdError.Invalid)]
    [InlineData(NbdCommand.BlockStatus, NbdCommandModifiers.None, 0ul, 512u, NbdError.Invalid)]
    public async Task ABadRequestGetsItsErrorExecutesNothingAndTheConnectionGoesOn(
        NbdCommand command,
        NbdCommandModifiers flags,
        ulong offset,
        uint length,
        NbdError expected
    )
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        await session.Client.GoAsync(structured: false, allocation: false);
        byte[]? data = command == NbdCommand.Write ? new byte[length] : null;

        NbdTestReply reply = await session.Client.RequestAsync(command, offset, length, data, flags);

        Assert.Equal(expected, reply.Error);
        Assert.Empty(export.Executed);
        Assert.Equal(NbdError.None, (await session.Client.RequestAsync(NbdCommand.Read, 0, 512)).Error);
    }

    /// <summary>
    /// Every command the server advertises with every combination of the flags the protocol
    /// (doc/proto.md, "Command flags") documents for it, written from the protocol rather than
    /// from the server: FUA is valid on every command once SEND_FUA is negotiated, and the server
    /// "MUST accept all commands with this bit set"; NO_HOLE and FAST_ZERO on WRITE_ZEROES;
    /// REQ_ONE on BLOCK_STATUS (DF needs SEND_DF, which is not advertised). Each is accepted, and
    /// the loop is handed exactly the host command and flags it stands for; FAST_ZERO with NO_HOLE
    /// cannot be fast here and is refused with ENOTSUP, as the protocol allows, executing nothing.
    /// </summary>
    [Theory]
    [MemberData(nameof(ProtocolCommandsAndFlags))]
    public async Task EveryCommandWithEveryFlagTheProtocolAllowsIsAcceptedAndPassedOn(
        NbdCommand command,
        NbdCommandModifiers flags
    )
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        await session.Client.GoAsync(structured: true, allocation: true);
        (ulong offset, uint length) = command == NbdCommand.Flush ? (0ul, 0u) : (4096ul, 8192u);
        byte[]? data = command == NbdCommand.Write ? new byte[length] : null;

        NbdTestReply reply = await session.Client.RequestAsync(command, offset, length, data, flags);

        bool refused =
            command == NbdCommand.WriteZeroes
            && flags.HasFlag(NbdCommandModifiers.FastZero)
            && flags.HasFlag(NbdCommandModifiers.NoHole);
        Assert.Equal(refused ? NbdError.NotSupported : NbdError.None, reply.Error);
        HostOpcode? opcode = command switch
        {
            NbdCommand.Read => HostOpcode.Read,
            NbdCommand.Write => HostOpcode.Write,
            NbdCommand.Flush => HostOpcode.Flush,
            NbdCommand.Trim => HostOpcode.Trim,
            NbdCommand.WriteZeroes => HostOpcode.WriteZeroes,
            _ => null,
        };
        HostCommandOptions expected =
            (flags.HasFlag(NbdCommandModifiers.Fua) ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None)
            | (flags.HasFlag(NbdCommandModifiers.NoHole) ? HostCommandOptions.NoHole : HostCommandOptions.None);
        if (opcode is null || refused)
        {
            Assert.Empty(export.Executed);
        }
        else
        {
            Assert.Equal((opcode.Value, expected, (long)offset, (long)length), Assert.Single(export.Executed));
        }
    }

    /// <summary>
    /// The protocol's table: each advertised command with each subset of the flags documented for it.
    /// </summary>
    public static TheoryData<NbdCommand, NbdCommandModifiers> ProtocolCommandsAndFlags()
    {
        var data = new TheoryData<NbdCommand, NbdCommandModifiers>();
        (NbdCommand Command, NbdCommandModifiers Own)[] table =
        [
            (NbdCommand.Read, NbdCommandModifiers.None),
            (NbdCommand.Write, NbdCommandModifiers.None),
            (NbdCommand.Flush, NbdCommandModifiers.None),
            (NbdCommand.Trim, NbdCommandModifiers.None),
            (NbdCommand.Cache, NbdCommandModifiers.None),
            (NbdCommand.WriteZeroes, NbdCommandModifiers.NoHole | NbdCommandModifiers.FastZero),
            (NbdCommand.BlockStatus, NbdCommandModifiers.RequestOne),
        ];
        foreach ((NbdCommand command, NbdCommandModifiers own) in table)
        {
            NbdCommandModifiers all = own | NbdCommandModifiers.Fua;
            for (int subset = 0; subset <= (int)all; subset++)
            {
                if ((subset & ~(int)all) == 0)
                {
                    data.Add(command, (NbdCommandModifiers)subset);
                }
            }
        }

        return data;
    }

    [Fact]
    public async Task AReadOnlyExportRefusesWritesWithEperm()
    {
        var export = new MemoryExport(Size, readOnly: true);
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        (_, NbdExportFeatures features, _) = await session.Client.GoAsync();

        Assert.True(features.HasFlag(NbdExportFeatures.ReadOnly));
        Assert.Equal(
            NbdError.NotPermitted,
            (await session.Client.RequestAsync(NbdCommand.Write, 0, 512, new byte[512])).Error
        );
        Assert.Equal(NbdError.NotPermitted, (await session.Client.RequestAsync(NbdCommand.Trim, 0, 512)).Error);
        Assert.Empty(export.Executed);
    }

    [Fact]
    public async Task AnUnknownOptionIsUnsupportedAndTheHandshakeGoesOn()
    {
        await using var session = NbdSession.Start(new MemoryExport(Size));
        await session.Client.GreetAsync();

        await session.Client.SendOptionAsync((NbdOption)42, [1, 2, 3]);
        (NbdOptionReply unsupported, _) = await session.Client.ReadOptionReplyAsync((NbdOption)42);
        await session.Client.SendOptionAsync(NbdOption.StartTls, []);
        (NbdOptionReply tls, _) = await session.Client.ReadOptionReplyAsync(NbdOption.StartTls);
        await session.Client.SendOptionAsync(NbdOption.Go, NbdTestClient.InfoData("nothing-here"));
        (NbdOptionReply unknown, _) = await session.Client.ReadOptionReplyAsync(NbdOption.Go);
        await session.Client.SendOptionAsync(NbdOption.List, []);
        (NbdOptionReply server, byte[] listed) = await session.Client.ReadOptionReplyAsync(NbdOption.List);
        (NbdOptionReply listEnd, _) = await session.Client.ReadOptionReplyAsync(NbdOption.List);
        (long size, _, _) = await session.Client.GoAsync("ssd", structured: false, allocation: false);

        Assert.Equal(NbdOptionReply.ErrorUnsupported, unsupported);
        Assert.Equal(NbdOptionReply.ErrorPolicy, tls);
        Assert.Equal(NbdOptionReply.ErrorUnknown, unknown);
        Assert.Equal(NbdOptionReply.Server, server);
        Assert.Equal("ssd"u8.ToArray(), listed[4..]);
        Assert.Equal(NbdOptionReply.Ack, listEnd);
        Assert.Equal(Size, size);
    }

    [Fact]
    public async Task AWrongRequestMagicEndsThatConnectionOnly()
    {
        var export = new MemoryExport(Size);
        await using var bad = NbdSession.Start(export);
        await using var good = NbdSession.Start(export);
        await bad.Client.GreetAsync();
        await bad.Client.GoAsync();
        await good.Client.GreetAsync();
        await good.Client.GoAsync();

        await bad.Client.SendRequestAsync(
            NbdCommand.Write,
            NbdCommandModifiers.None,
            0,
            512,
            new byte[512],
            magic: 0xDEADBEEF
        );
        NbdProtocolException ended = await Assert.ThrowsAsync<NbdProtocolException>(() => bad.Server);

        Assert.Contains("request magic 0xdeadbeef", ended.Message, StringComparison.Ordinal);
        Assert.Empty(export.Executed);
        Assert.Equal(NbdError.None, (await good.Client.RequestAsync(NbdCommand.Write, 0, 512, new byte[512])).Error);
    }

    [Fact]
    public async Task AClientThatStallsInTheHandshakeIsCutOff()
    {
        var (serverSide, clientSide) = FullDuplexStream.CreatePair();
        await using var _ = clientSide;
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        using var connection = new NbdConnection(serverSide, [new MemoryExport(Size)]);

        NbdProtocolException stalled = await Assert.ThrowsAsync<NbdProtocolException>(() =>
            connection.RunAsync(deadline.Token, CancellationToken.None)
        );

        Assert.Contains("did not finish the handshake in time", stalled.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AClientThatLeavesInTheMiddleOfAWriteWritesNothing()
    {
        var export = new MemoryExport(Size);
        var (serverSide, clientSide) = FullDuplexStream.CreatePair();
        var client = new NbdTestClient(clientSide);
        using var connection = new NbdConnection(serverSide, [export]);
        Task server = connection.RunAsync(CancellationToken.None, CancellationToken.None);
        await client.GreetAsync();
        await client.GoAsync();

        await client.SendRequestAsync(NbdCommand.Write, NbdCommandModifiers.None, 0, 4096, new byte[100]);
        await clientSide.DisposeAsync();

        await Assert.ThrowsAsync<EndOfStreamException>(() => server);
        Assert.Empty(export.Executed);
    }

    [Fact]
    public async Task AWriteLongerThanTheMaximumEndsTheConnectionWithNothingWritten()
    {
        var export = new MemoryExport(Size);
        await using var session = NbdSession.Start(export);
        await session.Client.GreetAsync();
        await session.Client.GoAsync();

        await session.Client.SendRequestAsync(NbdCommand.Write, NbdCommandModifiers.None, 0, (32u << 20) + 512);

        await Assert.ThrowsAsync<NbdProtocolException>(() => session.Server);
        Assert.Empty(export.Executed);
    }

    [Fact]
    public async Task SeededRandomAndMutatedStreamsNeverChangeAReadOnlyExportNorCrashTheServer()
    {
        // Thousands of byte streams: valid sessions with bytes flipped, cut short or spliced, and
        // plain noise. Each connection must end with a clean return, a protocol error or the end
        // of its stream, and the export (read-only, so every write, trim or zeroing is refused)
        // must hold what it held.
        var export = new MemoryExport(Size, readOnly: true);
        byte[] before = export.Snapshot();

        await Fuzz(export, 3000);

        Assert.Equal(before, export.Snapshot());
        Assert.DoesNotContain(export.Executed, e =>
            e.Opcode is HostOpcode.Write or HostOpcode.Trim or HostOpcode.WriteZeroes
        );
        Assert.Contains(export.Executed, e => e.Opcode == HostOpcode.Read);
    }

    [Fact]
    public async Task TheFuzzCanaryAWritableExportIsChangedByTheSameStreams()
    {
        // The same streams against a writable export do write: so the check above can fail.
        var export = new MemoryExport(Size);
        byte[] filled = Enumerable.Repeat((byte)0xA5, (int)Size).ToArray();
        await export.ExecuteAsync(HostOpcode.Write, HostCommandOptions.None, 0, Size, filled, CancellationToken.None);
        export.Executed.Clear();

        await Fuzz(export, 3000);

        Assert.NotEqual(filled, export.Snapshot());
    }

    private static async Task Fuzz(MemoryExport export, int cases)
    {
        byte[] valid = ValidSessionBytes();
        var prng = new Controller.Common.Prng(20261127);
        for (int i = 0; i < cases; i++)
        {
            byte[] input = (i % 4) switch
            {
                0 => FuzzBytes.Noise(prng, 1 + prng.NextInt(200)),
                1 => FuzzBytes.Mutate(prng, valid, 1 + prng.NextInt(8)),
                2 => valid[..prng.NextInt(valid.Length)],
                _ => [.. valid[..prng.NextInt(valid.Length)], .. FuzzBytes.Noise(prng, prng.NextInt(64))],
            };
            using var stream = new ScriptedStream(input);
            using var connection = new NbdConnection(stream, [export]);
            try
            {
                await connection.RunAsync(CancellationToken.None, CancellationToken.None);
            }
            catch (Exception e) when (e is NbdProtocolException or EndOfStreamException) { }
        }
    }

    private static byte[] ValidSessionBytes()
    {
        // What a client sends: flags, structured replies, base:allocation, GO, then requests.
        using var bytes = new MemoryStream();
        var client = new NbdTestClient(bytes);
        bytes.Write([0, 0, 0, 3]);
        client.SendOptionAsync(NbdOption.StructuredReply, []).GetAwaiter().GetResult();
        client
            .SendOptionAsync(NbdOption.SetMetaContext, NbdTestClient.MetaContextData("ssd", NbdProtocol.BaseAllocation))
            .GetAwaiter()
            .GetResult();
        client.SendOptionAsync(NbdOption.Go, NbdTestClient.InfoData("ssd", NbdInfo.BlockSize)).GetAwaiter().GetResult();
        client.SendRequestAsync(NbdCommand.Read, NbdCommandModifiers.None, 0, 4096).GetAwaiter().GetResult();
        client
            .SendRequestAsync(NbdCommand.Write, NbdCommandModifiers.Fua, 4096, 512, new byte[512])
            .GetAwaiter()
            .GetResult();
        client.SendRequestAsync(NbdCommand.Trim, NbdCommandModifiers.None, 0, 4096).GetAwaiter().GetResult();
        client.SendRequestAsync(NbdCommand.BlockStatus, NbdCommandModifiers.None, 0, 65536).GetAwaiter().GetResult();
        client.SendRequestAsync(NbdCommand.WriteZeroes, NbdCommandModifiers.NoHole, 0, 4096).GetAwaiter().GetResult();
        client.SendRequestAsync(NbdCommand.Read, NbdCommandModifiers.None, 8192, 512).GetAwaiter().GetResult();
        client.SendRequestAsync(NbdCommand.Disconnect, NbdCommandModifiers.None, 0, 0).GetAwaiter().GetResult();
        return bytes.ToArray();
    }
}
