using Controller.Nbd;

namespace Controller.Tests.Nbd;

/// <summary>
/// The codec against byte strings written out by hand from the NBD protocol's own layout
/// (doc/proto.md: every field big-endian, in the order given there), not from the codec: the
/// server, ssdhost's client and the tests' client share the codec, so a mistake in it would
/// otherwise be agreed on by all three.
/// </summary>
[Trait("Category", "Unit")]
public sealed class NbdCodecTests
{
    [Fact]
    public void TheGreetingIsNbdmagicIhaveoptAndTheFlags()
    {
        byte[] bytes = new byte[NbdGreeting.Bytes];
        new NbdGreeting(NbdHandshakeFeatures.FixedNewstyle | NbdHandshakeFeatures.NoZeroes).Write(bytes);

        Assert.Equal("4E42444D41474943" + "49484156454F5054" + "0003", Convert.ToHexString(bytes));
        Assert.Equal(
            NbdHandshakeFeatures.FixedNewstyle | NbdHandshakeFeatures.NoZeroes,
            NbdGreeting.Read(bytes)!.Value.Features
        );
        bytes[3] ^= 1;
        Assert.Null(NbdGreeting.Read(bytes));
    }

    [Fact]
    public void AnOptionIsIhaveoptTheOptionTheLengthAndTheData()
    {
        byte[] message = NbdOptionHeader.Message(NbdOption.Go, [0xAA, 0xBB]);

        Assert.Equal("49484156454F5054" + "00000007" + "00000002" + "AABB", Convert.ToHexString(message));
        Assert.Equal(new NbdOptionHeader(NbdProtocol.OptionMagic, NbdOption.Go, 2), NbdOptionHeader.Read(message));
    }

    [Fact]
    public void AnOptionReplyIsItsMagicTheOptionTheTypeTheLengthAndTheData()
    {
        byte[] message = NbdOptionReplyHeader.Message(
            NbdOption.ListMetaContext,
            NbdOptionReply.ErrorUnsupported,
            [0x01]
        );

        Assert.Equal("0003E889045565A9" + "00000009" + "80000001" + "00000001" + "01", Convert.ToHexString(message));
        Assert.Equal(
            new NbdOptionReplyHeader(
                NbdProtocol.OptionReplyMagic,
                NbdOption.ListMetaContext,
                NbdOptionReply.ErrorUnsupported,
                1
            ),
            NbdOptionReplyHeader.Read(message)
        );
    }

    [Fact]
    public void ARequestIsMagicFlagsTypeCookieOffsetLength()
    {
        byte[] bytes = new byte[NbdRequestHeader.Bytes];
        var request = new NbdRequestHeader(
            NbdCommandModifiers.Fua,
            NbdCommand.Write,
            0x0102030405060708,
            0x1000,
            0x2000
        );
        request.Write(bytes);

        Assert.Equal(
            "25609513" + "0001" + "0001" + "0102030405060708" + "0000000000001000" + "00002000",
            Convert.ToHexString(bytes)
        );
        Assert.Equal(request, NbdRequestHeader.Read(bytes));
    }

    [Fact]
    public void ASimpleReplyIsMagicErrorCookie()
    {
        byte[] bytes = new byte[NbdSimpleReply.Bytes];
        new NbdSimpleReply(NbdError.Invalid, 9).Write(bytes);

        Assert.Equal("67446698" + "00000016" + "0000000000000009", Convert.ToHexString(bytes));
        Assert.Equal(NbdProtocol.SimpleReplyMagic, NbdSimpleReply.MagicOf(bytes));
        Assert.Equal(new NbdSimpleReply(NbdError.Invalid, 9), NbdSimpleReply.Read(bytes));
    }

    [Fact]
    public void AChunkIsMagicFlagsTypeCookieLength()
    {
        byte[] bytes = new byte[NbdChunkHeader.Bytes];
        NbdChunkHeader.Last(NbdReplyType.OffsetData, 5, 8 + 512).Write(bytes);

        Assert.Equal("668E33EF" + "0001" + "0001" + "0000000000000005" + "00000208", Convert.ToHexString(bytes));
        NbdChunkHeader read = NbdChunkHeader.Read(bytes);
        Assert.True(read.Done);
        Assert.False(new NbdChunkHeader(0, NbdReplyType.OffsetData, 5, 0).Done);
        Assert.Equal((NbdReplyType.OffsetData, 5ul, 520u), (read.Type, read.Handle, read.Length));
    }

    [Fact]
    public void InfoAndGoDataAreTheNameThenTheRequestsAndMalformedDataIsRefused()
    {
        byte[] data = NbdOptionData.Info("ab", NbdInfo.BlockSize, NbdInfo.Description);

        Assert.Equal("00000002" + "6162" + "0002" + "0003" + "0002", Convert.ToHexString(data));
        (string name, NbdInfo[] requests) = NbdOptionData.ReadInfo(data)!.Value;
        Assert.Equal("ab", name);
        Assert.Equal([NbdInfo.BlockSize, NbdInfo.Description], requests);
        Assert.Null(NbdOptionData.ReadInfo(data.AsSpan(..^1)));
        Assert.Null(NbdOptionData.ReadInfo(Convert.FromHexString("000000FF6162" + "0000")));
    }

    [Fact]
    public void MetaContextDataIsTheNameTheCountAndEachQueryAndTooLongAStringIsRefused()
    {
        byte[] data = NbdOptionData.MetaContext("", "base:allocation");

        Assert.Equal(
            "00000000" + "00000001" + "0000000F" + Convert.ToHexString("base:allocation"u8),
            Convert.ToHexString(data)
        );
        (string name, List<string> queries) = NbdOptionData.ReadMetaContext(data)!.Value;
        Assert.Equal("", name);
        Assert.Equal(["base:allocation"], queries);
        Assert.Null(NbdOptionData.ReadMetaContext([.. data, 0]));
        Assert.Null(NbdOptionData.ReadMetaContext(Convert.FromHexString("00001001")));
    }

    [Fact]
    public void TheInformationRepliesAreTheTypeThenTheirFields()
    {
        Assert.Equal(
            "0000" + "0000000000100000" + "0003",
            Convert.ToHexString(
                NbdOptionData.ExportInfo(1 << 20, NbdExportFeatures.HasFlags | NbdExportFeatures.ReadOnly)
            )
        );
        Assert.Equal(
            "0003" + "00000200" + "00001000" + "02000000",
            Convert.ToHexString(NbdOptionData.BlockSizeInfo(512, 4096, 32 << 20))
        );
        Assert.Equal("0002" + "6869", Convert.ToHexString(NbdOptionData.TextInfo(NbdInfo.Description, "hi")));
        Assert.Equal(
            new NbdInfoReply(NbdInfo.Export, Size: 1 << 20, Features: NbdExportFeatures.HasFlags),
            NbdOptionData.ReadInfoReply(NbdOptionData.ExportInfo(1 << 20, NbdExportFeatures.HasFlags))
        );
        Assert.Equal(
            (512u, 4096u, 32u << 20),
            NbdOptionData.ReadInfoReply(NbdOptionData.BlockSizeInfo(512, 4096, 32 << 20))!.BlockSizes
        );
        Assert.Null(NbdOptionData.ReadInfoReply(Convert.FromHexString("0000" + "00")));
    }

    [Fact]
    public void TheOtherOptionRepliesAreLaidOutAsTheProtocolSays()
    {
        Assert.Equal("00000003" + "737364", Convert.ToHexString(NbdOptionData.Server("ssd")));
        Assert.Equal(("ssd", "x"), NbdOptionData.ReadServer(NbdOptionData.Server("ssd", "x"))!.Value);
        Assert.Null(NbdOptionData.ReadServer(Convert.FromHexString("00000009737364")));
        Assert.Equal(
            "00000001" + Convert.ToHexString("base:allocation"u8),
            Convert.ToHexString(NbdOptionData.MetaContextReply(1, "base:allocation"))
        );
        Assert.Equal(
            "0000000000001000" + "0001",
            Convert.ToHexString(NbdOptionData.ExportNameReply(4096, NbdExportFeatures.HasFlags, noZeroes: true))
        );
        Assert.Equal(10 + 124, NbdOptionData.ExportNameReply(4096, NbdExportFeatures.HasFlags, noZeroes: false).Length);
    }

    [Fact]
    public void TheChunkPayloadsAreLaidOutAsTheProtocolSays()
    {
        byte[] status = new byte[NbdChunkData.BlockStatusBytes(2)];
        NbdChunkData.WriteBlockStatus(
            status,
            1,
            [(4096, NbdAllocationState.None), (8192, NbdAllocationState.Hole | NbdAllocationState.Zero)]
        );

        Assert.Equal("00000001" + "00001000" + "00000000" + "00002000" + "00000003", Convert.ToHexString(status));
        Assert.Equal(2, NbdChunkData.ReadBlockStatus(status)!.Value.Extents.Count);
        Assert.Null(NbdChunkData.ReadBlockStatus(status.AsSpan(..^1)));
        Assert.Equal("00000005" + "0002" + "6F6B", Convert.ToHexString(NbdChunkData.Error(NbdError.Io, "ok")));
        Assert.Equal((NbdError.Io, "ok"), NbdChunkData.ReadError(NbdChunkData.Error(NbdError.Io, "ok"))!.Value);
        Assert.Equal((0x10ul, 0x200u), NbdChunkData.ReadHole(Convert.FromHexString("0000000000000010" + "00000200")));
    }

    [Fact]
    public void InfoDataAtItsBoundsIsReadOrRefusedExactly()
    {
        Assert.Equal("", NbdOptionData.ReadInfo(Convert.FromHexString("00000000" + "0000"))!.Value.Name);
        Assert.Equal("ab", NbdOptionData.ReadInfo(Convert.FromHexString("00000002" + "6162" + "0000"))!.Value.Name);
        Assert.Null(NbdOptionData.ReadInfo(Convert.FromHexString("00000004" + "6162" + "0000")));
        Assert.Null(NbdOptionData.ReadInfo(Convert.FromHexString("00000000" + "00")));
        (string name, NbdInfo[] requests) = NbdOptionData
            .ReadInfo(NbdOptionData.Info("abc", NbdInfo.Name, NbdInfo.Description, NbdInfo.BlockSize))!
            .Value;
        Assert.Equal("abc", name);
        Assert.Equal([NbdInfo.Name, NbdInfo.Description, NbdInfo.BlockSize], requests);
        Assert.Throws<ArgumentNullException>(() => NbdOptionData.Info("", null!));
        Assert.Throws<ArgumentNullException>(() => NbdOptionData.MetaContext("", null!));
    }

    [Fact]
    public void MetaContextDataAtItsBoundsIsReadOrRefusedExactly()
    {
        (string name, List<string> queries) = NbdOptionData
            .ReadMetaContext(NbdOptionData.MetaContext("ssd", "a", ""))!
            .Value;
        Assert.Equal("ssd", name);
        Assert.Equal(["a", ""], queries);
        string longest = new('q', NbdProtocol.MaxStringBytes);
        Assert.Equal([longest], NbdOptionData.ReadMetaContext(NbdOptionData.MetaContext("", longest))!.Value.Queries);
        Assert.Null(NbdOptionData.ReadMetaContext(NbdOptionData.MetaContext("", longest + "q")));
        Assert.Null(NbdOptionData.ReadMetaContext(Convert.FromHexString("00000000" + "000000")));
        Assert.Null(NbdOptionData.ReadMetaContext(Convert.FromHexString("00000005" + "6162")));
        Assert.Null(
            NbdOptionData.ReadMetaContext(Convert.FromHexString("00000000" + "00000001" + "00000005" + "61626364"))
        );
        Assert.Null(NbdOptionData.ReadMetaContext(Convert.FromHexString("00000000" + "00000002" + "00000000")));
        Assert.Null(NbdOptionData.ReadMetaContext(Convert.FromHexString("000000")));
        Assert.Empty(NbdOptionData.ReadMetaContext(Convert.FromHexString("00000000" + "00000000"))!.Value.Queries);
    }

    [Fact]
    public void RepliesAtTheirBoundsAreReadOrRefusedExactly()
    {
        Assert.Equal(("", ""), NbdOptionData.ReadServer(Convert.FromHexString("00000000"))!.Value);
        Assert.Equal(("ssd", ""), NbdOptionData.ReadServer(Convert.FromHexString("00000003" + "737364"))!.Value);
        Assert.Null(NbdOptionData.ReadServer(Convert.FromHexString("000000")));
        Assert.Equal(new NbdInfoReply(NbdInfo.Name), NbdOptionData.ReadInfoReply(Convert.FromHexString("0001")));
        Assert.Null(NbdOptionData.ReadInfoReply(Convert.FromHexString("00")));
        Assert.Null(NbdOptionData.ReadInfoReply(Convert.FromHexString("0003" + "000002000000100002")));
        Assert.Equal(
            (1u, "base:allocation"),
            NbdOptionData.ReadMetaContextReply(NbdOptionData.MetaContextReply(1, "base:allocation"))!.Value
        );
        Assert.Equal((7u, ""), NbdOptionData.ReadMetaContextReply(Convert.FromHexString("00000007"))!.Value);
        Assert.Null(NbdOptionData.ReadMetaContextReply(Convert.FromHexString("000007")));
    }

    [Fact]
    public void ChunkPayloadsAtTheirBoundsAreReadOrRefusedExactly()
    {
        (uint context, List<(uint Length, NbdAllocationState Flags)> extents) = NbdChunkData
            .ReadBlockStatus(Convert.FromHexString("00000001" + "00001000" + "00000000" + "00002000" + "00000003"))!
            .Value;
        Assert.Equal(1u, context);
        Assert.Equal(
            [(4096u, NbdAllocationState.None), (8192u, NbdAllocationState.Hole | NbdAllocationState.Zero)],
            extents
        );
        Assert.Empty(NbdChunkData.ReadBlockStatus(Convert.FromHexString("00000001"))!.Value.Extents);
        Assert.Null(NbdChunkData.ReadBlockStatus(Convert.FromHexString("000001")));
        Assert.Equal((NbdError.Io, ""), NbdChunkData.ReadError(Convert.FromHexString("00000005" + "0000"))!.Value);
        Assert.Null(NbdChunkData.ReadError(Convert.FromHexString("00000005" + "00")));
        Assert.Equal(
            (NbdError.Io, "ok"),
            NbdChunkData.ReadError(Convert.FromHexString("00000005" + "000A" + "6F6B"))!.Value
        );
    }
}
