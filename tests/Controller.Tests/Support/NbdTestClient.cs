using System.Buffers.Binary;
using System.Text;
using Controller.Firmware.Host.Nbd;

namespace Controller.Tests.Support;

/// <summary>What a request got back: the error, the data read (zeros where holes were reported), and block status extents.</summary>
internal sealed record NbdTestReply(NbdError Error, byte[] Data, List<(uint Length, NbdAllocationState State)> Extents);

/// <summary>A minimal NBD client written from the spec, to drive the server in tests byte by byte.</summary>
internal sealed class NbdTestClient(Stream stream)
{
    public bool Structured { get; private set; }

    public async Task<NbdHandshakeFeatures> GreetAsync(NbdClientFeatures features = NbdClientFeatures.FixedNewstyle | NbdClientFeatures.NoZeroes)
    {
        byte[] greeting = await ReadAsync(18);
        Assert.Equal(NbdProtocol.InitMagic, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(NbdProtocol.OptionMagic, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        byte[] flags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, (uint)features);
        await stream.WriteAsync(flags);
        return (NbdHandshakeFeatures)BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
    }

    public async Task SendOptionAsync(NbdOption option, byte[] data)
    {
        byte[] header = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(header, NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), (uint)data.Length);
        data.CopyTo(header, 16);
        await stream.WriteAsync(header);
        await stream.FlushAsync();
    }

    public async Task<(NbdOptionReply Type, byte[] Data)> ReadOptionReplyAsync(NbdOption expected)
    {
        byte[] header = await ReadAsync(20);
        Assert.Equal(NbdProtocol.OptionReplyMagic, BinaryPrimitives.ReadUInt64BigEndian(header));
        Assert.Equal((uint)expected, BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)));
        byte[] data = await ReadAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
        return ((NbdOptionReply)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12)), data);
    }

    /// <summary>Negotiates structured replies and base:allocation if asked, then NBD_OPT_GO; returns the export's size, flags and block sizes.</summary>
    public async Task<(long Size, NbdExportFeatures Features, uint[] BlockSizes)> GoAsync(string name = "", bool structured = true, bool allocation = true)
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
            switch ((NbdInfo)BinaryPrimitives.ReadUInt16BigEndian(data))
            {
                case NbdInfo.Export:
                    size = (long)BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                    features = (NbdExportFeatures)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
                    break;
                case NbdInfo.BlockSize:
                    sizes = [BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(10))];
                    break;
            }
        }
    }

    public async Task SendRequestAsync(NbdCommand command, NbdCommandModifiers flags, ulong offset, uint length, byte[]? data = null, ulong handle = 7, uint magic = NbdProtocol.RequestMagic)
    {
        byte[] request = new byte[NbdProtocol.RequestBytes + (data?.Length ?? 0)];
        BinaryPrimitives.WriteUInt32BigEndian(request, magic);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(4), (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)command);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(8), handle);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(24), length);
        data?.CopyTo(request, NbdProtocol.RequestBytes);
        await stream.WriteAsync(request);
        await stream.FlushAsync();
    }

    public async Task<NbdTestReply> RequestAsync(NbdCommand command, ulong offset, uint length, byte[]? data = null, NbdCommandModifiers flags = NbdCommandModifiers.None, ulong handle = 7)
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
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(head);
            if (magic == NbdProtocol.SimpleReplyMagic)
            {
                byte[] rest = await ReadAsync(12);
                Assert.Equal(handle, BinaryPrimitives.ReadUInt64BigEndian(rest.AsSpan(4)));
                error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(rest);
                if (command == NbdCommand.Read && error == NbdError.None)
                {
                    result = await ReadAsync((int)length);
                }

                return new NbdTestReply(error, result, extents);
            }

            Assert.Equal(NbdProtocol.StructuredReplyMagic, magic);
            byte[] chunk = await ReadAsync(16);
            ushort chunkFlags = BinaryPrimitives.ReadUInt16BigEndian(chunk);
            var type = (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(chunk.AsSpan(2));
            Assert.Equal(handle, BinaryPrimitives.ReadUInt64BigEndian(chunk.AsSpan(4)));
            byte[] payload = await ReadAsync((int)BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(12)));
            switch (type)
            {
                case NbdReplyType.OffsetData:
                    payload.AsSpan(8).CopyTo(result.AsSpan((int)(BinaryPrimitives.ReadUInt64BigEndian(payload) - offset)));
                    break;
                case NbdReplyType.OffsetHole:
                    break;
                case NbdReplyType.BlockStatus:
                    for (int i = 4; i < payload.Length; i += 8)
                    {
                        extents.Add((BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i)), (NbdAllocationState)BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 4))));
                    }

                    break;
                case NbdReplyType.Error:
                    error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(payload);
                    break;
            }

            if ((chunkFlags & 1) != 0)
            {
                return new NbdTestReply(error, result, extents);
            }
        }
    }

    /// <summary>Reads the next simple reply, whichever request it answers.</summary>
    public async Task<(ulong Handle, NbdError Error)> ReadAnySimpleReplyAsync()
    {
        byte[] reply = await ReadAsync(NbdProtocol.SimpleReplyBytes);
        Assert.Equal(NbdProtocol.SimpleReplyMagic, BinaryPrimitives.ReadUInt32BigEndian(reply));
        return (BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8)), (NbdError)BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4)));
    }

    public static byte[] InfoData(string name, params NbdInfo[] requests)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        byte[] data = new byte[4 + nameBytes.Length + 2 + (2 * requests.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + nameBytes.Length), (ushort)requests.Length);
        for (int i = 0; i < requests.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + nameBytes.Length + (2 * i)), (ushort)requests[i]);
        }

        return data;
    }

    public static byte[] MetaContextData(string name, params string[] queries)
    {
        using var data = new MemoryStream();
        void Text(string text)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
            data.Write(length);
            data.Write(bytes);
        }

        Text(name);
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        data.Write(count);
        foreach (string query in queries)
        {
            Text(query);
        }

        return data.ToArray();
    }

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
            throw new TimeoutException($"the server sent no reply ({count} bytes awaited) in {s_replyTimeout.TotalSeconds} s");
        }

        return buffer;
    }
}
