namespace Controller.Nbd;

/// <summary>
/// The numbers of the NBD protocol (the NBD project's <c>doc/proto.md</c>, fixed newstyle), shared
/// by the server here and the host tool's client. Every value goes on the wire big-endian.
/// </summary>
public static class NbdProtocol
{
    /// <summary>The default TCP port.</summary>
    public const int DefaultPort = 10809;

    /// <summary>"NBDMAGIC", the first eight bytes the server sends.</summary>
    public const ulong InitMagic = 0x4E42444D41474943;

    /// <summary>"IHAVEOPT": after the init magic from the server, and before each option from the client.</summary>
    public const ulong OptionMagic = 0x49484156454F5054;

    /// <summary>Before each option reply.</summary>
    public const ulong OptionReplyMagic = 0x3E889045565A9;

    /// <summary>Before each request in transmission.</summary>
    public const uint RequestMagic = 0x25609513;

    /// <summary>Before each simple reply.</summary>
    public const uint SimpleReplyMagic = 0x67446698;

    /// <summary>Before each structured reply chunk.</summary>
    public const uint StructuredReplyMagic = 0x668E33EF;

    /// <summary>Bytes of a request header.</summary>
    public const int RequestBytes = 28;

    /// <summary>Bytes of a simple reply header.</summary>
    public const int SimpleReplyBytes = 16;

    /// <summary>Bytes of a structured reply chunk header.</summary>
    public const int StructuredReplyBytes = 20;

    /// <summary>Bytes of the zero padding after NBD_OPT_EXPORT_NAME's reply, unless NO_ZEROES.</summary>
    public const int ExportNamePaddingBytes = 124;

    /// <summary>The longest string (export name, context name, message) the protocol allows.</summary>
    public const int MaxStringBytes = 4096;

    /// <summary>The one metadata context served: which ranges are holes and read as zeros.</summary>
    public const string BaseAllocation = "base:allocation";
}

/// <summary>Handshake flags the server sends (16 bits).</summary>
[Flags]
public enum NbdHandshakeFeatures : ushort
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>NBD_FLAG_FIXED_NEWSTYLE.</summary>
    FixedNewstyle = 1 << 0,

    /// <summary>NBD_FLAG_NO_ZEROES.</summary>
    NoZeroes = 1 << 1,
}

/// <summary>Client flags the client answers with (32 bits).</summary>
[Flags]
public enum NbdClientFeatures : uint
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>NBD_FLAG_C_FIXED_NEWSTYLE.</summary>
    FixedNewstyle = 1 << 0,

    /// <summary>NBD_FLAG_C_NO_ZEROES.</summary>
    NoZeroes = 1 << 1,
}

/// <summary>Options of the handshake.</summary>
public enum NbdOption : uint
{
    /// <summary>
    /// NBD_OPT_EXPORT_NAME: choose an export and enter transmission, no reply but the export's size and flags.
    /// </summary>
    ExportName = 1,

    /// <summary>NBD_OPT_ABORT.</summary>
    Abort = 2,

    /// <summary>NBD_OPT_LIST.</summary>
    List = 3,

    /// <summary>NBD_OPT_STARTTLS (not served).</summary>
    StartTls = 5,

    /// <summary>NBD_OPT_INFO.</summary>
    Info = 6,

    /// <summary>NBD_OPT_GO.</summary>
    Go = 7,

    /// <summary>NBD_OPT_STRUCTURED_REPLY.</summary>
    StructuredReply = 8,

    /// <summary>NBD_OPT_LIST_META_CONTEXT.</summary>
    ListMetaContext = 9,

    /// <summary>NBD_OPT_SET_META_CONTEXT.</summary>
    SetMetaContext = 10,
}

/// <summary>Option reply types; those with the high bit set are errors.</summary>
public enum NbdOptionReply : uint
{
    /// <summary>NBD_REP_ACK.</summary>
    Ack = 1,

    /// <summary>NBD_REP_SERVER: one export in a list.</summary>
    Server = 2,

    /// <summary>NBD_REP_INFO.</summary>
    Info = 3,

    /// <summary>NBD_REP_META_CONTEXT.</summary>
    MetaContext = 4,

    /// <summary>NBD_REP_ERR_UNSUP: the option is not known here.</summary>
    ErrorUnsupported = (1u << 31) + 1,

    /// <summary>NBD_REP_ERR_POLICY.</summary>
    ErrorPolicy = (1u << 31) + 2,

    /// <summary>NBD_REP_ERR_INVALID: the option's data is malformed or not allowed now.</summary>
    ErrorInvalid = (1u << 31) + 3,

    /// <summary>NBD_REP_ERR_TLS_REQD: the server requires TLS first (NBD_OPT_STARTTLS).</summary>
    ErrorTlsRequired = (1u << 31) + 5,

    /// <summary>NBD_REP_ERR_UNKNOWN: no such export.</summary>
    ErrorUnknown = (1u << 31) + 6,

    /// <summary>NBD_REP_ERR_TOO_BIG.</summary>
    ErrorTooBig = (1u << 31) + 9,
}

/// <summary>NBD_INFO_* types in NBD_REP_INFO replies.</summary>
public enum NbdInfo : ushort
{
    /// <summary>NBD_INFO_EXPORT: size and transmission flags.</summary>
    Export = 0,

    /// <summary>NBD_INFO_NAME.</summary>
    Name = 1,

    /// <summary>NBD_INFO_DESCRIPTION.</summary>
    Description = 2,

    /// <summary>NBD_INFO_BLOCK_SIZE: minimum, preferred and maximum block sizes.</summary>
    BlockSize = 3,
}

/// <summary>Transmission flags of an export (16 bits).</summary>
[Flags]
public enum NbdExportFeatures : ushort
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>NBD_FLAG_HAS_FLAGS.</summary>
    HasFlags = 1 << 0,

    /// <summary>NBD_FLAG_READ_ONLY.</summary>
    ReadOnly = 1 << 1,

    /// <summary>NBD_FLAG_SEND_FLUSH.</summary>
    SendFlush = 1 << 2,

    /// <summary>NBD_FLAG_SEND_FUA.</summary>
    SendFua = 1 << 3,

    /// <summary>NBD_FLAG_SEND_TRIM.</summary>
    SendTrim = 1 << 5,

    /// <summary>NBD_FLAG_SEND_WRITE_ZEROES.</summary>
    SendWriteZeroes = 1 << 6,

    /// <summary>
    /// NBD_FLAG_SEND_DF: the client may set DF on reads (not advertised: a read's reply is never fragmented anyway).
    /// </summary>
    SendDontFragment = 1 << 7,

    /// <summary>NBD_FLAG_CAN_MULTI_CONN.</summary>
    CanMultiConn = 1 << 8,

    /// <summary>NBD_FLAG_SEND_CACHE.</summary>
    SendCache = 1 << 10,

    /// <summary>NBD_FLAG_SEND_FAST_ZERO.</summary>
    SendFastZero = 1 << 11,
}

/// <summary>Commands of transmission.</summary>
public enum NbdCommand : ushort
{
    /// <summary>NBD_CMD_READ.</summary>
    Read = 0,

    /// <summary>NBD_CMD_WRITE.</summary>
    Write = 1,

    /// <summary>NBD_CMD_DISC: the client is leaving.</summary>
    Disconnect = 2,

    /// <summary>NBD_CMD_FLUSH.</summary>
    Flush = 3,

    /// <summary>NBD_CMD_TRIM.</summary>
    Trim = 4,

    /// <summary>NBD_CMD_CACHE: a hint to read ahead.</summary>
    Cache = 5,

    /// <summary>NBD_CMD_WRITE_ZEROES.</summary>
    WriteZeroes = 6,

    /// <summary>NBD_CMD_BLOCK_STATUS.</summary>
    BlockStatus = 7,
}

/// <summary>Command flags (16 bits).</summary>
[Flags]
public enum NbdCommandModifiers : ushort
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>NBD_CMD_FLAG_FUA.</summary>
    Fua = 1 << 0,

    /// <summary>NBD_CMD_FLAG_NO_HOLE.</summary>
    NoHole = 1 << 1,

    /// <summary>NBD_CMD_FLAG_DF: do not fragment a structured read.</summary>
    DontFragment = 1 << 2,

    /// <summary>NBD_CMD_FLAG_REQ_ONE: one block status extent is enough.</summary>
    RequestOne = 1 << 3,

    /// <summary>NBD_CMD_FLAG_FAST_ZERO.</summary>
    FastZero = 1 << 4,
}

/// <summary>Structured reply chunk types.</summary>
public enum NbdReplyType : ushort
{
    /// <summary>NBD_REPLY_TYPE_NONE.</summary>
    None = 0,

    /// <summary>NBD_REPLY_TYPE_OFFSET_DATA.</summary>
    OffsetData = 1,

    /// <summary>NBD_REPLY_TYPE_OFFSET_HOLE.</summary>
    OffsetHole = 2,

    /// <summary>NBD_REPLY_TYPE_BLOCK_STATUS.</summary>
    BlockStatus = 5,

    /// <summary>NBD_REPLY_TYPE_ERROR.</summary>
    Error = (1 << 15) + 1,

    /// <summary>NBD_REPLY_TYPE_ERROR_OFFSET: an error, a message, then the offset it concerns.</summary>
    ErrorOffset = (1 << 15) + 2,
}

/// <summary>Errors a reply carries (the POSIX numbers the protocol fixes).</summary>
public enum NbdError : uint
{
    /// <summary>Success.</summary>
    None = 0,

    /// <summary>EPERM: a write to a read-only export.</summary>
    NotPermitted = 1,

    /// <summary>EIO.</summary>
    Io = 5,

    /// <summary>ENOMEM.</summary>
    NoMemory = 12,

    /// <summary>EINVAL.</summary>
    Invalid = 22,

    /// <summary>ENOSPC.</summary>
    NoSpace = 28,

    /// <summary>EOVERFLOW: a range past the end of the export.</summary>
    Overflow = 75,

    /// <summary>ENOTSUP: only for FAST_ZERO that cannot be fast.</summary>
    NotSupported = 95,

    /// <summary>ESHUTDOWN.</summary>
    Shutdown = 108,
}

/// <summary>Flags of a base:allocation extent.</summary>
[Flags]
public enum NbdAllocationState : uint
{
    /// <summary>Data.</summary>
    None = 0,

    /// <summary>NBD_STATE_HOLE: unallocated.</summary>
    Hole = 1 << 0,

    /// <summary>NBD_STATE_ZERO: reads as zeros.</summary>
    Zero = 1 << 1,
}

/// <summary>One extent of base:allocation: a length in bytes and whether it is a hole reading as zeros.</summary>
/// <param name="Length">Bytes.</param>
/// <param name="Flags">Hole and zero, or data.</param>
public readonly record struct NbdExtent(long Length, NbdAllocationState Flags);
