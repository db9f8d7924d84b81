namespace Controller.Firmware.Flash;

/// <summary>
/// Counts of NAND operations and how they ended, kept the same way for every device: the emulated
/// array counts what it did, and the hosting counts what the FTL asked of a real chip.
/// </summary>
public sealed class NandCounters
{
    /// <summary>Page reads (spare-only reads included).</summary>
    public long PagesRead { get; private set; }

    /// <summary>Page programs.</summary>
    public long PagesProgrammed { get; private set; }

    /// <summary>Block erases.</summary>
    public long BlocksErased { get; private set; }

    /// <summary>Reads whose bit errors ECC corrected.</summary>
    public long CorrectedReads { get; private set; }

    /// <summary>Reads ECC could not correct.</summary>
    public long UncorrectableReads { get; private set; }

    /// <summary>Programs that failed (P-FAIL).</summary>
    public long ProgramFailures { get; private set; }

    /// <summary>Erases that failed (E-FAIL).</summary>
    public long EraseFailures { get; private set; }

    /// <summary>Counts a page read that ended as <paramref name="completion"/> says.</summary>
    public void Read(NandCompletion completion)
    {
        PagesRead++;
        UncorrectableReads += completion.Status == NandStatus.Uncorrectable ? 1 : 0;
        CorrectedReads += completion.Status == NandStatus.Corrected ? 1 : 0;
    }

    /// <summary>Counts a page program that ended as <paramref name="completion"/> says.</summary>
    public void Programmed(NandCompletion completion)
    {
        PagesProgrammed++;
        ProgramFailures += completion.Status == NandStatus.ProgramFailed ? 1 : 0;
    }

    /// <summary>Counts a block erase that ended as <paramref name="completion"/> says.</summary>
    public void Erased(NandCompletion completion)
    {
        BlocksErased++;
        EraseFailures += completion.Status == NandStatus.EraseFailed ? 1 : 0;
    }
}
