using Controller.Emulator.Sim;
using Controller.Firmware.Host;

namespace Controller.Tests.Sim;

/// <summary>
/// The oracle against NBD's rules for writes in flight together to one sector, checked
/// exhaustively on short schedules: every value a read or a cut may find, built block by block from
/// what was there and what each write wrote, is accepted exactly when some order of the writes
/// that the schedule allows (a write replied to before another was submitted lands first) leaves
/// it, each write whole within the 4 KiB sector.
/// </summary>
[Trait("Category", "Unit")]
public sealed class OracleOverlapTests
{
    private const int Sector = 4096;
    private const int Blocks = 8;

    /// <summary>
    /// Spans of a sector (first block, blocks) that writes take: whole, halves, a middle, one block, the tail.
    /// </summary>
    private static readonly (int First, int Count)[] Spans = [(0, 8), (0, 4), (4, 4), (2, 4), (3, 1), (6, 2)];

    /// <summary>Every order of submissions (s) and completions (c) of two writes, submitted in order.</summary>
    private static readonly string[] PairSchedules = ["s0 s1 c0 c1", "s0 s1 c1 c0", "s0 c0 s1 c1"];

    /// <summary>Orders of three writes, from all in flight together to a chain of replies.</summary>
    private static readonly string[] TripleSchedules =
    [
        "s0 s1 s2 c0 c1 c2",
        "s0 s1 s2 c2 c1 c0",
        "s0 s1 c0 s2 c1 c2",
        "s0 s1 c1 s2 c0 c2",
        "s0 c0 s1 s2 c2 c1",
        "s0 s1 c0 c1 s2 c2",
    ];

    /// <summary>Span triples where orders differ in what they leave.</summary>
    private static readonly (int First, int Count)[][] Triples =
    [
        [(0, 8), (0, 4), (2, 4)],
        [(0, 4), (4, 4), (2, 4)],
        [(0, 8), (0, 8), (0, 8)],
        [(3, 1), (0, 8), (2, 4)],
    ];

    public static TheoryData<string, int, int> PairCases()
    {
        var cases = new TheoryData<string, int, int>();
        foreach (string schedule in PairSchedules)
        {
            for (int a = 0; a < Spans.Length; a++)
            {
                for (int b = 0; b < Spans.Length; b++)
                {
                    cases.Add(schedule, a, b);
                }
            }
        }

        return cases;
    }

    public static TheoryData<int, int> SpanPairs()
    {
        var cases = new TheoryData<int, int>();
        for (int a = 0; a < Spans.Length; a++)
        {
            for (int b = 0; b < Spans.Length; b++)
            {
                cases.Add(a, b);
            }
        }

        return cases;
    }

    public static TheoryData<string, int> TripleCases()
    {
        var cases = new TheoryData<string, int>();
        foreach (string schedule in TripleSchedules)
        {
            for (int t = 0; t < Triples.Length; t++)
            {
                cases.Add(schedule, t);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(PairCases))]
    public void AReadAfterTwoWritesAcceptsExactlyTheOrdersNbdAllows(string schedule, int a, int b) =>
        ReadsAcceptExactlyTheAllowedOrders(schedule, [Spans[a], Spans[b]]);

    [Theory]
    [MemberData(nameof(TripleCases))]
    public void AReadAfterThreeWritesAcceptsExactlyTheOrdersNbdAllows(string schedule, int triple) =>
        ReadsAcceptExactlyTheAllowedOrders(schedule, Triples[triple]);

    /// <summary>
    /// Two writes in flight together when the power is cut: any of them may have landed, in either
    /// order, or neither; never a mix within the sector, and never what was there before the flush.
    /// </summary>
    [Theory]
    [MemberData(nameof(SpanPairs))]
    public void ACutWithTwoWritesInFlightAcceptsExactlyWhatTheyMayHaveLeft(int a, int b)
    {
        (int First, int Count)[] spans = [Spans[a], Spans[b]];
        var allowed = new HashSet<string>();
        foreach (int[] order in Orders(2))
        {
            // Any prefix of any order may have landed: none, one, or both.
            for (int landed = 0; landed <= order.Length; landed++)
            {
                allowed.Add(Key(Land(spans, order.Take(landed), ids: [3, 4])));
            }
        }

        foreach (uint[] candidate in Candidates(spans, ids: [3, 4]))
        {
            var oracle = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
            Write(oracle, 0, Sector);
            oracle.Complete(oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0), ok: true);
            uint first = oracle.Submit(
                HostOpcode.Write,
                HostCommandOptions.None,
                spans[0].First * 512L,
                spans[0].Count * 512L
            );
            uint second = oracle.Submit(
                HostOpcode.Write,
                HostCommandOptions.None,
                spans[1].First * 512L,
                spans[1].Count * 512L
            );
            Assert.Equal([3u, 4u], new[] { first, second });
            oracle.PowerCut([first, second], "test");

            Violation? violation = oracle.CheckAfterCut(0, SectorOf(candidate));

            Assert.True(
                allowed.Contains(Key(candidate)) == violation is null,
                $"{Key(candidate)}: {violation?.ToString() ?? "accepted"}; allowed {string.Join(" ", allowed)}"
            );
        }
    }

    /// <summary>
    /// Two whole-sector writes in flight together, both replied to, then a flush: either is durable, what was before
    /// them is not.
    /// </summary>
    [Theory]
    [InlineData(3u, null)]
    [InlineData(4u, null)]
    [InlineData(2u, ViolationClass.LostDurableWrite)]
    public void AFlushAfterTwoOverlappingWritesMakesEitherDurable(uint holds, ViolationClass? expected)
    {
        var oracle = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        Write(oracle, 0, Sector);
        uint first = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint second = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        oracle.Complete(second, ok: true);
        oracle.Complete(first, ok: true);
        oracle.Complete(oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0), ok: true);
        oracle.PowerCut([], "test");

        Assert.Equal(expected, oracle.CheckAfterCut(0, Stamped(0, Sector, holds))?.Class);
    }

    /// <summary>
    /// A FUA write replied to after a later write to its sector was submitted makes its own data
    /// durable, not the later write's, for itself and for a flush in flight with both: a read that
    /// shows the FUA write landed first, and the flush's reply, leave a cut free to find either
    /// write's data, but not what was there before them.
    /// </summary>
    [Theory]
    [InlineData(3u, null)]
    [InlineData(5u, null)]
    [InlineData(1u, ViolationClass.LostDurableWrite)]
    public void AFuaWriteCoversItselfNotTheWritesSubmittedAfterIt(uint holds, ViolationClass? expected)
    {
        var oracle = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        oracle.Complete(oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0), ok: true);
        uint fua = oracle.Submit(HostOpcode.Write, HostCommandOptions.ForceUnitAccess, 0, Sector);
        uint flush = oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
        uint later = Write(oracle, 0, Sector);
        Assert.Equal([3u, 4u, 5u], new[] { fua, flush, later });
        oracle.Complete(fua, ok: true);
        Assert.Null(oracle.CheckExact(0, Stamped(0, Sector, later)));
        oracle.Complete(flush, ok: true);
        oracle.PowerCut([], "test");

        Assert.Equal(expected, oracle.CheckAfterCut(0, Stamped(0, Sector, holds))?.Class);
    }

    /// <summary>Once a read has seen which of two writes landed last, later reads must see the same.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AReadSettlesWhichOfTwoWritesLandedLast(bool firstLandedLast)
    {
        var oracle = new Oracle(1, tracksDurability: false, everyCompletionDurable: false);
        uint first = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint second = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        oracle.Complete(first, ok: true);
        oracle.Complete(second, ok: true);
        (uint seen, uint other) = firstLandedLast ? (first, second) : (second, first);

        Assert.Null(oracle.CheckExact(0, Stamped(0, Sector, seen)));
        Assert.Null(oracle.CheckExact(0, Stamped(0, Sector, seen)));
        Violation? flipped = oracle.CheckExact(0, Stamped(0, Sector, other));
        Assert.NotNull(flipped);
        Assert.Equal(ViolationClass.LostDurableWrite, flipped.Class);
    }

    /// <summary>
    /// A mix of two whole-sector writes in flight together is a shorn write, whole-sector read or not.
    /// </summary>
    [Theory]
    [InlineData(0, Sector)]
    [InlineData(1024, 2048)]
    public void AMixOfTwoWritesInFlightTogetherIsAShornWrite(int offset, int length)
    {
        var oracle = new Oracle(1, tracksDurability: false, everyCompletionDurable: false);
        uint first = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint second = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        oracle.Complete(first, ok: true);
        oracle.Complete(second, ok: true);
        byte[] mixed = SectorOf([first, first, first, second, second, second, second, second]);

        Violation? violation = oracle.CheckExact(offset, mixed.AsSpan(offset, length));

        Assert.Equal(ViolationClass.ShornWrite, violation?.Class);
    }

    /// <summary>
    /// Two flushes in flight together: the later one covers a write replied to between their
    /// submissions, and the earlier one, completing after it, does not take that back.
    /// </summary>
    [Fact]
    public void AFlushCompletingAfterALaterOneDoesNotUndoWhatTheLaterCovered()
    {
        var oracle = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
        uint old = WrittenAndFlushed(oracle);
        uint write = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint earlier = SubmitFlush(oracle);
        oracle.Complete(write, ok: true);
        uint later = SubmitFlush(oracle);
        oracle.Complete(later, ok: true);
        Write(oracle, 0, 512);
        oracle.Complete(earlier, ok: true);
        oracle.PowerCut([], "test");

        Assert.Equal(ViolationClass.LostDurableWrite, oracle.CheckAfterCut(0, Stamped(0, Sector, old))?.Class);
        var again = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
        WrittenAndFlushed(again);
        uint kept = again.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint flush = SubmitFlush(again);
        again.Complete(kept, ok: true);
        again.Complete(flush, ok: true);
        again.PowerCut([], "test");

        Assert.Null(again.CheckAfterCut(0, Stamped(0, Sector, old)));
    }

    /// <summary>
    /// A failed flush covers nothing: a write it would have covered stays as durable as the flush
    /// in flight before it leaves it, which did not cover that write.
    /// </summary>
    [Fact]
    public void AFailedFlushCoversNothing()
    {
        var oracle = new Oracle(1, tracksDurability: true, everyCompletionDurable: false);
        uint old = WrittenAndFlushed(oracle);
        uint write = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, 0, Sector);
        uint earlier = SubmitFlush(oracle);
        oracle.Complete(write, ok: true);
        uint failed = SubmitFlush(oracle);
        oracle.Complete(failed, ok: false);
        oracle.Complete(earlier, ok: true);
        oracle.PowerCut([], "test");

        Assert.Null(oracle.CheckAfterCut(0, Stamped(0, Sector, old)));
    }

    /// <summary>Writes sector 0 whole and flushes it; returns the write's op.</summary>
    private static uint WrittenAndFlushed(Oracle oracle)
    {
        uint write = Write(oracle, 0, Sector);
        oracle.Complete(SubmitFlush(oracle), ok: true);
        return write;
    }

    private static uint SubmitFlush(Oracle oracle) => oracle.Submit(HostOpcode.Flush, HostCommandOptions.None, 0, 0);

    /// <summary>
    /// Plays <paramref name="schedule"/> of writes over a sector written whole by op 1, then checks
    /// every read value built from op 1's blocks and the writes' blocks: accepted exactly when an
    /// allowed order leaves it.
    /// </summary>
    private static void ReadsAcceptExactlyTheAllowedOrders(string schedule, (int First, int Count)[] spans)
    {
        string[] events = schedule.Split(' ');
        uint[] ids = [.. Enumerable.Range(2, spans.Length).Select(i => (uint)i)];
        var allowed = new HashSet<string>();
        foreach (int[] order in Orders(spans.Length).Where(o => Respects(o, events)))
        {
            allowed.Add(Key(Land(spans, order, ids)));
        }

        Oracle shared = Played(events, spans);
        foreach (uint[] candidate in Candidates(spans, ids))
        {
            bool isAllowed = allowed.Contains(Key(candidate));

            // An accepted read settles the sector on what it saw, so each one gets its own oracle.
            Violation? violation = (isAllowed ? Played(events, spans) : shared).CheckExact(0, SectorOf(candidate));

            Assert.True(
                isAllowed == violation is null,
                $"{schedule} {Key(candidate)}: {violation?.ToString() ?? "accepted"}; allowed {string.Join(" ", allowed)}"
            );
        }
    }

    private static Oracle Played(string[] events, (int First, int Count)[] spans)
    {
        var oracle = new Oracle(1, tracksDurability: false, everyCompletionDurable: false);
        Write(oracle, 0, Sector);
        var ids = new uint[spans.Length];
        foreach (string e in events)
        {
            int write = e[1] - '0';
            if (e[0] == 's')
            {
                ids[write] = oracle.Submit(
                    HostOpcode.Write,
                    HostCommandOptions.None,
                    spans[write].First * 512L,
                    spans[write].Count * 512L
                );
                Assert.Equal((uint)(write + 2), ids[write]);
            }
            else
            {
                oracle.Complete(ids[write], ok: true);
            }
        }

        return oracle;
    }

    /// <summary>
    /// True when <paramref name="order"/> lands every write replied to before another was submitted before that one.
    /// </summary>
    private static bool Respects(int[] order, string[] events)
    {
        for (int i = 0; i < order.Length; i++)
        {
            for (int j = i + 1; j < order.Length; j++)
            {
                // order[j] lands after order[i]: wrong if order[j] completed before order[i] was submitted.
                if (Array.IndexOf(events, $"c{order[j]}") < Array.IndexOf(events, $"s{order[i]}"))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static IEnumerable<int[]> Orders(int count)
    {
        if (count == 0)
        {
            yield return [];
            yield break;
        }

        foreach (int[] rest in Orders(count - 1))
        {
            for (int at = 0; at <= rest.Length; at++)
            {
                yield return [.. rest[..at], count - 1, .. rest[at..]];
            }
        }
    }

    /// <summary>Op 1's sector with the writes of <paramref name="order"/> landed on it, each whole.</summary>
    private static uint[] Land((int First, int Count)[] spans, IEnumerable<int> order, uint[] ids)
    {
        uint[] value = [.. Enumerable.Repeat(1u, Blocks)];
        foreach (int write in order)
        {
            Array.Fill(value, ids[write], spans[write].First, spans[write].Count);
        }

        return value;
    }

    /// <summary>Every sector whose blocks each hold op 1's data or that of a write covering the block.</summary>
    private static IEnumerable<uint[]> Candidates((int First, int Count)[] spans, uint[] ids)
    {
        List<uint>[] choices = [.. Enumerable.Range(0, Blocks).Select(block => new List<uint> { 1 })];
        for (int write = 0; write < spans.Length; write++)
        {
            for (int block = spans[write].First; block < spans[write].First + spans[write].Count; block++)
            {
                choices[block].Add(ids[write]);
            }
        }

        IEnumerable<uint[]> all =
        [
            [],
        ];
        foreach (List<uint> choice in choices)
        {
            all = all.SelectMany(prefix => choice.Select(value => (uint[])[.. prefix, value]));
        }

        return all;
    }

    private static string Key(uint[] value) => string.Join(',', value);

    private static byte[] SectorOf(uint[] value)
    {
        byte[] data = new byte[Sector];
        for (int block = 0; block < Blocks; block++)
        {
            BlockStamp.Fill(data.AsSpan(block * 512, 512), block, value[block]);
        }

        return data;
    }

    private static uint Write(Oracle oracle, long offset, long length)
    {
        uint id = oracle.Submit(HostOpcode.Write, HostCommandOptions.None, offset, length);
        oracle.Complete(id, ok: true);
        return id;
    }

    private static byte[] Stamped(long offset, int length, uint operation)
    {
        byte[] data = new byte[length];
        BlockStamp.FillRange(data, offset / BlockStamp.Bytes, operation);
        return data;
    }
}
