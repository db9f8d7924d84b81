using Controller.Firmware.Config;
using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>
/// Sectors gathered in DRAM until they fill a write unit. A slot whose sector was trimmed or
/// rewritten elsewhere is emptied and goes to flash as padding.
/// </summary>
internal sealed class UnitBuffer
{
    public UnitBuffer(int sectorsPerUnit)
    {
        Slots = new uint[sectorsPerUnit];
        Data = new byte[sectorsPerUnit * FirmwareConfig.SectorBytes];
        Clear();
    }

    /// <summary>The sector in each slot, or <see cref="PageMetadata.EmptySlot"/>.</summary>
    public uint[] Slots { get; }

    /// <summary>The slots' data, one sector after another.</summary>
    public byte[] Data { get; }

    /// <summary>Slots filled so far (emptied ones included).</summary>
    public int Count { get; private set; }

    /// <summary>True when every slot is filled.</summary>
    public bool IsFull => Count == Slots.Length;

    /// <summary>The data of <paramref name="slot"/>.</summary>
    public Span<byte> Sector(int slot) => Data.AsSpan(slot * FirmwareConfig.SectorBytes, FirmwareConfig.SectorBytes);

    /// <summary>The slot holding <paramref name="sector"/>, or -1.</summary>
    public int Find(uint sector) => Array.IndexOf(Slots, sector, 0, Count);

    /// <summary>Puts <paramref name="sector"/> in the next slot.</summary>
    public void Add(uint sector, ReadOnlySpan<byte> data)
    {
        Invariant.Holds(!IsFull, "a full buffer is programmed before it takes more");
        Invariant.Holds(Find(sector) < 0, "a sector is in a buffer at most once");
        Slots[Count] = sector;
        data.CopyTo(Sector(Count));
        Count++;
    }

    /// <summary>Empties the slot of <paramref name="sector"/>, if it is here.</summary>
    public bool Remove(uint sector)
    {
        int slot = Find(sector);
        if (slot < 0)
        {
            return false;
        }

        Slots[slot] = PageMetadata.EmptySlot;
        return true;
    }

    /// <summary>Fills the slots not yet filled with padding (FFh), before a partial unit is programmed.</summary>
    public void PadRemaining() => Data.AsSpan(Count * FirmwareConfig.SectorBytes).Fill(0xFF);

    /// <summary>Makes every slot empty and unfilled.</summary>
    public void Clear()
    {
        Array.Fill(Slots, PageMetadata.EmptySlot);
        Count = 0;
    }
}
