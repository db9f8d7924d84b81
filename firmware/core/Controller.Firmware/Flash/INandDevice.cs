namespace Controller.Firmware.Flash;

/// <summary>
/// What the firmware needs of a NAND array: read a page with its spare area, program a page with
/// its spare area, erase a block, and ask a die whether it is busy.
/// <para>
/// Operations are issued at the current time of the firmware's clock and take effect in issue
/// order per die. Each call returns at once with the outcome and the instant the operation
/// completes; the firmware must not treat a program or erase as durable before that instant
/// (a power cut earlier can tear it). A read's data is valid when the call returns.
/// </para>
/// <para>
/// Operating errors (a failed program or erase, an uncorrectable read) are reported in the
/// <see cref="NandCompletion"/>. Breaking the rules of NAND (programming a page that is not
/// erased, programming pages of a block out of order, an address outside the array) is a bug in
/// the caller and throws <see cref="NandRuleViolationException"/>.
/// </para>
/// </summary>
public interface INandDevice
{
    /// <summary>The shape of the array.</summary>
    NandGeometry Geometry { get; }

    /// <summary>
    /// Reads a page. <paramref name="data"/> is either <see cref="NandGeometry.PageBytes"/> long or
    /// empty (read the spare area only); <paramref name="spare"/> is either
    /// <see cref="NandGeometry.SpareBytes"/> long or empty. An erased page reads as FFh.
    /// </summary>
    NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare);

    /// <summary>
    /// Programs an erased page with a whole page of data and a whole spare area. Pages of a block
    /// must be programmed in ascending order, each once between erases.
    /// </summary>
    NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare);

    /// <summary>Erases a whole block: every page reads FFh again and can be programmed.</summary>
    NandCompletion EraseBlock(int block);

    /// <summary>Whether <paramref name="die"/> still has operations in progress, and until when.</summary>
    NandDieStatus GetDieStatus(int die);
}

/// <summary>The outcome of one NAND operation.</summary>
/// <param name="Status">What happened.</param>
/// <param name="CompletesAtNanoseconds">The clock instant at which the operation is complete.</param>
/// <param name="CorrectedBits">For reads: the most bits ECC corrected in any codeword of the page.</param>
public readonly record struct NandCompletion(NandStatus Status, long CompletesAtNanoseconds, int CorrectedBits = 0)
{
    /// <summary>True when the operation did what was asked (a corrected read counts).</summary>
    public bool Succeeded => Status is NandStatus.Ok or NandStatus.Corrected;
}

/// <summary>The outcome class of a NAND operation.</summary>
public enum NandStatus
{
    /// <summary>Done, no bit errors.</summary>
    Ok,

    /// <summary>Read done; ECC corrected bit errors (see <see cref="NandCompletion.CorrectedBits"/>).</summary>
    Corrected,

    /// <summary>Read done but a codeword had more bit errors than ECC corrects: the data is wrong.</summary>
    Uncorrectable,

    /// <summary>Program failed (P-FAIL): the page holds no reliable data; the block should be retired.</summary>
    ProgramFailed,

    /// <summary>Erase failed (E-FAIL): the block is unreliable and should be retired.</summary>
    EraseFailed,
}

/// <summary>The state of one die.</summary>
/// <param name="Busy">True while an operation issued to the die has not completed.</param>
/// <param name="ReadyAtNanoseconds">When the die's last queued operation completes.</param>
/// <param name="QueuedOperations">Programs and erases issued to the die and not yet complete.</param>
public readonly record struct NandDieStatus(bool Busy, long ReadyAtNanoseconds, int QueuedOperations);

/// <summary>The rules of NAND that a caller broke.</summary>
public enum NandRule
{
    /// <summary>The address is outside the array.</summary>
    AddressInRange,

    /// <summary>A buffer is not the size of a page or of a spare area.</summary>
    BufferSize,

    /// <summary>Only an erased page can be programmed; there is no partial reprogram.</summary>
    ProgramErasedPageOnly,

    /// <summary>Pages of a block are programmed in ascending order.</summary>
    ProgramAscendingOrder,

    /// <summary>The array has no power.</summary>
    Powered,
}

/// <summary>A caller broke a rule of NAND. This is a bug in the caller, never an operating error.</summary>
public sealed class NandRuleViolationException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="rule"/> with a message naming the page.</summary>
    public NandRuleViolationException(NandRule rule, string message)
        : base(message)
    {
        Rule = rule;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming the rule.</summary>
    public NandRuleViolationException() { }

    /// <summary>Required by the analyzers; prefer the constructor naming the rule.</summary>
    public NandRuleViolationException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers; prefer the constructor naming the rule.</summary>
    public NandRuleViolationException(string message, Exception innerException)
        : base(message, innerException) { }

    /// <summary>The rule that was broken.</summary>
    public NandRule Rule { get; }
}
