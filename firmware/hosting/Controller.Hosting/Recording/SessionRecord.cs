using Controller.Common;
using Controller.Firmware.Host;

namespace Controller.Hosting.Recording;

/// <summary>What a record of a session says happened at the controller loop's boundary.</summary>
public enum SessionRecordKind : byte
{
    /// <summary>A host command entered the firmware.</summary>
    Command = 1,

    /// <summary>The device's clock moved to a new instant (read before the next input).</summary>
    Clock = 2,

    /// <summary>The loop stepped once, with background work allowed or not.</summary>
    Step = 3,

    /// <summary>The power was cut over the management endpoint, and the firmware mounted again.</summary>
    PowerCut = 4,

    /// <summary>A checkpoint was asked for over the management endpoint.</summary>
    Checkpoint = 5,

    /// <summary>Fault injection changed over the management endpoint.</summary>
    Faults = 6,

    /// <summary>The clean shutdown: write-back, flush and checkpoint.</summary>
    Shutdown = 7,

    /// <summary>The session ended; the record carries its execution hash.</summary>
    End = 8,

    /// <summary>A reading of a clock that moves by itself (a board's), when it differed from the last.</summary>
    ClockRead = 9,

    /// <summary>A page read's outcome, with its data where it is not what the session wrote there.</summary>
    NandRead = 10,

    /// <summary>A page program's outcome.</summary>
    NandProgram = 11,

    /// <summary>A block erase's outcome.</summary>
    NandErase = 12,

    /// <summary>A die's status, as asked.</summary>
    NandDie = 13,

    /// <summary>
    /// The power-fail signal on a board: the save on hold-up energy, after which the firmware stopped.
    /// </summary>
    PowerFail = 14,
}

/// <summary>Who decides a NAND operation's outcome in a replay.</summary>
public enum RecordedNand : byte
{
    /// <summary>The emulated NAND, from the same configuration and seed (a fresh emulated device).</summary>
    Emulated = 0,

    /// <summary>
    /// The recording: every outcome was recorded (a real chip, or a NAND that held data before the session).
    /// </summary>
    Outcomes = 1,
}

/// <summary>How a recording keeps the time the firmware sees.</summary>
public enum RecordedClock : byte
{
    /// <summary>A virtual clock that only the loop's thread moves (serve): its instant before each input.</summary>
    Moves = 0,

    /// <summary>
    /// A clock that moves by itself (a board's monotonic clock): every reading the firmware and the NAND make.
    /// </summary>
    Reads = 1,
}

/// <summary>How a recording keeps the data of writes.</summary>
public enum RecordedData : byte
{
    /// <summary>Every byte.</summary>
    Full = 0,

    /// <summary>
    /// A digest: replay writes data made from it (the firmware's execution does not depend on the bytes).
    /// </summary>
    Digest = 1,
}

/// <summary>
/// One input the firmware took, in the order it took it. Only the fields of its kind are set:
/// a command's (<see cref="Id"/>, <see cref="Connection"/>, <see cref="Opcode"/>, <see cref="Flags"/>,
/// <see cref="Offset"/>, <see cref="Length"/>, and for a write <see cref="Data"/> or
/// <see cref="Digest"/>), a clock's <see cref="Nanoseconds"/>, a step's <see cref="Background"/>,
/// the faults' <see cref="Text"/> (JSON), the end's <see cref="Hash"/>.
/// </summary>
public sealed record SessionRecord(SessionRecordKind Kind)
{
    /// <summary>The command's number in the session (1, 2, ...).</summary>
    public long Id { get; init; }

    /// <summary>The NBD connection it came on (numbered from 1 as they were accepted; 0 when not known).</summary>
    public int Connection { get; init; }

    /// <summary>The command.</summary>
    public HostOpcode Opcode { get; init; }

    /// <summary>Its flags.</summary>
    public HostCommandOptions Flags { get; init; }

    /// <summary>First byte.</summary>
    public long Offset { get; init; }

    /// <summary>Bytes.</summary>
    public long Length { get; init; }

    /// <summary>A write's data, when kept whole.</summary>
    public byte[]? Data { get; init; }

    /// <summary>A write's data as a digest (CRC-32C, and 0 for all zeros), when not kept whole.</summary>
    public uint Digest { get; init; }

    /// <summary>A clock's instant.</summary>
    public long Nanoseconds { get; init; }

    /// <summary>A clock reading: how many readings since the last recorded one returned the same instant.</summary>
    public long Unchanged { get; init; }

    /// <summary>A step: background work allowed.</summary>
    public bool Background { get; init; }

    /// <summary>The faults asked for, as the management endpoint's JSON.</summary>
    public string? Text { get; init; }

    /// <summary>The end: the execution hash of the session.</summary>
    public ulong Hash { get; init; }

    /// <summary>A NAND operation's page (an erase's block, page 0), or a die's number in its block field.</summary>
    public Firmware.Flash.PageAddress Page { get; init; }

    /// <summary>A NAND operation's outcome.</summary>
    public Firmware.Flash.NandCompletion Completion { get; init; }

    /// <summary>A page read's spare area, when recorded.</summary>
    public byte[]? Spare { get; init; }

    /// <summary>A die's status.</summary>
    public Firmware.Flash.NandDieStatus Die { get; init; }

    /// <summary>The data a replay writes for a write: the bytes kept, or bytes made from the digest.</summary>
    public void FillData(Span<byte> buffer)
    {
        if (Data is { } data)
        {
            data.CopyTo(buffer);
            return;
        }

        if (Digest == 0)
        {
            buffer.Clear();
            return;
        }

        var prng = new Common.Prng(((ulong)Digest << 32) ^ (ulong)Offset);
        for (int i = 0; i < buffer.Length; i += 8)
        {
            ulong word = prng.NextUInt64();
            for (int b = 0; b < 8 && i + b < buffer.Length; b++)
            {
                buffer[i + b] = (byte)(word >> (8 * b));
            }
        }
    }
}
