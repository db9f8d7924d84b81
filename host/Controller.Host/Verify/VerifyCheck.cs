namespace Controller.Host.Verify;

/// <summary>A sector that breaks the no-lost-writes invariant, with what was read and what was allowed.</summary>
internal sealed record Violation(string Class, long Offset, string Found, string Expected, string History);

/// <summary>
/// Judges each 4 KiB block read back against the ledger, by the classes of DESIGN.md section 3:
/// the block must hold the last durable operation's value or a later operation's, whole, from this
/// address and this run.
/// </summary>
internal sealed class VerifyCheck
{
    /// <summary>The classes, in the order reports list them.</summary>
    public static readonly string[] Classes =
    [
        "bit-corruption",
        "flying-write",
        "shorn-write",
        "lost-durable-write",
        "resurrected-trim",
        "dead-device",
    ];

    private readonly LedgerContents _ledger;
    private readonly Dictionary<long, List<LedgerOp>> _history = [];
    private readonly Dictionary<int, long> _lastFlushAcked;

    public VerifyCheck(LedgerContents ledger)
    {
        _ledger = ledger;
        foreach (LedgerOp op in ledger.Ops)
        {
            if (op.Kind == 'S')
            {
                continue;
            }

            // The baseline zeroes every block: it is kept once, not per block.
            if (op.Count == ledger.Blocks && op.Kind == 'Z' && op == ledger.Ops[0])
            {
                continue;
            }

            for (long block = op.Block; block < op.Block + op.Count; block++)
            {
                if (!_history.TryGetValue(block, out List<LedgerOp>? list))
                {
                    _history[block] = list = [];
                }

                list.Add(op);
            }
        }

        _lastFlushAcked = ledger
            .Ops.Where(o => o.Kind == 'S' && o.Acked)
            .GroupBy(o => o.Session)
            .ToDictionary(g => g.Key, g => g.Max(o => o.Generation));
    }

    /// <summary>Blocks the ledger wrote, trimmed or zeroed after the baseline.</summary>
    public int BlocksTouched => _history.Count;

    /// <summary>Judges <paramref name="data"/>, read from <paramref name="block"/>; null when it is allowed.</summary>
    public Violation? Judge(long block, ReadOnlySpan<byte> data)
    {
        long offset = block * Ledger.BlockBytes;
        List<LedgerOp> ops = Ops(block);
        int durable = LastDurable(ops);
        string expected = Expected(ops, durable);
        string history = History(ops);
        UnitState state = UnitState.Zero;
        long generation = -1;
        bool mixed = false;
        for (int at = 0; at < data.Length; at += VerifyStamp.UnitBytes)
        {
            (UnitState unit, long unitOffset, long unitGeneration, ulong seed) = VerifyStamp.Decode(
                data.Slice(at, VerifyStamp.UnitBytes)
            );
            if (unit == UnitState.Corrupt)
            {
                return new Violation(
                    "bit-corruption",
                    offset + at,
                    "bytes that are neither zeros nor an intact stamp",
                    expected,
                    history
                );
            }

            if (unit == UnitState.Stamped && (unitOffset != offset + at || seed != _ledger.Seed))
            {
                return new Violation(
                    "flying-write",
                    offset + at,
                    seed != _ledger.Seed
                        ? $"data of another run (seed {seed})"
                        : $"data written to offset {unitOffset}",
                    expected,
                    history
                );
            }

            long value = unit == UnitState.Zero ? 0 : unitGeneration;
            if (at == 0)
            {
                (state, generation) = (unit, value);
            }
            else if (value != generation)
            {
                mixed = true;
            }
        }

        if (mixed)
        {
            return new Violation(
                "shorn-write",
                offset,
                "a mix of two operations' data in one sector",
                expected,
                history
            );
        }

        if (state == UnitState.Zero)
        {
            // Zeros are allowed if the durable value or a later one is a trim or zero.
            return ops.Skip(durable).Any(o => o.Zeroes)
                ? null
                : new Violation("lost-durable-write", offset, "zeros", expected, history);
        }

        int index = ops.FindIndex(o => o.Generation == generation && !o.Zeroes);
        if (index < 0)
        {
            return new Violation(
                "flying-write",
                offset,
                $"generation {generation}, which never wrote this sector",
                expected,
                history
            );
        }

        if (index >= durable)
        {
            return null;
        }

        return ops.Skip(index + 1).Take(durable - index).Any(o => o.Zeroes)
            ? new Violation("resurrected-trim", offset, $"generation {generation}, trimmed since", expected, history)
            : new Violation(
                "lost-durable-write",
                offset,
                $"generation {generation}, overwritten since",
                expected,
                history
            );
    }

    /// <summary>The operations on <paramref name="block"/>, the baseline zeroing first.</summary>
    private List<LedgerOp> Ops(long block)
    {
        var ops = new List<LedgerOp> { _ledger.Ops[0] };
        if (_history.TryGetValue(block, out List<LedgerOp>? list))
        {
            ops.AddRange(list);
        }

        return ops;
    }

    /// <summary>
    /// The index of the last operation that was durable: acknowledged with FUA (a write, a trim or
    /// a zeroing alike: NBD forbids the reply to any FUA command before what it wrote is
    /// persisted), or acknowledged before a flush of the same run that was.
    /// </summary>
    private int LastDurable(List<LedgerOp> ops)
    {
        for (int i = ops.Count - 1; i > 0; i--)
        {
            if (ops[i].Acked && (ops[i].Fua || ops[i].Generation < _lastFlushAcked.GetValueOrDefault(ops[i].Session)))
            {
                return i;
            }
        }

        return 0;
    }

    private static string Expected(List<LedgerOp> ops, int durable) =>
        $"{Describe(ops[durable])} (durable) or a later one: {(durable + 1 < ops.Count ? string.Join(", ", ops.Skip(durable + 1).Select(Describe)) : "none")}";

    private static string History(List<LedgerOp> ops) =>
        string.Join(
            " -> ",
            ops.TakeLast(6)
                .Select(o => $"{Describe(o)}{(o.Acked ? "" : o.Failed ? " (failed)" : " (not acknowledged)")}")
        );

    private static string Describe(LedgerOp op) =>
        (op.Fua ? "FUA " : "")
        + op.Kind switch
        {
            'W' => $"write {op.Generation}",
            'T' => $"trim {op.Generation}",
            _ when op.Generation == 1 => "baseline zeros",
            _ => $"zero{(op.NoHole ? " (no hole)" : "")} {op.Generation}",
        };
}
