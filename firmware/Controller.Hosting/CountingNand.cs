using Controller.Firmware.Flash;

namespace Controller.Hosting;

/// <summary>
/// Counts what the FTL asks of the NAND and what came back, for the management endpoint's stats,
/// the same way whatever the device (a SPI NAND driver or the emulated array).
/// </summary>
public sealed class CountingNand(INandDevice inner) : INandDevice
{
    /// <summary>Told of every operation as it is issued: its kind (0 read, 1 program, 2 erase), address and completion.</summary>
    public Action<int, PageAddress, NandCompletion>? Observed { get; init; }

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

    /// <inheritdoc />
    public NandGeometry Geometry => inner.Geometry;

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        NandCompletion completion = inner.ReadPage(address, data, spare);
        Observed?.Invoke(0, address, completion);
        PagesRead++;
        if (completion.Status == NandStatus.Uncorrectable)
        {
            UncorrectableReads++;
        }
        else if (completion.Status == NandStatus.Corrected)
        {
            CorrectedReads++;
        }

        return completion;
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        NandCompletion completion = inner.ProgramPage(address, data, spare);
        Observed?.Invoke(1, address, completion);
        PagesProgrammed++;
        ProgramFailures += completion.Status == NandStatus.ProgramFailed ? 1 : 0;
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        NandCompletion completion = inner.EraseBlock(block);
        Observed?.Invoke(2, new PageAddress(block, 0), completion);
        BlocksErased++;
        EraseFailures += completion.Status == NandStatus.EraseFailed ? 1 : 0;
        return completion;
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die) => inner.GetDieStatus(die);
}
