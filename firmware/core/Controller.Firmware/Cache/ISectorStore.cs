using Controller.Firmware.Ftl;

namespace Controller.Firmware.Cache;

/// <summary>What the cache writes back to and fills from: 4 KiB sectors with trim and flush.</summary>
public interface ISectorStore
{
    /// <summary>Sectors the store holds.</summary>
    long Sectors { get; }

    /// <summary>
    /// Reads one sector: its data is in <paramref name="destination"/> when the call returns, and the
    /// flash is done with it at the result's instant, when the command that reads it can complete.
    /// Not ok when it cannot be read intact. A hole reads as zeros.
    /// </summary>
    FtlReadResult ReadSector(long sector, Span<byte> destination);

    /// <summary>Writes one sector; durable after the next <see cref="Flush"/>.</summary>
    void WriteSector(long sector, ReadOnlySpan<byte> data);

    /// <summary>Unmaps whole sectors: they read as zeros and their flash becomes garbage.</summary>
    void TrimSectors(long sector, long count);

    /// <summary>Returns once everything written and trimmed before is durable.</summary>
    void Flush();

    /// <summary>
    /// True when <paramref name="sector"/> holds data; false for a hole (never written, trimmed or zeroed).
    /// </summary>
    bool IsMapped(long sector);
}

/// <summary>The flash translation layer as the cache's sector store.</summary>
public sealed class FtlSectorStore : ISectorStore
{
    private readonly FlashTranslationLayer _ftl;

    /// <summary>Wraps <paramref name="ftl"/>.</summary>
    public FtlSectorStore(FlashTranslationLayer ftl)
    {
        _ftl = ftl ?? throw new ArgumentNullException(nameof(ftl));
    }

    /// <inheritdoc />
    public long Sectors => _ftl.LogicalSectors;

    /// <inheritdoc />
    public FtlReadResult ReadSector(long sector, Span<byte> destination) => _ftl.Read(sector, destination);

    /// <inheritdoc />
    public void WriteSector(long sector, ReadOnlySpan<byte> data) => _ftl.Write(sector, data);

    /// <inheritdoc />
    public void TrimSectors(long sector, long count) => _ftl.Trim(sector, count);

    /// <inheritdoc />
    public void Flush() => _ftl.Flush();

    /// <inheritdoc />
    public bool IsMapped(long sector) => _ftl.IsMapped(sector);
}
