namespace Controller.Firmware.Host;

/// <summary>What the host asks for.</summary>
public enum HostOpcode
{
    /// <summary>Read a byte range.</summary>
    Read,

    /// <summary>
    /// Write a byte range (durable at completion with <see cref="HostCommandOptions.ForceUnitAccess"/>).
    /// </summary>
    Write,

    /// <summary>
    /// Punch a hole: the range reads as zeros (durable at completion with
    /// <see cref="HostCommandOptions.ForceUnitAccess"/>).
    /// </summary>
    Trim,

    /// <summary>
    /// Make the range read as zeros; may unmap unless <see cref="HostCommandOptions.NoHole"/> (durable at completion
    /// with <see cref="HostCommandOptions.ForceUnitAccess"/>).
    /// </summary>
    WriteZeroes,

    /// <summary>Make everything completed before it durable.</summary>
    Flush,
}

/// <summary>Modifiers of a host command.</summary>
[Flags]
public enum HostCommandOptions
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>
    /// FUA: what the command changed (data written, a hole punched, zeros written) is durable when
    /// it completes. Meaningless on a READ or a FLUSH, which change nothing of their own.
    /// </summary>
    ForceUnitAccess = 1,

    /// <summary>WRITE ZEROES must write zeros, not unmap.</summary>
    NoHole = 2,
}

/// <summary>How a host command ended.</summary>
public enum HostStatus
{
    /// <summary>Done.</summary>
    Ok,

    /// <summary>The range is not whole 512-byte blocks inside the device, or the buffer does not match it.</summary>
    InvalidArgument,

    /// <summary>The NAND could not return data intact.</summary>
    IoError,

    /// <summary>The device has no space left (its spare is exhausted by bad blocks).</summary>
    NoSpace,
}

/// <summary>
/// One host command. Offsets and lengths are bytes in whole 512-byte logical blocks. A READ fills
/// <see cref="Buffer"/>; a WRITE takes its data from it. The submitter keeps the buffer alive
/// until the command completes.
/// </summary>
public sealed class HostCommand
{
    /// <summary>The submitter's tag, returned in the completion.</summary>
    public long Id { get; set; }

    /// <summary>What is asked.</summary>
    public HostOpcode Opcode { get; set; }

    /// <summary>Modifiers.</summary>
    public HostCommandOptions Flags { get; set; }

    /// <summary>First byte of the range.</summary>
    public long Offset { get; set; }

    /// <summary>Bytes in the range.</summary>
    public long Length { get; set; }

    /// <summary>The data of a WRITE, or where a READ puts it.</summary>
    public Memory<byte> Buffer { get; set; }

    /// <summary>When the command entered the submission queue, on the loop's clock.</summary>
    public long SubmittedAtNanoseconds { get; internal set; }
}

/// <summary>A finished command.</summary>
/// <param name="Id">The command's tag.</param>
/// <param name="Opcode">What it was.</param>
/// <param name="Status">How it ended.</param>
/// <param name="SubmittedAtNanoseconds">When it was submitted.</param>
/// <param name="CompletedAtNanoseconds">When it completed.</param>
public readonly record struct HostCompletion(
    long Id,
    HostOpcode Opcode,
    HostStatus Status,
    long SubmittedAtNanoseconds,
    long CompletedAtNanoseconds
)
{
    /// <summary>Latency in virtual (or monotonic) time.</summary>
    public long LatencyNanoseconds => CompletedAtNanoseconds - SubmittedAtNanoseconds;
}
