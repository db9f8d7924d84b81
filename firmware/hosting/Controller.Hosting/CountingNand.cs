using Controller.Firmware.Flash;

namespace Controller.Hosting;

/// <summary>
/// Counts what the FTL asks of the NAND and what came back, for the management endpoint's stats,
/// the same way whatever the device (a SPI NAND driver or the emulated array).
/// </summary>
public sealed class CountingNand(INandDevice inner) : INandDevice
{
    /// <summary>
    /// Told of every operation as it is issued: its kind (0 read, 1 program, 2 erase), address and completion.
    /// </summary>
    public Action<int, PageAddress, NandCompletion>? Observed { get; init; }

    /// <summary>What was asked and how it ended.</summary>
    public NandCounters Counters { get; } = new();

    /// <inheritdoc />
    public NandGeometry Geometry => inner.Geometry;

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        NandCompletion completion = inner.ReadPage(address, data, spare);
        Observed?.Invoke(0, address, completion);
        Counters.Read(completion);
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        NandCompletion completion = inner.ProgramPage(address, data, spare);
        Observed?.Invoke(1, address, completion);
        Counters.Programmed(completion);
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        NandCompletion completion = inner.EraseBlock(block);
        Observed?.Invoke(2, new PageAddress(block, 0), completion);
        Counters.Erased(completion);
        return completion;
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die) => inner.GetDieStatus(die);
}
