using Controller.Firmware.Invariants;

namespace Controller.Firmware.Ftl;

/// <summary>The FTL's full self-check, for <c>cache.checkInvariants</c> (the cheap checks run where state changes).</summary>
public sealed partial class FlashTranslationLayer
{
    /// <summary>
    /// Walks the whole map and checks what the write, trim and GC paths check one entry at a time:
    /// every sector mapped to flash is the one its physical sector's reverse entry names (and
    /// nothing else names it); a sector marked as buffered is in that buffer; each block's valid
    /// count is the number of sectors mapped into it; the free count is the number of free blocks.
    /// </summary>
    public void CheckInvariants()
    {
        int[] counted = new int[_valid.Length];
        for (uint logical = 0; logical < _map.Length; logical++)
        {
            uint physical = _map[logical];
            switch (physical)
            {
                case Unmapped:
                    break;
                case InHostBuffer when _hostBuffer.Find(logical) < 0:
                    Invariant.Broken($"sector {logical} is mapped to the host unit buffer, which does not hold it");
                    break;
                case InColdBuffer when _coldBuffer.Find(logical) < 0:
                    Invariant.Broken($"sector {logical} is mapped to the cold unit buffer, which does not hold it");
                    break;
                case InHostBuffer or InColdBuffer:
                    break;
                default:
                    if (physical >= _reverse.Length || _reverse[physical] != logical)
                    {
                        Invariant.Broken($"sector {logical} maps to physical sector {physical}, whose reverse entry is {(physical < _reverse.Length ? _reverse[physical] : Unmapped)}");
                    }

                    counted[_layout.BlockOf(physical)]++;
                    break;
            }
        }

        int free = 0;
        for (int block = 0; block < _valid.Length; block++)
        {
            if (counted[block] != _valid[block])
            {
                Invariant.Broken($"block {block} holds {counted[block]} mapped sectors, its valid count says {_valid[block]}");
            }

            free += _states[block] == BlockState.Free ? 1 : 0;
        }

        for (uint physical = 0; physical < _reverse.Length; physical++)
        {
            uint logical = _reverse[physical];
            if (logical != Unmapped && (logical >= _map.Length || _map[logical] != physical))
            {
                Invariant.Broken($"physical sector {physical} names sector {logical}, which is not mapped to it");
            }
        }

        Invariant.Holds(free == _freeBlocks, $"{free} blocks are free, the count says {_freeBlocks}");
    }
}
