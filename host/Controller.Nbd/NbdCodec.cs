using System.Buffers.Binary;
using System.Text;

namespace Controller.Nbd;

/// <summary>
/// The server's greeting (fixed newstyle): NBDMAGIC, IHAVEOPT and the handshake flags, 18 bytes.
/// </summary>
/// <param name="Features">The handshake flags.</param>
public readonly record struct NbdGreeting(NbdHandshakeFeatures Features)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = 18;

    /// <summary>
    /// Writes the greeting into the first <see cref="Bytes"/> bytes of <paramref name="destination"/>.
    /// </summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdProtocol.InitMagic);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)Features);
    }

    /// <summary>Reads a greeting; null when the two magic numbers are not NBDMAGIC and IHAVEOPT.</summary>
    public static NbdGreeting? Read(ReadOnlySpan<byte> source) =>
        BinaryPrimitives.ReadUInt64BigEndian(source) == NbdProtocol.InitMagic
        && BinaryPrimitives.ReadUInt64BigEndian(source[8..]) == NbdProtocol.OptionMagic
            ? new NbdGreeting((NbdHandshakeFeatures)BinaryPrimitives.ReadUInt16BigEndian(source[16..]))
            : null;
}

/// <summary>The client's flags, its answer to the greeting: 4 bytes.</summary>
/// <param name="Features">The client flags.</param>
public readonly record struct NbdClientFlags(NbdClientFeatures Features)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = 4;

    /// <summary>Writes the flags.</summary>
    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Features);

    /// <summary>Reads the flags.</summary>
    public static NbdClientFlags Read(ReadOnlySpan<byte> source) =>
        new((NbdClientFeatures)BinaryPrimitives.ReadUInt32BigEndian(source));
}

/// <summary>An option's header, before its data: magic (IHAVEOPT), option, data length; 16 bytes.</summary>
/// <param name="Magic">IHAVEOPT in a well-formed header.</param>
/// <param name="Option">The option.</param>
/// <param name="Length">Bytes of data after the header.</param>
public readonly record struct NbdOptionHeader(ulong Magic, NbdOption Option, uint Length)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = 16;

    /// <summary>
    /// A well-formed header for <paramref name="option"/> with <paramref name="length"/> bytes of data.
    /// </summary>
    public NbdOptionHeader(NbdOption option, uint length)
        : this(NbdProtocol.OptionMagic, option, length) { }

    /// <summary>Writes the header.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], Length);
    }

    /// <summary>Reads a header (whatever its magic says).</summary>
    public static NbdOptionHeader Read(ReadOnlySpan<byte> source) =>
        new(
            BinaryPrimitives.ReadUInt64BigEndian(source),
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[12..])
        );

    /// <summary>The header followed by <paramref name="data"/>, as one message.</summary>
    public static byte[] Message(NbdOption option, ReadOnlySpan<byte> data)
    {
        byte[] message = new byte[Bytes + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).Write(message);
        data.CopyTo(message.AsSpan(Bytes));
        return message;
    }
}

/// <summary>An option reply's header, before its data: magic, option, reply type, data length; 20 bytes.</summary>
/// <param name="Magic">The option reply magic in a well-formed header.</param>
/// <param name="Option">The option answered.</param>
/// <param name="Type">The reply type (an error type has the high bit set).</param>
/// <param name="Length">Bytes of data after the header.</param>
public readonly record struct NbdOptionReplyHeader(ulong Magic, NbdOption Option, NbdOptionReply Type, uint Length)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = 20;

    /// <summary>Reads a header (whatever its magic says).</summary>
    public static NbdOptionReplyHeader Read(ReadOnlySpan<byte> source) =>
        new(
            BinaryPrimitives.ReadUInt64BigEndian(source),
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            (NbdOptionReply)BinaryPrimitives.ReadUInt32BigEndian(source[12..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..])
        );

    /// <summary>
    /// A well-formed reply of <paramref name="type"/> to <paramref name="option"/> carrying <paramref name="data"/>, as
    /// one message.
    /// </summary>
    public static byte[] Message(NbdOption option, NbdOptionReply type, ReadOnlySpan<byte> data)
    {
        byte[] message = new byte[Bytes + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(message, NbdProtocol.OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(16), (uint)data.Length);
        data.CopyTo(message.AsSpan(Bytes));
        return message;
    }
}

/// <summary>A transmission request's header: magic, command flags, command, cookie, offset, length; 28 bytes.</summary>
/// <param name="Magic">The request magic in a well-formed header.</param>
/// <param name="Flags">The command flags.</param>
/// <param name="Command">The command.</param>
/// <param name="Handle">The cookie the replies carry back.</param>
/// <param name="Offset">The first byte.</param>
/// <param name="Length">The bytes covered (for WRITE, the payload that follows).</param>
public readonly record struct NbdRequestHeader(
    uint Magic,
    NbdCommandModifiers Flags,
    NbdCommand Command,
    ulong Handle,
    ulong Offset,
    uint Length
)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = NbdProtocol.RequestBytes;

    /// <summary>A well-formed request header.</summary>
    public NbdRequestHeader(NbdCommandModifiers flags, NbdCommand command, ulong handle, ulong offset, uint length)
        : this(NbdProtocol.RequestMagic, flags, command, handle, offset, length) { }

    /// <summary>Writes the header.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }

    /// <summary>Reads a header (whatever its magic says).</summary>
    public static NbdRequestHeader Read(ReadOnlySpan<byte> source) =>
        new(
            BinaryPrimitives.ReadUInt32BigEndian(source),
            (NbdCommandModifiers)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..])
        );
}

/// <summary>
/// A simple reply's header: magic, error, cookie; 16 bytes. A reply's magic tells a simple reply
/// from a structured chunk (<see cref="MagicOf"/>); the rest is read once it is known.
/// </summary>
/// <param name="Error">The error, or none.</param>
/// <param name="Handle">The request's cookie.</param>
public readonly record struct NbdSimpleReply(NbdError Error, ulong Handle)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = NbdProtocol.SimpleReplyBytes;

    /// <summary>The magic that starts any reply (4 bytes).</summary>
    public static uint MagicOf(ReadOnlySpan<byte> source) => BinaryPrimitives.ReadUInt32BigEndian(source);

    /// <summary>Writes the header.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdProtocol.SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
    }

    /// <summary>Reads the header from the whole 16 bytes (the magic is not checked).</summary>
    public static NbdSimpleReply Read(ReadOnlySpan<byte> source) =>
        new(
            (NbdError)BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..])
        );
}

/// <summary>A structured reply chunk's header: magic, flags, type, cookie, length; 20 bytes.</summary>
/// <param name="Flags">Chunk flags; bit 0 is NBD_REPLY_FLAG_DONE.</param>
/// <param name="Type">The chunk type.</param>
/// <param name="Handle">The request's cookie.</param>
/// <param name="Length">Bytes of payload after the header.</param>
public readonly record struct NbdChunkHeader(ushort Flags, NbdReplyType Type, ulong Handle, uint Length)
{
    /// <summary>Bytes on the wire.</summary>
    public const int Bytes = NbdProtocol.StructuredReplyBytes;

    /// <summary>NBD_REPLY_FLAG_DONE: the last chunk of its reply.</summary>
    public const ushort DoneFlag = 1;

    /// <summary>True for the last chunk of a reply.</summary>
    public bool Done => (Flags & DoneFlag) != 0;

    /// <summary>The header of a chunk that ends its reply.</summary>
    public static NbdChunkHeader Last(NbdReplyType type, ulong handle, uint length) =>
        new(DoneFlag, type, handle, length);

    /// <summary>Writes the header.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdProtocol.StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    /// <summary>Reads the header from the whole 20 bytes (the magic is not checked).</summary>
    public static NbdChunkHeader Read(ReadOnlySpan<byte> source) =>
        new(
            BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..])
        );
}

/// <summary>What an NBD_REP_INFO carries, read by <see cref="NbdOptionData.ReadInfoReply"/>.</summary>
/// <param name="Type">Which information.</param>
/// <param name="Size">NBD_INFO_EXPORT: the export's size in bytes.</param>
/// <param name="Features">NBD_INFO_EXPORT: the transmission flags.</param>
/// <param name="BlockSizes">NBD_INFO_BLOCK_SIZE: minimum, preferred, maximum.</param>
/// <param name="Text">NBD_INFO_NAME or NBD_INFO_DESCRIPTION.</param>
public sealed record NbdInfoReply(
    NbdInfo Type,
    long Size = 0,
    NbdExportFeatures Features = NbdExportFeatures.None,
    (uint Minimum, uint Preferred, uint Maximum) BlockSizes = default,
    string Text = ""
);

/// <summary>
/// The data of the options and option replies this project speaks, both ways: what a client
/// sends, what a server answers. A Read returns null (or false) for data that is malformed.
/// </summary>
public static class NbdOptionData
{
    /// <summary>NBD_OPT_INFO and NBD_OPT_GO: name length, name, number of information requests, each 16 bits.</summary>
    public static byte[] Info(string name, params NbdInfo[] requests)
    {
        ArgumentNullException.ThrowIfNull(requests);
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

    /// <summary>Reads NBD_OPT_INFO or NBD_OPT_GO data; null when the lengths do not add up.</summary>
    public static (string Name, NbdInfo[] Requests)? ReadInfo(ReadOnlySpan<byte> data)
    {
        if (
            data.Length < 6
            || BinaryPrimitives.ReadUInt32BigEndian(data) is var nameLength && nameLength > data.Length - 6
        )
        {
            return null;
        }

        int requests = BinaryPrimitives.ReadUInt16BigEndian(data[(4 + (int)nameLength)..]);
        if (data.Length != 6 + (int)nameLength + (2 * requests))
        {
            return null;
        }

        var wanted = new NbdInfo[requests];
        for (int i = 0; i < requests; i++)
        {
            wanted[i] = (NbdInfo)BinaryPrimitives.ReadUInt16BigEndian(data[(6 + (int)nameLength + (2 * i))..]);
        }

        return (Encoding.UTF8.GetString(data.Slice(4, (int)nameLength)), wanted);
    }

    /// <summary>
    /// NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: the export's name, then the queries, each a 32-bit
    /// length and its text.
    /// </summary>
    public static byte[] MetaContext(string name, params string[] queries)
    {
        ArgumentNullException.ThrowIfNull(queries);
        using var data = new MemoryStream();
        Text(data, name);
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        data.Write(count);
        foreach (string query in queries)
        {
            Text(data, query);
        }

        return data.ToArray();
    }

    /// <summary>
    /// Reads meta context data; null when it is malformed or a string is longer than the protocol allows.
    /// </summary>
    public static (string Name, List<string> Queries)? ReadMetaContext(ReadOnlySpan<byte> data)
    {
        int position = 0;
        if (!TryText(data, ref position, out string name) || data.Length - position < 4)
        {
            return null;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(data[position..]);
        position += 4;
        var queries = new List<string>();
        for (uint i = 0; i < count; i++)
        {
            if (!TryText(data, ref position, out string query))
            {
                return null;
            }

            queries.Add(query);
        }

        return position == data.Length ? (name, queries) : null;
    }

    /// <summary>NBD_REP_SERVER: an export's name (length and text), then its description, if any.</summary>
    public static byte[] Server(string name, string description = "")
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        byte[] text = Encoding.UTF8.GetBytes(description);
        byte[] data = new byte[4 + nameBytes.Length + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        text.CopyTo(data, 4 + nameBytes.Length);
        return data;
    }

    /// <summary>Reads NBD_REP_SERVER data; null when the name's length overruns it.</summary>
    public static (string Name, string Description)? ReadServer(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(data) > data.Length - 4)
        {
            return null;
        }

        int nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
        return (Encoding.UTF8.GetString(data.Slice(4, nameLength)), Encoding.UTF8.GetString(data[(4 + nameLength)..]));
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_EXPORT: size and transmission flags.</summary>
    public static byte[] ExportInfo(long size, NbdExportFeatures features)
    {
        byte[] data = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfo.Export);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(2), (ulong)size);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(10), (ushort)features);
        return data;
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_BLOCK_SIZE: minimum, preferred and maximum block sizes.</summary>
    public static byte[] BlockSizeInfo(uint minimum, uint preferred, uint maximum)
    {
        byte[] data = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfo.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(2), minimum);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(6), preferred);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(10), maximum);
        return data;
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_NAME or NBD_INFO_DESCRIPTION: the text.</summary>
    public static byte[] TextInfo(NbdInfo type, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        byte[] data = new byte[2 + bytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)type);
        bytes.CopyTo(data, 2);
        return data;
    }

    /// <summary>Reads NBD_REP_INFO data; null when it is too short for its type.</summary>
    public static NbdInfoReply? ReadInfoReply(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2)
        {
            return null;
        }

        var type = (NbdInfo)BinaryPrimitives.ReadUInt16BigEndian(data);
        return type switch
        {
            NbdInfo.Export when data.Length >= 12 => new NbdInfoReply(
                type,
                Size: (long)BinaryPrimitives.ReadUInt64BigEndian(data[2..]),
                Features: (NbdExportFeatures)BinaryPrimitives.ReadUInt16BigEndian(data[10..])
            ),
            NbdInfo.BlockSize when data.Length >= 14 => new NbdInfoReply(
                type,
                BlockSizes: (
                    BinaryPrimitives.ReadUInt32BigEndian(data[2..]),
                    BinaryPrimitives.ReadUInt32BigEndian(data[6..]),
                    BinaryPrimitives.ReadUInt32BigEndian(data[10..])
                )
            ),
            NbdInfo.Name or NbdInfo.Description => new NbdInfoReply(type, Text: Encoding.UTF8.GetString(data[2..])),
            NbdInfo.Export or NbdInfo.BlockSize => null,
            _ => new NbdInfoReply(type),
        };
    }

    /// <summary>NBD_REP_META_CONTEXT: the context's id, then its name.</summary>
    public static byte[] MetaContextReply(uint id, string name)
    {
        byte[] text = Encoding.UTF8.GetBytes(name);
        byte[] data = new byte[4 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, id);
        text.CopyTo(data, 4);
        return data;
    }

    /// <summary>Reads NBD_REP_META_CONTEXT data; null when it is shorter than the id.</summary>
    public static (uint Id, string Name)? ReadMetaContextReply(ReadOnlySpan<byte> data) =>
        data.Length < 4 ? null : (BinaryPrimitives.ReadUInt32BigEndian(data), Encoding.UTF8.GetString(data[4..]));

    /// <summary>
    /// The reply to NBD_OPT_EXPORT_NAME: size, transmission flags, and 124 zero bytes unless the client took NO_ZEROES.
    /// </summary>
    public static byte[] ExportNameReply(long size, NbdExportFeatures features, bool noZeroes)
    {
        byte[] reply = new byte[10 + (noZeroes ? 0 : NbdProtocol.ExportNamePaddingBytes)];
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)size);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), (ushort)features);
        return reply;
    }

    private static void Text(MemoryStream data, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
        data.Write(length);
        data.Write(bytes);
    }

    private static bool TryText(ReadOnlySpan<byte> data, ref int position, out string text)
    {
        text = string.Empty;
        if (data.Length - position < 4)
        {
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(data[position..]);
        if (length > NbdProtocol.MaxStringBytes || length > data.Length - position - 4)
        {
            return false;
        }

        text = Encoding.UTF8.GetString(data.Slice(position + 4, (int)length));
        position += 4 + (int)length;
        return true;
    }
}

/// <summary>The payloads of structured reply chunks this project speaks, both ways.</summary>
public static class NbdChunkData
{
    /// <summary>Bytes before the data of an NBD_REPLY_TYPE_OFFSET_DATA chunk: the offset.</summary>
    public const int OffsetBytes = 8;

    /// <summary>Bytes of an NBD_REPLY_TYPE_OFFSET_HOLE chunk: offset and size.</summary>
    public const int HoleBytes = 12;

    /// <summary>Writes the offset that starts an NBD_REPLY_TYPE_OFFSET_DATA chunk.</summary>
    public static void WriteOffset(Span<byte> destination, ulong offset) =>
        BinaryPrimitives.WriteUInt64BigEndian(destination, offset);

    /// <summary>Reads the offset that starts an OFFSET_DATA or OFFSET_HOLE chunk.</summary>
    public static ulong ReadOffset(ReadOnlySpan<byte> source) => BinaryPrimitives.ReadUInt64BigEndian(source);

    /// <summary>Reads an NBD_REPLY_TYPE_OFFSET_HOLE chunk: offset and size.</summary>
    public static (ulong Offset, uint Size) ReadHole(ReadOnlySpan<byte> source) =>
        (BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));

    /// <summary>Bytes of an NBD_REPLY_TYPE_BLOCK_STATUS payload with <paramref name="extents"/> descriptors.</summary>
    public static int BlockStatusBytes(int extents) => 4 + (8 * extents);

    /// <summary>
    /// Writes an NBD_REPLY_TYPE_BLOCK_STATUS payload: the context id, then each extent's length and flags.
    /// </summary>
    public static void WriteBlockStatus(
        Span<byte> destination,
        uint contextId,
        ReadOnlySpan<(uint Length, NbdAllocationState Flags)> extents
    )
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, contextId);
        for (int i = 0; i < extents.Length; i++)
        {
            Span<byte> descriptor = destination[(4 + (8 * i))..];
            BinaryPrimitives.WriteUInt32BigEndian(descriptor, extents[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(descriptor[4..], (uint)extents[i].Flags);
        }
    }

    /// <summary>
    /// Reads an NBD_REPLY_TYPE_BLOCK_STATUS payload; null unless it is the context id and whole descriptors.
    /// </summary>
    public static (uint ContextId, List<(uint Length, NbdAllocationState Flags)> Extents)? ReadBlockStatus(
        ReadOnlySpan<byte> source
    )
    {
        if (source.Length < 4 || (source.Length - 4) % 8 != 0)
        {
            return null;
        }

        var extents = new List<(uint, NbdAllocationState)>((source.Length - 4) / 8);
        for (int i = 4; i < source.Length; i += 8)
        {
            extents.Add(
                (
                    BinaryPrimitives.ReadUInt32BigEndian(source[i..]),
                    (NbdAllocationState)BinaryPrimitives.ReadUInt32BigEndian(source[(i + 4)..])
                )
            );
        }

        return (BinaryPrimitives.ReadUInt32BigEndian(source), extents);
    }

    /// <summary>An NBD_REPLY_TYPE_ERROR payload: the error, the message's length and the message.</summary>
    public static byte[] Error(NbdError error, string message)
    {
        byte[] text = Encoding.UTF8.GetBytes(message);
        byte[] data = new byte[6 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)error);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4), (ushort)text.Length);
        text.CopyTo(data, 6);
        return data;
    }

    /// <summary>
    /// Reads an NBD_REPLY_TYPE_ERROR (or ERROR_OFFSET) payload; null when shorter than its fixed part.
    /// </summary>
    public static (NbdError Error, string Message)? ReadError(ReadOnlySpan<byte> source)
    {
        if (source.Length < 6)
        {
            return null;
        }

        int length = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(source[4..]), source.Length - 6);
        return (
            (NbdError)BinaryPrimitives.ReadUInt32BigEndian(source),
            Encoding.UTF8.GetString(source.Slice(6, length))
        );
    }
}
