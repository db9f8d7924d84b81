using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Controller.Firmware.Host;

namespace Controller.Emulator.Sim;

/// <summary>The failure classes of DESIGN.md section 3 (Zheng et al., FAST'13).</summary>
public enum ViolationClass
{
    /// <summary>
    /// A sector holds bytes no operation wrote: a torn program, a flipped bit, or it cannot be read at all.
    /// </summary>
    BitCorruption,

    /// <summary>A sector holds data written to another address, or a value no operation wrote to it.</summary>
    FlyingWrite,

    /// <summary>A sector holds a mix of two operations' data.</summary>
    ShornWrite,

    /// <summary>A durable write is gone: the sector holds older data or zeros.</summary>
    LostDurableWrite,

    /// <summary>A durable trim is undone: the sector holds data from before it.</summary>
    ResurrectedTrim,

    /// <summary>The device does not come back up or does not serve I/O.</summary>
    DeadDevice,
}

/// <summary>One violation of the invariant, with what is needed to understand and replay it.</summary>
/// <param name="Class">Its class.</param>
/// <param name="Sector">The 4 KiB sector (-1 when the whole device failed).</param>
/// <param name="Detail">What was read against what was allowed.</param>
/// <param name="History">The operations on that sector, the flushes and the power cuts, oldest first.</param>
public sealed record Violation(ViolationClass Class, long Sector, string Detail, string History)
{
    /// <summary>The class as the reports write it: <c>lost-durable-write</c>.</summary>
    public string ClassName => Name(Class);

    /// <summary>
    /// How many of <paramref name="classNames"/> fall in each class, every class listed in the
    /// enum's order (those with none at 0), with <paramref name="deadDevices"/> more dead-device ones.
    /// </summary>
    public static Dictionary<string, int> CountByClass(IEnumerable<string> classNames, int deadDevices = 0)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        var counts = Enum.GetValues<ViolationClass>().ToDictionary(Name, _ => 0);
        foreach (string name in classNames)
        {
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }

        counts[Name(ViolationClass.DeadDevice)] += deadDevices;
        return counts;
    }

    /// <summary>A class as the reports write it.</summary>
    public static string Name(ViolationClass value) =>
        value switch
        {
            ViolationClass.BitCorruption => "bit-corruption",
            ViolationClass.FlyingWrite => "flying-write",
            ViolationClass.ShornWrite => "shorn-write",
            ViolationClass.LostDurableWrite => "lost-durable-write",
            ViolationClass.ResurrectedTrim => "resurrected-trim",
            _ => "dead-device",
        };

    /// <inheritdoc />
    public override string ToString() =>
        Sector < 0 ? $"{ClassName}: {Detail}" : $"{ClassName} at sector {Sector}: {Detail}";
}

/// <summary>
/// The reference of DESIGN.md section 3. Every host command gets an operation id; the oracle keeps,
/// per 4 KiB sector, the value the host would read now (which operation's data each of its eight
/// 512-byte blocks holds), and, when power cuts are planned, the durable value and every value
/// completed or in flight since, any of which may have survived a cut. Reads without a cut in
/// between must match exactly; after a cut and recovery each sector must hold one allowed value,
/// and a violation is classified and told with the sector's history.
/// </summary>
internal sealed class Oracle
{
    private const int BlocksPerSector = 8;
    private const int SectorBytes = BlocksPerSector * BlockStamp.Bytes;
    private const int MaxHistory = 16;

    private readonly SectorValue[] _latest;
    private readonly SectorValue[] _durable;
    private readonly Dictionary<long, List<SectorValue>> _between = [];
    private readonly List<long> _touched = [];
    private readonly bool[] _isTouched;
    private readonly bool _tracksDurability;
    private readonly bool _everyCompletionDurable;
    private readonly List<Operation> _log = [];
    private readonly List<(uint AfterOperation, string What)> _cuts = [];
    private readonly Dictionary<uint, List<(long Sector, SectorValue Before)>> _inFlightWrites = [];
    private readonly Stack<List<(long Sector, SectorValue Before)>> _changedPool = new();
    private readonly List<InFlightRead> _inFlightReads = [];
    private readonly List<FlushInFlight> _flushes = [];
    private readonly List<FlushInFlight> _durableWrites = [];
    private readonly Dictionary<long, SectorValue> _eitherBefore = [];
    private readonly uint[] _writer;
    private readonly Dictionary<long, Contest> _contests = [];

    /// <summary>
    /// A reference of <paramref name="sectors"/> sectors. <paramref name="tracksDurability"/> keeps what
    /// a power cut may leave; <paramref name="everyCompletionDurable"/> is power-loss-protection mode.
    /// </summary>
    public Oracle(long sectors, bool tracksDurability, bool everyCompletionDurable)
    {
        _latest = new SectorValue[sectors];
        _tracksDurability = tracksDurability;
        _everyCompletionDurable = everyCompletionDurable;
        _durable = tracksDurability ? new SectorValue[sectors] : [];
        _isTouched = tracksDurability ? new bool[sectors] : [];
        _writer = new uint[sectors];
    }

    /// <summary>Operations submitted so far.</summary>
    public uint Operations => (uint)_log.Count;

    /// <summary>
    /// Records a command about to be submitted; returns its operation id (from 1). Commands may be
    /// in flight together, and the oracle accepts what NBD allows of them: a read in flight with
    /// writes may return, block by block, what any of them left or what was there before them;
    /// writes in flight together to one sector may land in either order, each whole within the
    /// 4 KiB sector (up to <see cref="Contest.MaxWrites"/> of them); a flush covers only
    /// the writes replied to before it was submitted, and flushes may be in flight together.
    /// </summary>
    public uint Submit(HostOpcode opcode, HostCommandOptions flags, long offset, long length)
    {
        _log.Add(new Operation(opcode, flags, offset, length, OperationState.Submitted));
        uint id = (uint)_log.Count;
        if (opcode == HostOpcode.Read)
        {
            SubmitRead(id, offset, length);
        }
        else if (opcode == HostOpcode.Flush)
        {
            // NBD: a flush covers the writes replied to before it; those in flight now, and those
            // submitted before it completes, it need not cover. Their sectors stay as durable as
            // they were before the first of them.
            var flush = new FlushInFlight(id);
            foreach ((uint _, List<(long Sector, SectorValue Before)> inFlight) in _inFlightWrites)
            {
                foreach ((long sector, SectorValue before) in inFlight)
                {
                    flush.NotCoveredSince(sector, before).Since.Add(_latest[sector]);
                }
            }

            _flushes.Add(flush);
        }
        else if (opcode is HostOpcode.Write or HostOpcode.Trim or HostOpcode.WriteZeroes)
        {
            uint value = opcode == HostOpcode.Write ? id : 0;
            List<(long Sector, SectorValue Before)> changed = _changedPool.Count > 0 ? _changedPool.Pop() : [];
            foreach ((long sector, int first, int count) in new SectorSpans(offset, length))
            {
                SectorValue before = _latest[sector];
                changed.Add((sector, before));
                foreach (FlushInFlight flush in _flushes)
                {
                    flush.NotCoveredSince(sector, before).Since.Add(before);
                }

                foreach (FlushInFlight durableWrite in _durableWrites)
                {
                    if (durableWrite.Covers(sector))
                    {
                        durableWrite.NotCoveredSince(sector, before).Since.Add(before);
                    }
                }

                Change(sector, first, count, value);
                Contest? contest = Contend(id, sector, first, count, value);
                foreach (InFlightRead read in _inFlightReads)
                {
                    read.Allow(sector, before, _latest[sector]);
                    read.Allow(sector, contest);
                }

                if (contest is not null)
                {
                    Widen(sector, contest);
                }
            }

            _inFlightWrites.Add(id, changed);
            if (_tracksDurability && (_everyCompletionDurable || flags.HasFlag(HostCommandOptions.ForceUnitAccess)))
            {
                // Its reply makes its own data durable, not that of writes submitted after it.
                _durableWrites.Add(new FlushInFlight(id, offset, length));
            }
        }

        return id;
    }

    /// <summary>Records a completion (<paramref name="ok"/> false: the command failed).</summary>
    public void Complete(uint id, bool ok)
    {
        Operation operation = _log[(int)id - 1];
        _log[(int)id - 1] = operation with { State = ok ? OperationState.Completed : OperationState.Failed };
        if (!ok && operation.Opcode == HostOpcode.Read)
        {
            TakeRead(id);
        }

        if (_inFlightWrites.Remove(id, out List<(long Sector, SectorValue Before)>? changed))
        {
            foreach ((long sector, SectorValue before) in changed)
            {
                if (_writer[sector] == id)
                {
                    _writer[sector] = 0;
                }

                if (_contests.TryGetValue(sector, out Contest? contest))
                {
                    contest.Complete(id, ok);
                    Resolve(sector, contest);
                }

                if (!ok)
                {
                    // A failed write or trim may have changed some of its sectors and not others: each may
                    // hold what it held before or what the command asked, until it is written again.
                    _eitherBefore.TryAdd(sector, before);
                }
            }

            changed.Clear();
            _changedPool.Push(changed);
        }

        if (operation.Opcode == HostOpcode.Flush)
        {
            int index = _flushes.FindIndex(f => f.Id == id);
            if (index >= 0)
            {
                FlushInFlight flush = _flushes[index];

                if (!ok)
                {
                    _flushes.RemoveAt(index);
                    return;
                }

                // A flush that completes covers everything the flushes submitted before it cover.
                _flushes.RemoveAll(f => f.Id <= id);
                if (_tracksDurability)
                {
                    MakeEverythingDurable(flush.NotCovered);
                }
            }

            return;
        }

        int durableWrite = _durableWrites.FindIndex(w => w.Id == id);
        FlushInFlight? self = durableWrite < 0 ? null : _durableWrites[durableWrite];
        if (self is not null)
        {
            _durableWrites.RemoveAt(durableWrite);
        }

        if (!_tracksDurability || !ok || self is null)
        {
            return;
        }

        // NBD: a server must not reply to a command with FUA until what it wrote is persisted,
        // and WRITE, WRITE_ZEROES and TRIM all write (NVMe's FUA on Write, Write Zeroes and
        // Dataset Management is the same rule). The FTL writes whole sectors, so a durable
        // command makes its sectors durable whole, partial blocks around it included: the
        // sector is the unit of atomicity.
        foreach ((long sector, _, _) in new SectorSpans(operation.Offset, operation.Length))
        {
            // Durable as the command left it; writes submitted after it, replied to or not,
            // may or may not have reached the NAND. (When a flush has meanwhile made a later
            // value durable, this takes the sector back to the command's value: looser than
            // need be, never stricter than NBD.)
            (SectorValue durable, List<SectorValue>? since) = self.NotCovered.TryGetValue(sector, out NotCovered? after)
                ? (after.Durable, after.Since)
                : (_latest[sector], null);
            _durable[sector] = durable;
            if (since is { Count: > 0 })
            {
                _between[sector] = [.. since];
            }
            else
            {
                _between.Remove(sector);
            }

            foreach (FlushInFlight flush in _flushes)
            {
                if (flush.NotCovered.TryGetValue(sector, out NotCovered? notCovered))
                {
                    // Durable now: the flush in flight does not take the sector back before this.
                    notCovered.Durable = durable;
                    notCovered.Since.Clear();
                    notCovered.Since.AddRange(since ?? []);
                }
            }

            if (_contests.TryGetValue(sector, out Contest? contest))
            {
                // Writes in flight with it, or that landed in either order with it, leave the
                // sector durable as any of the values it may hold.
                Widen(sector, contest);
            }
        }
    }

    /// <summary>
    /// Records that the power was cut while the operations <paramref name="inFlight"/> were in flight.
    /// </summary>
    public void PowerCut(ReadOnlySpan<uint> inFlight, string what)
    {
        foreach (uint id in inFlight)
        {
            _log[(int)id - 1] = _log[(int)id - 1] with { State = OperationState.InFlightAtCut };
            if (_inFlightWrites.Remove(id, out List<(long Sector, SectorValue Before)>? changed))
            {
                foreach ((long sector, _) in changed)
                {
                    _writer[sector] = 0;
                }

                changed.Clear();
                _changedPool.Push(changed);
            }
        }

        // Every value a contested sector may hold is already among those a cut may leave (Widen).
        _contests.Clear();
        _inFlightReads.Clear();
        _flushes.Clear();
        _durableWrites.Clear();

        _cuts.Add((Operations, what));
    }

    /// <summary>
    /// Checks a read of <paramref name="data"/> at byte <paramref name="offset"/> made with no power
    /// cut since the last check: every block must hold exactly the latest value, or, for a read
    /// that was in flight with writes to it (<paramref name="read"/>, its operation id), the value
    /// of one of those writes or the one before them. Returns the first violation, or null.
    /// </summary>
    public Violation? CheckExact(long offset, ReadOnlySpan<byte> data, uint read = 0)
    {
        InFlightRead? window = read == 0 ? null : TakeRead(read);
        long firstBlock = offset / BlockStamp.Bytes;
        int blocks = data.Length / BlockStamp.Bytes;
        for (int block = 0; block < blocks; block++)
        {
            long address = firstBlock + block;
            long sector = address / BlocksPerSector;
            int inSector = (int)(address % BlocksPerSector);
            if (_contests.Count > 0 && _contests.TryGetValue(sector, out Contest? contest))
            {
                int count = Math.Min(BlocksPerSector - inSector, blocks - block);
                if (
                    CheckContested(
                        sector,
                        contest,
                        inSector,
                        data.Slice(block * BlockStamp.Bytes, count * BlockStamp.Bytes),
                        window
                    ) is
                    { } contested
                )
                {
                    return contested;
                }

                block += count - 1;
                continue;
            }

            uint expected = _latest[sector][inSector];
            ReadOnlySpan<byte> bytes = data.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes);
            if (
                !BlockStamp.Matches(bytes, address, expected)
                && !(
                    _eitherBefore.TryGetValue(sector, out SectorValue before)
                    && BlockStamp.Matches(bytes, address, before[inSector])
                )
                && !(window?.Allows(sector, inSector, bytes, address) ?? false)
            )
            {
                SectorValue latest = _latest[sector];
                List<SectorValue> allowed = window?.AllowedFor(sector) is { } values ? [.. values] : [latest];
                return Classify(
                    sector,
                    bytes,
                    inSector,
                    allowed,
                    latest,
                    window?.AllowedFor(sector) is null
                        ? "with no power cut since it was written, the read must match exactly"
                        : "a read in flight with writes to it must return one of theirs or what was there before"
                );
            }
        }

        return null;
    }

    /// <summary>
    /// Checks the blocks of a contested sector a read returned (<paramref name="bytes"/>, from block
    /// <paramref name="first"/>): they must all be one value the sector may hold, never a mix. A
    /// read in flight with none of the writes narrows the sector to the values it matches.
    /// </summary>
    private Violation? CheckContested(
        long sector,
        Contest contest,
        int first,
        ReadOnlySpan<byte> bytes,
        InFlightRead? window
    )
    {
        List<SectorValue> allowed = [.. contest.Values];
        List<SectorValue>? windowed = window?.AllowedFor(sector);
        foreach (SectorValue value in windowed ?? [])
        {
            if (!allowed.Contains(value))
            {
                allowed.Add(value);
            }
        }

        if (_eitherBefore.TryGetValue(sector, out SectorValue failed) && !allowed.Contains(failed))
        {
            allowed.Add(failed);
        }

        long firstAddress = (sector * BlocksPerSector) + first;
        int count = bytes.Length / BlockStamp.Bytes;
        foreach (SectorValue value in allowed)
        {
            if (Holds(bytes, firstAddress, first, value))
            {
                if (windowed is null && !contest.InFlight && contest.Observe(bytes, firstAddress, first))
                {
                    Resolve(sector, contest);
                }

                return null;
            }
        }

        const string When = "writes in flight together land in either order, each whole within the sector";
        for (int block = 0; block < count; block++)
        {
            ReadOnlySpan<byte> one = bytes.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes);
            if (!Holds(one, firstAddress + block, first + block, allowed))
            {
                return Classify(
                    sector,
                    one,
                    first + block,
                    allowed,
                    _durable.Length > 0 ? _durable[sector] : _latest[sector],
                    When
                );
            }
        }

        return new Violation(
            ViolationClass.ShornWrite,
            sector,
            $"blocks {first}..{first + count - 1} mix the values of writes in flight together, {When}; allowed {string.Join(" or ", allowed.Select(Describe))}",
            History(sector)
        );
    }

    /// <summary>
    /// True when the one block in <paramref name="bytes"/> holds block <paramref name="block"/> of any of
    /// <paramref name="values"/>.
    /// </summary>
    private static bool Holds(ReadOnlySpan<byte> bytes, long address, int block, List<SectorValue> values)
    {
        foreach (SectorValue value in values)
        {
            if (BlockStamp.Matches(bytes, address, value[block]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when the blocks in <paramref name="bytes"/> (from block <paramref name="first"/> of the sector) hold
    /// <paramref name="value"/>.
    /// </summary>
    private static bool Holds(ReadOnlySpan<byte> bytes, long firstAddress, int first, SectorValue value)
    {
        for (int block = 0; block < bytes.Length / BlockStamp.Bytes; block++)
        {
            if (
                !BlockStamp.Matches(
                    bytes.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes),
                    firstAddress + block,
                    value[first + block]
                )
            )
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Sectors checked after cuts whose newest written value was not yet durable when the power went.
    /// </summary>
    public long UnflushedAtCuts { get; private set; }

    /// <summary>
    /// Of those, the sectors that came back without that value (lost, as the rules allow for unflushed data).
    /// </summary>
    public long UnflushedLost { get; private set; }

    /// <summary>
    /// After a power cut and recovery: checks one whole sector read back (<paramref name="data"/>,
    /// 4 KiB) against the values allowed for it, then takes what it holds as its durable value.
    /// </summary>
    public Violation? CheckAfterCut(long sector, ReadOnlySpan<byte> data)
    {
        var allowed = new List<SectorValue>(4) { _durable[sector] };
        if (_between.TryGetValue(sector, out List<SectorValue>? between))
        {
            allowed.AddRange(between);
        }

        allowed.Add(_latest[sector]);
        if (_eitherBefore.TryGetValue(sector, out SectorValue beforeFailure))
        {
            allowed.Add(beforeFailure);
        }

        Violation? violation = null;
        SectorValue read = default;
        for (int block = 0; block < BlocksPerSector && violation is null; block++)
        {
            ReadOnlySpan<byte> bytes = data.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes);
            BlockStamp.Decoded decoded = BlockStamp.Decode(bytes);
            read[block] = decoded.Operation;
            if (
                decoded.What != BlockStamp.Kind.Zeros
                && (decoded.What == BlockStamp.Kind.Damaged || decoded.Address != (sector * BlocksPerSector) + block)
            )
            {
                violation = Classify(sector, data, block, allowed, _durable[sector], "after a power cut");
            }
        }

        if (violation is null && !allowed.Contains(read))
        {
            int block = FirstOutside(read, allowed);
            violation = Classify(sector, data, block < 0 ? 0 : block, allowed, _durable[sector], "after a power cut");
        }

        if (_latest[sector] != _durable[sector])
        {
            UnflushedAtCuts++;
            UnflushedLost += read == _latest[sector] ? 0 : 1;
        }

        Settle(sector, read);
        return violation;
    }

    /// <summary>After a power cut, a sector that cannot be read at all.</summary>
    public Violation Unreadable(long sector, string status)
    {
        Settle(sector, _durable[sector]);
        return new Violation(
            ViolationClass.BitCorruption,
            sector,
            $"the sector cannot be read after recovery ({status})",
            History(sector)
        );
    }

    /// <summary>The sector's history, oldest first, as one line.</summary>
    public string History(long sector)
    {
        long first = sector * SectorBytes;
        long end = first + SectorBytes;
        var entries = new List<(uint Id, string Text)>();
        bool lastWasFlush = false;
        for (int i = 0; i < _log.Count; i++)
        {
            Operation operation = _log[i];
            uint id = (uint)i + 1;
            if (operation.Opcode == HostOpcode.Flush)
            {
                if (!lastWasFlush && operation.State == OperationState.Completed)
                {
                    entries.Add((id, $"op {id} flush"));
                    lastWasFlush = true;
                }

                continue;
            }

            if (
                operation.Opcode == HostOpcode.Read
                || operation.Offset >= end
                || operation.Offset + operation.Length <= first
            )
            {
                continue;
            }

            lastWasFlush = false;
            long from = Math.Max(first, operation.Offset);
            long to = Math.Min(end, operation.Offset + operation.Length);
            string blocks =
                from == first && to == end
                    ? "whole sector"
                    : $"blocks {(from - first) / BlockStamp.Bytes}..{((to - first) / BlockStamp.Bytes) - 1}";
            string fua = operation.Flags.HasFlag(HostCommandOptions.ForceUnitAccess) ? " FUA" : string.Empty;
            string noHole = operation.Flags.HasFlag(HostCommandOptions.NoHole) ? " NO_HOLE" : string.Empty;
            entries.Add((id, $"op {id} {Name(operation.Opcode)}{fua}{noHole} {blocks} {State(operation.State)}"));
        }

        foreach ((uint after, string what) in _cuts)
        {
            entries.Add((after, $"power cut after op {after} ({what})"));
        }

        List<string> ordered =
        [
            .. entries
                .OrderBy(e => e.Id)
                .ThenBy(e => e.Text.StartsWith("power", StringComparison.Ordinal) ? 1 : 0)
                .Select(e => e.Text),
        ];
        string prefix = ordered.Count > MaxHistory ? $"({ordered.Count - MaxHistory} earlier entries) " : string.Empty;
        return prefix + string.Join("; ", ordered.Skip(Math.Max(0, ordered.Count - MaxHistory)));
    }

    private static string Name(HostOpcode opcode) =>
        opcode switch
        {
            HostOpcode.Write => "write",
            HostOpcode.Trim => "trim",
            HostOpcode.WriteZeroes => "write-zeroes",
            HostOpcode.Flush => "flush",
            _ => "read",
        };

    private static string State(OperationState state) =>
        state switch
        {
            OperationState.Completed => "completed",
            OperationState.Failed => "failed",
            OperationState.InFlightAtCut => "in flight at the cut",
            _ => "submitted",
        };

    private static int FirstOutside(SectorValue read, List<SectorValue> allowed)
    {
        for (int block = 0; block < BlocksPerSector; block++)
        {
            if (!allowed.Exists(value => value[block] == read[block]))
            {
                return block;
            }
        }

        return -1;
    }

    private static string Describe(SectorValue value)
    {
        var text = new StringBuilder("[");
        for (int block = 0; block < BlocksPerSector; block++)
        {
            text.Append(block == 0 ? string.Empty : ",").Append(value[block].ToString(CultureInfo.InvariantCulture));
        }

        return text.Append(']').ToString();
    }

    private void Settle(long sector, SectorValue read)
    {
        _eitherBefore.Remove(sector);
        _latest[sector] = read;
        _durable[sector] = read;
        _between.Remove(sector);
    }

    /// <summary>
    /// Classifies a sector (or one block of it, <paramref name="block"/>) that holds no allowed value.
    /// </summary>
    private Violation Classify(
        long sector,
        ReadOnlySpan<byte> sectorOrBlock,
        int block,
        List<SectorValue> allowed,
        SectorValue durable,
        string when
    )
    {
        ReadOnlySpan<byte> bytes =
            sectorOrBlock.Length == BlockStamp.Bytes
                ? sectorOrBlock
                : sectorOrBlock.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes);
        long address = (sector * BlocksPerSector) + block;
        BlockStamp.Decoded decoded = BlockStamp.Decode(bytes);
        string allowedText = string.Join(" or ", allowed.Distinct().Select(Describe));
        string history = History(sector);
        if (decoded.What == BlockStamp.Kind.Damaged)
        {
            return new(
                ViolationClass.BitCorruption,
                sector,
                $"block {block} holds bytes no operation wrote (a torn program or flipped bits), {when}; allowed {allowedText}",
                history
            );
        }

        if (decoded.What == BlockStamp.Kind.Stamp && decoded.Address != address)
        {
            return new(
                ViolationClass.FlyingWrite,
                sector,
                $"block {block} holds op {decoded.Operation}'s data for block address {decoded.Address}, not {address}, {when}",
                history
            );
        }

        if (sectorOrBlock.Length == SectorBytes && allowed.Count > 1 && IsShorn(sectorOrBlock, allowed))
        {
            return new(
                ViolationClass.ShornWrite,
                sector,
                $"the sector mixes blocks of different operations: {Describe(Read(sectorOrBlock))}, {when}; allowed {allowedText}",
                history
            );
        }

        uint holds = decoded.Operation;
        string holdsText = holds == 0 ? "zeros" : $"op {holds}'s data";
        if (holds != 0 && !Wrote(holds, address))
        {
            return new(
                ViolationClass.FlyingWrite,
                sector,
                $"block {block} holds op {holds}'s data, and op {holds} never wrote there, {when}",
                history
            );
        }

        if (holds != 0 && durable[block] == 0)
        {
            return new(
                ViolationClass.ResurrectedTrim,
                sector,
                $"block {block} holds {holdsText}, from before the durable trim or zeroing that made it a hole, {when}; allowed {allowedText}",
                history
            );
        }

        return new(
            ViolationClass.LostDurableWrite,
            sector,
            $"block {block} holds {holdsText} where op {durable[block]} was durable, {when}; allowed {allowedText}",
            history
        );
    }

    private static SectorValue Read(ReadOnlySpan<byte> sector)
    {
        SectorValue value = default;
        for (int block = 0; block < BlocksPerSector; block++)
        {
            value[block] = BlockStamp.Decode(sector.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes)).Operation;
        }

        return value;
    }

    private static bool IsShorn(ReadOnlySpan<byte> sector, List<SectorValue> allowed)
    {
        SectorValue read = Read(sector);
        return FirstOutside(read, allowed) < 0 && !allowed.Contains(read);
    }

    private bool Wrote(uint operation, long address)
    {
        if (operation > _log.Count)
        {
            return false;
        }

        Operation written = _log[(int)operation - 1];
        long byteAddress = address * BlockStamp.Bytes;
        return written.Opcode == HostOpcode.Write
            && byteAddress >= written.Offset
            && byteAddress < written.Offset + written.Length;
    }

    /// <summary>
    /// A flush completed: every sector is durable as it is now, except those written by commands
    /// the flush did not cover, which are durable as they were before the first of those and may
    /// still hold any value since.
    /// </summary>
    private void MakeEverythingDurable(Dictionary<long, NotCovered> notCoveredSectors)
    {
        MakeDurable(notCoveredSectors);

        // A contested sector is durable as any of the values it may hold.
        foreach ((long sector, Contest contest) in _contests)
        {
            Widen(sector, contest);
        }
    }

    private void MakeDurable(Dictionary<long, NotCovered> notCoveredSectors)
    {
        if (notCoveredSectors.Count == 0)
        {
            foreach (long sector in _touched)
            {
                _durable[sector] = _latest[sector];
                _isTouched[sector] = false;
            }

            _touched.Clear();
            _between.Clear();
            return;
        }

        int kept = 0;
        for (int i = 0; i < _touched.Count; i++)
        {
            long sector = _touched[i];
            if (notCoveredSectors.TryGetValue(sector, out NotCovered? notCovered))
            {
                // Durable as it was before the first write the flush did not cover; any value
                // those writes left since may have reached the NAND too.
                _durable[sector] = notCovered.Durable;
                _between[sector] = notCovered.Since;
                _touched[kept++] = sector;
                continue;
            }

            _durable[sector] = _latest[sector];
            _isTouched[sector] = false;
            _between.Remove(sector);
        }

        _touched.RemoveRange(kept, _touched.Count - kept);
    }

    private void Change(long sector, int firstBlock, int blocks, uint value)
    {
        if (blocks == BlocksPerSector)
        {
            _eitherBefore.Remove(sector);
        }

        ref SectorValue latest = ref _latest[sector];
        if (_tracksDurability)
        {
            if (!_isTouched[sector])
            {
                _isTouched[sector] = true;
                _touched.Add(sector);
            }
            else if (latest != _durable[sector])
            {
                if (!_between.TryGetValue(sector, out List<SectorValue>? between))
                {
                    between = [];
                    _between[sector] = between;
                }

                between.Add(latest);
            }
        }

        for (int block = firstBlock; block < firstBlock + blocks; block++)
        {
            latest[block] = value;
        }
    }

    /// <summary>
    /// A read is in flight: the writes in flight to its sectors, and those submitted before it completes, may show.
    /// </summary>
    private void SubmitRead(uint id, long offset, long length)
    {
        InFlightRead? read = null;
        foreach ((uint _, List<(long Sector, SectorValue Before)> changed) in _inFlightWrites)
        {
            foreach ((long sector, SectorValue before) in changed)
            {
                if (sector * SectorBytes < offset + length && (sector + 1) * SectorBytes > offset)
                {
                    read ??= new InFlightRead(id, offset, length);
                    read.Allow(sector, before, _latest[sector]);
                    read.Allow(sector, _contests.GetValueOrDefault(sector));
                }
            }
        }

        _inFlightReads.Add(read ?? new InFlightRead(id, offset, length));
    }

    /// <summary>
    /// Writes <paramref name="sector"/> as write <paramref name="id"/>: when another write to it is
    /// in flight, the sector becomes contested (the writes may land in either order); returns its
    /// contest, or null.
    /// </summary>
    private Contest? Contend(uint id, long sector, int first, int count, uint value)
    {
        uint other = _writer[sector];
        _writer[sector] = id;
        if (!_contests.TryGetValue(sector, out Contest? contest))
        {
            if (other == 0)
            {
                return null;
            }

            Operation earlier = _log[(int)other - 1];
            (long _, int earlierFirst, int earlierCount) = SectorSpans.In(earlier.Offset, earlier.Length, sector);
            contest = new Contest(_inFlightWrites[other].Find(c => c.Sector == sector).Before);
            contest.Add(other, earlierFirst, earlierCount, earlier.Opcode == HostOpcode.Write ? other : 0);
            _contests[sector] = contest;
        }

        contest.Add(id, first, count, value);
        return contest;
    }

    /// <summary>Ends a contest that has no write in flight and one value left: the sector holds it.</summary>
    private void Resolve(long sector, Contest contest)
    {
        if (!contest.InFlight && contest.Values.Count == 1)
        {
            _latest[sector] = contest.Values[0];
            _contests.Remove(sector);
        }
    }

    /// <summary>Every value a contested sector may hold is one a cut may leave.</summary>
    private void Widen(long sector, Contest contest)
    {
        if (!_tracksDurability)
        {
            return;
        }

        if (!_isTouched[sector])
        {
            _isTouched[sector] = true;
            _touched.Add(sector);
        }

        foreach (SectorValue value in contest.Values)
        {
            if (value == _durable[sector])
            {
                continue;
            }

            if (!_between.TryGetValue(sector, out List<SectorValue>? between))
            {
                between = [];
                _between[sector] = between;
            }

            if (!between.Contains(value))
            {
                between.Add(value);
            }
        }
    }

    private InFlightRead? TakeRead(uint id)
    {
        int index = _inFlightReads.FindIndex(r => r.Id == id);
        if (index < 0)
        {
            return null;
        }

        InFlightRead read = _inFlightReads[index];
        _inFlightReads.RemoveAt(index);
        return read;
    }

    private enum OperationState : byte
    {
        Submitted,
        Completed,
        Failed,
        InFlightAtCut,
    }

    /// <summary>The sectors a byte range covers, each with the first block and the number of blocks covered.</summary>
    private ref struct SectorSpans
    {
        private readonly long _end;
        private long _block;

        public SectorSpans(long offset, long length)
        {
            _block = offset / BlockStamp.Bytes;
            _end = (offset + length) / BlockStamp.Bytes;
        }

        public (long Sector, int First, int Count) Current { get; private set; }

        /// <summary>The part of the byte range that falls in <paramref name="sector"/>.</summary>
        public static (long Sector, int First, int Count) In(long offset, long length, long sector)
        {
            long from = Math.Max(offset / BlockStamp.Bytes, sector * BlocksPerSector);
            long to = Math.Min((offset + length) / BlockStamp.Bytes, (sector + 1) * BlocksPerSector);
            return (sector, (int)(from - (sector * BlocksPerSector)), (int)(to - from));
        }

        public readonly SectorSpans GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_block >= _end)
            {
                return false;
            }

            int first = (int)(_block % BlocksPerSector);
            int count = (int)Math.Min(BlocksPerSector - first, _end - _block);
            Current = (_block / BlocksPerSector, first, count);
            _block += count;
            return true;
        }
    }

    /// <summary>
    /// A sector written by commands a flush in flight does not cover: its value before them, and theirs.
    /// </summary>
    private sealed class NotCovered
    {
        public SectorValue Durable { get; set; }

        public List<SectorValue> Since { get; } = [];
    }

    /// <summary>
    /// A flush in flight, or a write whose reply makes it durable (FUA, or any write with
    /// power-loss protection) over its byte range; and the sectors written by commands it does not cover.
    /// </summary>
    private sealed class FlushInFlight(uint id, long offset = 0, long length = long.MaxValue)
    {
        public uint Id => id;

        /// <summary>True when it makes <paramref name="sector"/> durable.</summary>
        public bool Covers(long sector) =>
            sector * SectorBytes < offset + length && (sector + 1) * SectorBytes > offset;

        public Dictionary<long, NotCovered> NotCovered { get; } = [];

        /// <summary>
        /// The sector's record of writes the flush does not cover, made with its value before the first.
        /// </summary>
        public NotCovered NotCoveredSince(long sector, SectorValue before)
        {
            if (!NotCovered.TryGetValue(sector, out NotCovered? notCovered))
            {
                notCovered = new NotCovered { Durable = before };
                NotCovered[sector] = notCovered;
            }

            return notCovered;
        }
    }

    /// <summary>
    /// A sector that more than one write in flight together changes, or that they left holding one
    /// of several values: every state it may be in, each a value and the set of the writes in flight
    /// that have landed in it. A write may land at any instant between its submission and its
    /// completion, whole within the sector; so a write in flight lands on any state that lacks it,
    /// and its completion keeps only the states it has landed in (a failed write, either).
    /// </summary>
    private sealed class Contest
    {
        public const int MaxWrites = 8;

        private readonly (uint Id, int First, int Count, uint Value)[] _writes = new (uint, int, int, uint)[MaxWrites];
        private readonly List<(SectorValue Value, uint Landed)> _states = [];
        private readonly List<SectorValue> _values = [];

        public Contest(SectorValue value)
        {
            _states.Add((value, 0));
            _values.Add(value);
        }

        /// <summary>True while a write to the sector is in flight.</summary>
        public bool InFlight { get; private set; }

        /// <summary>The distinct values the sector may hold, in any state.</summary>
        public List<SectorValue> Values => _values;

        public void Add(uint id, int first, int count, uint value)
        {
            int slot = Array.FindIndex(_writes, w => w.Id == 0);
            if (slot < 0)
            {
                throw new InvalidOperationException(
                    $"more than {MaxWrites} writes in flight to one sector: op {id} is one too many for the oracle"
                );
            }

            _writes[slot] = (id, first, count, value);
            InFlight = true;
            var landing = new Queue<int>();
            for (int i = _states.Count - 1; i >= 0; i--)
            {
                landing.Enqueue(i);
            }

            while (landing.TryDequeue(out int index))
            {
                (SectorValue state, uint landed) = _states[index];
                for (int other = 0; other < MaxWrites; other++)
                {
                    uint bit = 1u << other;
                    if (
                        _writes[other].Id != 0
                        && (landed & bit) == 0
                        && TryAdd(Land(state, _writes[other]), landed | bit)
                    )
                    {
                        landing.Enqueue(_states.Count - 1);
                    }
                }
            }
        }

        public void Complete(uint id, bool ok)
        {
            int slot = Array.FindIndex(_writes, w => w.Id == id);
            uint bit = 1u << slot;
            _writes[slot] = default;
            InFlight = Array.Exists(_writes, w => w.Id != 0);
            List<(SectorValue Value, uint Landed)> states = [.. _states.Where(s => !ok || (s.Landed & bit) != 0)];
            Keep(states.Select(s => (s.Value, s.Landed & ~bit)));
        }

        /// <summary>
        /// A read with no write in flight saw these blocks: keeps the states that hold them; true if any was dropped.
        /// </summary>
        public bool Observe(ReadOnlySpan<byte> bytes, long firstAddress, int first)
        {
            List<(SectorValue Value, uint Landed)> kept = [];
            foreach ((SectorValue value, uint landed) in _states)
            {
                if (Holds(bytes, firstAddress, first, value))
                {
                    kept.Add((value, landed));
                }
            }

            bool dropped = kept.Count < _states.Count;
            Keep(kept);
            return dropped;
        }

        private static SectorValue Land(SectorValue state, (uint Id, int First, int Count, uint Value) write)
        {
            for (int block = write.First; block < write.First + write.Count; block++)
            {
                state[block] = write.Value;
            }

            return state;
        }

        private void Keep(IEnumerable<(SectorValue Value, uint Landed)> states)
        {
            List<(SectorValue Value, uint Landed)> kept = [.. states];
            _states.Clear();
            _values.Clear();
            foreach ((SectorValue value, uint landed) in kept)
            {
                TryAdd(value, landed);
            }
        }

        private bool TryAdd(SectorValue value, uint landed)
        {
            if (_states.Contains((value, landed)))
            {
                return false;
            }

            _states.Add((value, landed));
            if (!_values.Contains(value))
            {
                _values.Add(value);
            }

            return true;
        }
    }

    /// <summary>
    /// A read in flight, and per sector the values writes in flight with it may have left (null: none).
    /// </summary>
    private sealed class InFlightRead(uint id, long offset, long length)
    {
        private Dictionary<long, List<SectorValue>>? _allowed;

        public uint Id => id;

        /// <summary>
        /// A write in flight with the read changed <paramref name="sector"/> from <paramref name="before"/> to
        /// <paramref name="after"/>.
        /// </summary>
        public void Allow(long sector, SectorValue before, SectorValue after)
        {
            if (sector * SectorBytes >= offset + length || (sector + 1) * SectorBytes <= offset)
            {
                return;
            }

            _allowed ??= [];
            if (!_allowed.TryGetValue(sector, out List<SectorValue>? values))
            {
                values = [];
                _allowed[sector] = values;
            }

            foreach (SectorValue value in (ReadOnlySpan<SectorValue>)[before, after])
            {
                if (!values.Contains(value))
                {
                    values.Add(value);
                }
            }
        }

        /// <summary>Every value <paramref name="contest"/> (if any) lets its sector hold may show.</summary>
        public void Allow(long sector, Contest? contest)
        {
            foreach (SectorValue value in contest?.Values ?? [])
            {
                Allow(sector, value, value);
            }
        }

        public List<SectorValue>? AllowedFor(long sector) =>
            _allowed is not null && _allowed.TryGetValue(sector, out List<SectorValue>? values) ? values : null;

        public bool Allows(long sector, int block, ReadOnlySpan<byte> bytes, long address)
        {
            if (AllowedFor(sector) is not { } values)
            {
                return false;
            }

            foreach (SectorValue value in values)
            {
                if (BlockStamp.Matches(bytes, address, value[block]))
                {
                    return true;
                }
            }

            return false;
        }
    }

    private readonly record struct Operation(
        HostOpcode Opcode,
        HostCommandOptions Flags,
        long Offset,
        long Length,
        OperationState State
    );

    /// <summary>Which operation's data each of a sector's eight blocks holds (0: zeros).</summary>
    [InlineArray(BlocksPerSector)]
    private struct SectorValue : IEquatable<SectorValue>
    {
        private uint _block;

        public static bool operator ==(SectorValue left, SectorValue right) => left.Equals(right);

        public static bool operator !=(SectorValue left, SectorValue right) => !left.Equals(right);

        public readonly bool Equals(SectorValue other) =>
            MemoryMarshal
                .CreateReadOnlySpan(in _block, BlocksPerSector)
                .SequenceEqual(MemoryMarshal.CreateReadOnlySpan(in other._block, BlocksPerSector));

        public override readonly bool Equals(object? obj) => obj is SectorValue other && Equals(other);

        public override readonly int GetHashCode()
        {
            var hash = default(HashCode);
            hash.AddBytes(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(in _block, BlocksPerSector)));
            return hash.ToHashCode();
        }
    }
}
