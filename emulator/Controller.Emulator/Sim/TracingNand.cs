using Controller.Firmware.Flash;

namespace Controller.Emulator.Sim;

/// <summary>
/// Passes every operation to the NAND below and folds it into a running FNV-1a hash: kind,
/// address, status and completion instant. Two runs of one seed must end with one hash.
/// </summary>
internal sealed class TracingNand : INandDevice
{
    private const ulong Prime = 0x100000001B3;
    private readonly INandDevice _inner;

    public TracingNand(INandDevice inner)
    {
        _inner = inner;
    }

    /// <summary>The hash of every operation so far.</summary>
    public ulong Hash { get; private set; } = 0xCBF29CE484222325;

    public NandGeometry Geometry => _inner.Geometry;

    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare) =>
        Fold(1, address.Block, address.Page, _inner.ReadPage(address, data, spare));

    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) =>
        Fold(2, address.Block, address.Page, _inner.ProgramPage(address, data, spare));

    public NandCompletion EraseBlock(int block) => Fold(3, block, 0, _inner.EraseBlock(block));

    public NandDieStatus GetDieStatus(int die) => _inner.GetDieStatus(die);

    private NandCompletion Fold(int kind, int block, int page, NandCompletion completion)
    {
        ulong hash = Hash;
        foreach (long value in (ReadOnlySpan<long>)[kind, block, page, (long)completion.Status, completion.CompletesAtNanoseconds])
        {
            hash = (hash ^ (ulong)value) * Prime;
        }

        Hash = hash;
        return completion;
    }
}
