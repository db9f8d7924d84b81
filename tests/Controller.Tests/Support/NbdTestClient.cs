using Controller.Hosting.Nbd;
using Controller.Nbd;

namespace Controller.Tests.Support;

/// <summary>
/// What a request got back: the error, the data read (zeros where holes were reported), and block status extents.
/// </summary>
internal sealed record NbdTestReply(NbdError Error, byte[] Data, List<(uint Length, NbdAllocationState State)> Extents);

/// <summary>A minimal NBD client written from the spec, to drive the server in tests byte by byte.</summary>
internal sealed class NbdTestClient(Stream stream)
{
    public bool Structured { get; private set; }

    public async Task<NbdHandshakeFeatures> GreetAsync(
        NbdClientFeatures features = NbdClientFeatures.FixedNewstyle | NbdClientFeatures.NoZeroes
    )
    {
        byte[] greeting = await ReadAsync(NbdGreeting.Bytes);
        NbdGreeting? read = NbdGreeting.Read(greeting);
        Assert.True(read is not null, "the greeting starts with NBDMAGIC and IHAVEOPT");
        byte[] flags = new byte[NbdClientFlags.Bytes];
        new NbdClientFlags(features).Write(flags);
        await stream.WriteAsync(flags);
        return read.Value.Features;
    }

    public async Task SendOptionAsync(NbdOption option, byte[] data)
    {
        await stream.WriteAsync(NbdOptionHeader.Message(option, data));
        await stream.FlushAsync();
    }

    public async Task<(NbdOptionReply Type, byte[] Data)> ReadOptionReplyAsync(NbdOption expected)
    {
        NbdOptionReplyHeader header = NbdOptionReplyHeader.Read(await ReadAsync(NbdOptionReplyHeader.Bytes));
        Assert.Equal(NbdProtocol.OptionReplyMagic, header.Magic);
        Assert.Equal(expected, header.Option);
        byte[] data = await ReadAsync((int)header.Length);
        return (header.Type, data);
    }

    /// <summary>
    /// Negotiates structured replies and base:allocation if asked, then NBD_OPT_GO; returns the export's size, flags
    /// and block sizes.
    /// </summary>
    public async Task<(long Size, NbdExportFeatures Features, uint[] BlockSizes)> GoAsync(
        string name = "",
        bool structured = true,
        bool allocation = true
    )
    {
        if (structured)
        {
            await SendOptionAsync(NbdOption.StructuredReply, []);
            Assert.Equal(NbdOptionReply.Ack, (await ReadOptionReplyAsync(NbdOption.StructuredReply)).Type);
            Structured = true;
        }

        if (allocation)
        {
            await SendOptionAsync(NbdOption.SetMetaContext, MetaContextData(name, NbdProtocol.BaseAllocation));
            Assert.Equal(NbdOptionReply.MetaContext, (await ReadOptionReplyAsync(NbdOption.SetMetaContext)).Type);
            Assert.Equal(NbdOptionReply.Ack, (await ReadOptionReplyAsync(NbdOption.SetMetaContext)).Type);
        }

        await SendOptionAsync(NbdOption.Go, InfoData(name, NbdInfo.BlockSize));
        long size = -1;
        var features = NbdExportFeatures.None;
        uint[] sizes = [];
        while (true)
        {
            (NbdOptionReply type, byte[] data) = await ReadOptionReplyAsync(NbdOption.Go);
            if (type == NbdOptionReply.Ack)
            {
                return (size, features, sizes);
            }

            Assert.Equal(NbdOptionReply.Info, type);
            NbdInfoReply? info = NbdOptionData.ReadInfoReply(data);
            Assert.NotNull(info);
            switch (info.Type)
            {
                case NbdInfo.Export:
                    (size, features) = (info.Size, info.Features);
                    break;
                case NbdInfo.BlockSize:
                    sizes = [info.BlockSizes.Minimum, info.BlockSizes.Preferred, info.BlockSizes.Maximum];
                    break;
            }
        }
    }

    public async Task SendRequestAsync(
        NbdCommand command,
        NbdCommandModifiers flags,
        ulong offset,
        uint length,
        byte[]? data = null,
        ulong handle = 7,
        uint magic = NbdProtocol.RequestMagic
    )
    {
        byte[] request = new byte[NbdRequestHeader.Bytes + (data?.Length ?? 0)];
        new NbdRequestHeader(magic, flags, command, handle, offset, length).Write(request);
        data?.CopyTo(request, NbdRequestHeader.Bytes);
        await stream.WriteAsync(request);
        await stream.FlushAsync();
    }

    public async Task<NbdTestReply> RequestAsync(
        NbdCommand command,
        ulong offset,
        uint length,
        byte[]? data = null,
        NbdCommandModifiers flags = NbdCommandModifiers.None,
        ulong handle = 7
    )
    {
        await SendRequestAsync(command, flags, offset, length, data, handle);
        return await ReadReplyAsync(command, offset, length, handle);
    }

    public async Task<NbdTestReply> ReadReplyAsync(NbdCommand command, ulong offset, uint length, ulong handle)
    {
        byte[] result = new byte[command == NbdCommand.Read ? length : 0];
        var extents = new List<(uint, NbdAllocationState)>();
        var error = NbdError.None;
        while (true)
        {
            byte[] head = await ReadAsync(4);
            uint magic = NbdSimpleReply.MagicOf(head);
            if (magic == NbdProtocol.SimpleReplyMagic)
            {
                NbdSimpleReply simple = NbdSimpleReply.Read([.. head, .. await ReadAsync(NbdSimpleReply.Bytes - 4)]);
                Assert.Equal(handle, simple.Handle);
                error = simple.Error;
                if (command == NbdCommand.Read && error == NbdError.None)
                {
                    result = await ReadAsync((int)length);
                }

                return new NbdTestReply(error, result, extents);
            }

            Assert.Equal(NbdProtocol.StructuredReplyMagic, magic);
            NbdChunkHeader chunk = NbdChunkHeader.Read([.. head, .. await ReadAsync(NbdChunkHeader.Bytes - 4)]);
            Assert.Equal(handle, chunk.Handle);
            byte[] payload = await ReadAsync((int)chunk.Length);
            switch (chunk.Type)
            {
                case NbdReplyType.OffsetData:
                    payload
                        .AsSpan(NbdChunkData.OffsetBytes)
                        .CopyTo(result.AsSpan((int)(NbdChunkData.ReadOffset(payload) - offset)));
                    break;
                case NbdReplyType.OffsetHole:
                    break;
                case NbdReplyType.BlockStatus:
                    var status = NbdChunkData.ReadBlockStatus(payload);
                    Assert.True(status is not null, $"a block status payload of {payload.Length} bytes");
                    extents.AddRange(status.Value.Extents);
                    break;
                case NbdReplyType.Error:
                    error = NbdChunkData.ReadError(payload)?.Error
                        ?? throw new InvalidDataException($"an error chunk of {payload.Length} bytes");
                    break;
            }

            if (chunk.Done)
            {
                return new NbdTestReply(error, result, extents);
            }
        }
    }

    /// <summary>Reads the next simple reply, whichever request it answers.</summary>
    public async Task<(ulong Handle, NbdError Error)> ReadAnySimpleReplyAsync()
    {
        byte[] reply = await ReadAsync(NbdSimpleReply.Bytes);
        Assert.Equal(NbdProtocol.SimpleReplyMagic, NbdSimpleReply.MagicOf(reply));
        NbdSimpleReply simple = NbdSimpleReply.Read(reply);
        return (simple.Handle, simple.Error);
    }

    public static byte[] InfoData(string name, params NbdInfo[] requests) => NbdOptionData.Info(name, requests);

    public static byte[] MetaContextData(string name, params string[] queries) =>
        NbdOptionData.MetaContext(name, queries);

    /// <summary>A server that never answers fails the test in this long rather than hanging it.</summary>
    private static readonly TimeSpan s_replyTimeout = TimeSpan.FromSeconds(30);

    private async Task<byte[]> ReadAsync(int count)
    {
        byte[] buffer = new byte[count];
        using var timeout = new CancellationTokenSource(s_replyTimeout);
        try
        {
            await stream.ReadExactlyAsync(buffer, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"the server sent no reply ({count} bytes awaited) in {s_replyTimeout.TotalSeconds} s"
            );
        }

        return buffer;
    }
}
