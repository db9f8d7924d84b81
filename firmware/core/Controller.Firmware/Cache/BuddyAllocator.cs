using Controller.Firmware.Invariants;

namespace Controller.Firmware.Cache;

/// <summary>
/// A binary buddy allocator over an arena of equal units (one sector each), handing out blocks of
/// 2^order units aligned to their size, from order 0 (a sector) up to <see cref="MaxOrder"/> (a
/// large page). Free blocks sit on one doubly linked list per order, threaded through arrays, so
/// allocating and freeing never allocate memory. Freeing a block twice, or with the wrong order,
/// is an <see cref="InvariantViolationException"/>.
/// </summary>
public sealed class BuddyAllocator
{
    private const int None = -1;

    private readonly int[] _heads;
    private readonly int[] _next;
    private readonly int[] _previous;
    private readonly sbyte[] _freeOrder;
    private readonly sbyte[] _allocatedOrder;

    /// <summary>
    /// Creates an allocator of <paramref name="units"/> units, all free, in blocks of the largest order.
    /// </summary>
    public BuddyAllocator(int units, int maxOrder)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxOrder);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxOrder, 20);
        if (units <= 0 || units % (1 << maxOrder) != 0)
        {
            throw new ArgumentException(
                $"an arena of {units} units is not a whole number of blocks of 2^{maxOrder} units",
                nameof(units)
            );
        }

        Units = units;
        MaxOrder = maxOrder;
        _heads = new int[maxOrder + 1];
        Array.Fill(_heads, None);
        _next = new int[units];
        _previous = new int[units];
        _freeOrder = new sbyte[units];
        _allocatedOrder = new sbyte[units];
        Array.Fill(_freeOrder, (sbyte)None);
        Array.Fill(_allocatedOrder, (sbyte)None);
        for (int unit = units - (1 << maxOrder); unit >= 0; unit -= 1 << maxOrder)
        {
            Push(unit, maxOrder);
        }

        FreeUnits = units;
    }

    /// <summary>Units in the arena.</summary>
    public int Units { get; }

    /// <summary>The largest order handed out.</summary>
    public int MaxOrder { get; }

    /// <summary>Units not allocated.</summary>
    public int FreeUnits { get; private set; }

    /// <summary>
    /// Allocates a block of 2^<paramref name="order"/> units; returns its first unit, or -1 when none is free
    /// (fragmentation included).
    /// </summary>
    public int Allocate(int order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, MaxOrder);
        int k = order;
        while (k <= MaxOrder && _heads[k] == None)
        {
            k++;
        }

        if (k > MaxOrder)
        {
            return None;
        }

        int block = _heads[k];
        Remove(block, k);
        while (k > order)
        {
            k--;
            Push(block + (1 << k), k);
        }

        _allocatedOrder[block] = (sbyte)order;
        FreeUnits -= 1 << order;
        return block;
    }

    /// <summary>
    /// Frees the block at <paramref name="block"/> of <paramref name="order"/>, merging it with free buddies.
    /// </summary>
    public void Free(int block, int order)
    {
        if ((uint)block >= (uint)Units || _allocatedOrder[block] != order)
        {
            throw new InvariantViolationException(
                (uint)block < (uint)Units && _allocatedOrder[block] == None
                    ? $"frame at unit {block} of order {order} freed twice, or never allocated"
                    : $"frame at unit {block} freed as order {order}, allocated as order {((uint)block < (uint)Units ? _allocatedOrder[block] : None)}"
            );
        }

        _allocatedOrder[block] = (sbyte)None;
        FreeUnits += 1 << order;
        while (order < MaxOrder)
        {
            int buddy = block ^ (1 << order);
            if (_freeOrder[buddy] != order)
            {
                break;
            }

            Remove(buddy, order);
            block = Math.Min(block, buddy);
            order++;
        }

        Push(block, order);
    }

    /// <summary>
    /// Splits an allocated block into 2^(<paramref name="order"/> - <paramref name="into"/>) allocated
    /// blocks of order <paramref name="into"/>, in place: no memory moves and nothing is allocated.
    /// </summary>
    public void Split(int block, int order, int into)
    {
        if ((uint)block >= (uint)Units || _allocatedOrder[block] != order || into > order || into < 0)
        {
            throw new InvariantViolationException(
                $"cannot split the block at unit {block} of order {order} into order {into}"
            );
        }

        for (int part = block; part < block + (1 << order); part += 1 << into)
        {
            _allocatedOrder[part] = (sbyte)into;
        }
    }

    /// <summary>
    /// Checks the free lists against the arena: every listed block is aligned, marked free with its
    /// order, and overlaps nothing; allocated and free units add up. Throws on the first breach.
    /// </summary>
    public void CheckConsistency()
    {
        var covered = new bool[Units];
        int free = 0;
        for (int order = 0; order <= MaxOrder; order++)
        {
            int previous = None;
            for (int block = _heads[order]; block != None; block = _next[block])
            {
                if (
                    block % (1 << order) != 0
                    || _freeOrder[block] != order
                    || _previous[block] != previous
                    || _allocatedOrder[block] != None
                )
                {
                    throw new InvariantViolationException(
                        $"free list of order {order} is inconsistent at unit {block}"
                    );
                }

                for (int unit = block; unit < block + (1 << order); unit++)
                {
                    if (covered[unit])
                    {
                        throw new InvariantViolationException($"unit {unit} is on two free lists");
                    }

                    covered[unit] = true;
                }

                free += 1 << order;
                previous = block;
            }
        }

        for (int unit = 0; unit < Units; unit++)
        {
            if (_allocatedOrder[unit] != None && Array.IndexOf(covered, true, unit, 1 << _allocatedOrder[unit]) >= 0)
            {
                throw new InvariantViolationException($"allocated frame at unit {unit} overlaps a free block");
            }
        }

        if (free != FreeUnits)
        {
            throw new InvariantViolationException($"free lists hold {free} units, the count says {FreeUnits}");
        }
    }

    private void Push(int block, int order)
    {
        _freeOrder[block] = (sbyte)order;
        _previous[block] = None;
        _next[block] = _heads[order];
        if (_heads[order] != None)
        {
            _previous[_heads[order]] = block;
        }

        _heads[order] = block;
    }

    private void Remove(int block, int order)
    {
        if (_previous[block] != None)
        {
            _next[_previous[block]] = _next[block];
        }
        else
        {
            _heads[order] = _next[block];
        }

        if (_next[block] != None)
        {
            _previous[_next[block]] = _previous[block];
        }

        _freeOrder[block] = (sbyte)None;
    }
}
