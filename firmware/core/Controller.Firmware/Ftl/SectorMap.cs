using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>
/// Where every logical sector is: the map from logical to physical sectors, the reverse map from
/// physical sectors back to the logical sector each holds, and the number of valid sectors in each
/// block. The three change together, only through this class, so they cannot drift apart: a
/// sector placed on flash is named by its physical sector and counted in its block; a sector taken
/// off is forgotten by both and uncounted. <see cref="CheckInvariants"/> walks all of it.
/// </summary>
internal sealed class SectorMap
{
    /// <summary>Map value of a sector that holds nothing: it reads as zeros without a NAND read.</summary>
    public const uint Unmapped = uint.MaxValue;

    /// <summary>Map value of a sector waiting in the host unit buffer.</summary>
    public const uint InHostBuffer = uint.MaxValue - 1;

    /// <summary>Map value of a sector being relocated, waiting in the cold unit buffer.</summary>
    public const uint InColdBuffer = uint.MaxValue - 2;

    private readonly FtlLayout _layout;
    private readonly uint[] _reverse;
    private readonly int[] _valid;
    private uint[] _map = [];

    /// <summary>
    /// Creates an empty map (no logical sectors yet) for <paramref name="blocks"/> blocks laid out as
    /// <paramref name="layout"/> says.
    /// </summary>
    public SectorMap(FtlLayout layout, int blocks)
    {
        _layout = layout;
        _reverse = new uint[layout.PhysicalSectors];
        Array.Fill(_reverse, Unmapped);
        _valid = new int[blocks];
    }

    /// <summary>Logical sectors the map holds.</summary>
    public int Length => _map.Length;

    /// <summary>The map entry of <paramref name="logical"/>: a physical sector, or one of the markers.</summary>
    public uint this[long logical] => _map[logical];

    /// <summary>The whole map, for a checkpoint.</summary>
    public ReadOnlySpan<uint> Entries => _map;

    /// <summary>The logical sector <paramref name="physical"/> holds, or <see cref="Unmapped"/>.</summary>
    public uint OwnerOf(uint physical) => _reverse[physical];

    /// <summary>Valid (mapped) sectors in <paramref name="block"/>.</summary>
    public int ValidIn(int block) => _valid[block];

    /// <summary>Logical sectors that hold data. Walks the whole map: for reports, not for the I/O path.</summary>
    public long CountMapped() => _map.LongCount(p => p != Unmapped);

    /// <summary>
    /// True when any sector of the unit starting at physical sector <paramref name="first"/> holds a logical sector.
    /// </summary>
    public bool AnyInUnit(uint first)
    {
        for (int slot = 0; slot < _layout.SectorsPerUnit; slot++)
        {
            if (_reverse[first + slot] != Unmapped)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Starts over with <paramref name="logicalSectors"/> sectors, all unmapped, and nothing on flash.
    /// </summary>
    public void Reset(long logicalSectors)
    {
        _map = new uint[logicalSectors];
        Array.Fill(_map, Unmapped);
        Array.Fill(_reverse, Unmapped);
        Array.Clear(_valid);
    }

    /// <summary>
    /// Marks <paramref name="logical"/> as held in a unit buffer (<see cref="InHostBuffer"/> or
    /// <see cref="InColdBuffer"/>), or as a hole (<see cref="Unmapped"/>). Its copy on flash, if
    /// any, must have been taken off first (<see cref="TakeOff"/>).
    /// </summary>
    public void Mark(uint logical, uint marker)
    {
        Invariant.Holds(
            marker is Unmapped or InHostBuffer or InColdBuffer,
            "a sector is marked as a hole or as buffered, never as a physical sector"
        );
        uint old = _map[logical];
        Invariant.Holds(
            old >= _reverse.Length || _reverse[old] != logical,
            "a sector marked as a hole or buffered has no physical copy still linked"
        );
        _map[logical] = marker;
    }

    /// <summary>
    /// Maps <paramref name="logical"/> to <paramref name="physical"/>, just programmed: named by it and counted in its
    /// block.
    /// </summary>
    public void Place(uint logical, uint physical)
    {
        if (_reverse[physical] != Unmapped)
        {
            Invariant.Broken(
                $"sector {logical} was programmed to physical sector {physical}, which already holds sector {_reverse[physical]}"
            );
        }

        _map[logical] = physical;
        _reverse[physical] = logical;
        _valid[_layout.BlockOf(physical)]++;
    }

    /// <summary>
    /// Takes <paramref name="logical"/>'s copy at <paramref name="physical"/> off the flash: the
    /// physical sector names nothing and its block counts one valid sector less. The map entry
    /// still says <paramref name="physical"/> until the caller marks where the sector is now.
    /// Returns the block.
    /// </summary>
    public int TakeOff(uint logical, uint physical)
    {
        if (_map[logical] != physical || _reverse[physical] != logical)
        {
            Invariant.Broken(
                $"sector {logical} maps to physical sector {_map[logical]}, and physical sector {physical} names sector {_reverse[physical]}: the map and the reverse map disagree"
            );
        }

        int block = _layout.BlockOf(physical);
        _reverse[physical] = Unmapped;
        _valid[block]--;
        Invariant.Holds(_valid[block] >= 0, "a block never has fewer than zero valid sectors");
        return block;
    }

    /// <summary>
    /// Recovery: the map entries a checkpoint saved. The reverse map and the counts are rebuilt by
    /// <see cref="Rebuild"/>.
    /// </summary>
    public void LoadEntries(ReadOnlySpan<uint> entries) => entries.CopyTo(_map);

    /// <summary>Recovery: sets a map entry while replaying the log, before <see cref="Rebuild"/>.</summary>
    public void Replay(long logical, uint entry) => _map[logical] = entry;

    /// <summary>
    /// Recovery: unmaps every sector whose entry points into a block <paramref name="dropped"/> names.
    /// </summary>
    public void Drop(bool[] dropped)
    {
        for (int sector = 0; sector < _map.Length; sector++)
        {
            if (_map[sector] < _layout.PhysicalSectors && dropped[_layout.BlockOf(_map[sector])])
            {
                _map[sector] = Unmapped;
            }
        }
    }

    /// <summary>
    /// Recovery: rebuilds the reverse map and the valid counts from the map. An entry into a bad
    /// block, past the device, or onto a physical sector another sector has already claimed is
    /// never expected; that sector is unmapped (lost) rather than the map left inconsistent.
    /// Returns how many were.
    /// </summary>
    public long Rebuild(HashSet<int> badBlocks)
    {
        Array.Fill(_reverse, Unmapped);
        Array.Clear(_valid);
        long lost = 0;
        for (int sector = 0; sector < _map.Length; sector++)
        {
            uint physical = _map[sector];
            if (physical == Unmapped)
            {
                continue;
            }

            int block = _layout.BlockOf(physical);
            if (physical >= _layout.PhysicalSectors || badBlocks.Contains(block) || _reverse[physical] != Unmapped)
            {
                lost++;
                _map[sector] = Unmapped;
                continue;
            }

            _reverse[physical] = (uint)sector;
            _valid[block]++;
        }

        return lost;
    }

    /// <summary>
    /// Walks the whole map and checks what the write, trim and GC paths check one entry at a time:
    /// every sector mapped to flash is the one its physical sector's reverse entry names (and
    /// nothing else names it); a sector marked as buffered is in that buffer; each block's valid
    /// count is the number of sectors mapped into it.
    /// </summary>
    public void CheckInvariants(UnitBuffer hostBuffer, UnitBuffer coldBuffer)
    {
        int[] counted = new int[_valid.Length];
        for (uint logical = 0; logical < _map.Length; logical++)
        {
            uint physical = _map[logical];
            switch (physical)
            {
                case Unmapped:
                    break;
                case InHostBuffer when hostBuffer.Find(logical) < 0:
                    Invariant.Broken($"sector {logical} is mapped to the host unit buffer, which does not hold it");
                    break;
                case InColdBuffer when coldBuffer.Find(logical) < 0:
                    Invariant.Broken($"sector {logical} is mapped to the cold unit buffer, which does not hold it");
                    break;
                case InHostBuffer or InColdBuffer:
                    break;
                default:
                    if (physical >= _reverse.Length || _reverse[physical] != logical)
                    {
                        Invariant.Broken(
                            $"sector {logical} maps to physical sector {physical}, whose reverse entry is {(physical < _reverse.Length ? _reverse[physical] : Unmapped)}"
                        );
                    }

                    counted[_layout.BlockOf(physical)]++;
                    break;
            }
        }

        for (int block = 0; block < _valid.Length; block++)
        {
            if (counted[block] != _valid[block])
            {
                Invariant.Broken(
                    $"block {block} holds {counted[block]} mapped sectors, its valid count says {_valid[block]}"
                );
            }
        }

        for (uint physical = 0; physical < _reverse.Length; physical++)
        {
            uint logical = _reverse[physical];
            if (logical != Unmapped && (logical >= _map.Length || _map[logical] != physical))
            {
                Invariant.Broken($"physical sector {physical} names sector {logical}, which is not mapped to it");
            }
        }
    }
}
