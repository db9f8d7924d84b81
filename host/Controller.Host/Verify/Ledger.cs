using System.Globalization;
using Controller.Cli;
using Controller.Host.Cli;

namespace Controller.Host.Verify;

/// <summary>One operation of a verify run as the ledger recorded it.</summary>
internal sealed class LedgerOp(
    long generation,
    char kind,
    long block,
    long count,
    int session,
    bool fua = false,
    bool noHole = false
)
{
    /// <summary>
    /// The verify run (connection) that sent it: a flush makes durable only what its own run sent before it.
    /// </summary>
    public int Session { get; } = session;

    /// <summary>The operation's number; what its stamps carry.</summary>
    public long Generation { get; } = generation;

    /// <summary>W write, T trim, Z write zeroes, S flush.</summary>
    public char Kind { get; } = kind;

    /// <summary>Sent with FUA: durable when acknowledged (for a write, a trim or a zeroing).</summary>
    public bool Fua { get; } = fua;

    /// <summary>A write zeroes sent with NO_HOLE.</summary>
    public bool NoHole { get; } = noHole;

    /// <summary>How the ledger writes the kind: the letter, then <c>f</c> for FUA and <c>n</c> for NO_HOLE.</summary>
    public string Code => $"{Kind}{(Fua ? "f" : "")}{(NoHole ? "n" : "")}";

    /// <summary>First block.</summary>
    public long Block { get; } = block;

    /// <summary>Blocks covered.</summary>
    public long Count { get; } = count;

    /// <summary>The server acknowledged it.</summary>
    public bool Acked { get; set; }

    /// <summary>The server answered with an error: it may or may not have happened.</summary>
    public bool Failed { get; set; }

    /// <summary>True for trims and zeroes: the blocks read as zeros after it.</summary>
    public bool Zeroes => Kind is 'T' or 'Z';
}

/// <summary>
/// The ledger of a verify run, a text file: a header, then a line when each operation is issued
/// (<c>I GEN KIND BLOCK COUNT</c>) and when it is acknowledged (<c>A GEN</c>) or fails
/// (<c>E GEN ERROR</c>); each run starts with <c>B GEN</c>. KIND is <c>W</c> (write), <c>T</c>
/// (trim), <c>Z</c> (write zeroes) or <c>S</c> (flush), followed by <c>f</c> when it was sent with
/// FUA and <c>n</c> with NO_HOLE (<c>Zfn</c>); layout 1 wrote a FUA write as <c>U</c>, which is
/// still read. Each line reaches the operating system before the next operation is sent, so a
/// killed or power-cut run leaves a ledger that says what was in flight.
/// </summary>
internal sealed class Ledger : IDisposable
{
    private const string Magic = "ssdhost-verify 2";
    private const string MagicBefore = "ssdhost-verify 1";
    private readonly StreamWriter _writer;

    private Ledger(StreamWriter writer, ulong seed, long blocks, long deviceBytes)
    {
        _writer = writer;
        Seed = seed;
        Blocks = blocks;
        DeviceBytes = deviceBytes;
    }

    /// <summary>Bytes per verify block (one FTL sector).</summary>
    public const int BlockBytes = 4096;

    /// <summary>The run's seed, in every stamp.</summary>
    public ulong Seed { get; }

    /// <summary>Blocks of the region verified, from offset 0.</summary>
    public long Blocks { get; }

    /// <summary>The device's size when the ledger was made.</summary>
    public long DeviceBytes { get; }

    /// <summary>Starts a new ledger at <paramref name="path"/>.</summary>
    public static Ledger Create(string path, ulong seed, long blocks, long deviceBytes)
    {
        var writer = new StreamWriter(new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read))
        {
            AutoFlush = true,
        };
        writer.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"{Magic} seed={seed} block={BlockBytes} blocks={blocks} device={deviceBytes}"
            )
        );
        writer.WriteLine("B 1");
        return new Ledger(writer, seed, blocks, deviceBytes);
    }

    /// <summary>
    /// Appends to the ledger at <paramref name="path"/>, whose contents are <paramref name="contents"/>.
    /// </summary>
    public static Ledger Append(string path, LedgerContents contents)
    {
        ArgumentNullException.ThrowIfNull(contents);
        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            AutoFlush = true,
        };

        // A new run: whatever the last one left unflushed may have been lost since (a power cut
        // between the runs), and this run's flushes do not make it durable.
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"B {contents.NextGeneration}"));
        return new Ledger(writer, contents.Seed, contents.Blocks, contents.DeviceBytes);
    }

    /// <summary>Records that operation <paramref name="op"/> is about to be sent.</summary>
    public void Issued(LedgerOp op) =>
        _writer.WriteLine(
            string.Create(CultureInfo.InvariantCulture, $"I {op.Generation} {op.Code} {op.Block} {op.Count}")
        );

    /// <summary>Records that the server acknowledged <paramref name="generation"/>.</summary>
    public void Acked(long generation) =>
        _writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"A {generation}"));

    /// <summary>Records that the server failed <paramref name="generation"/>.</summary>
    public void Failed(long generation, string error) =>
        _writer.WriteLine(
            string.Create(CultureInfo.InvariantCulture, $"E {generation} {error.ReplaceLineEndings(" ")}")
        );

    public void Dispose() => _writer.Dispose();

    /// <summary>
    /// Reads the ledger at <paramref name="path"/>; a <see cref="UsageException"/> names the line that is wrong.
    /// </summary>
    public static LedgerContents Read(string path, string verb)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read the ledger '{path}': {e.Message}");
        }

        if (
            lines.Length == 0
            || !(
                lines[0].StartsWith(Magic, StringComparison.Ordinal)
                || lines[0].StartsWith(MagicBefore, StringComparison.Ordinal)
            )
        )
        {
            throw new UsageException($"'{path}' is not a verify ledger (its first line should start '{Magic}')");
        }

        var header = lines[0]
            [Magic.Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('='))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
        if (
            !header.TryGetValue("seed", out string? seedText)
            || !ulong.TryParse(seedText, CultureInfo.InvariantCulture, out ulong seed)
            || !header.TryGetValue("blocks", out string? blocksText)
            || !long.TryParse(blocksText, CultureInfo.InvariantCulture, out long blocks)
            || !header.TryGetValue("device", out string? deviceText)
            || !long.TryParse(deviceText, CultureInfo.InvariantCulture, out long device)
            || header.GetValueOrDefault("block") != BlockBytes.ToString(CultureInfo.InvariantCulture)
        )
        {
            throw new UsageException($"the header of the ledger '{path}' is damaged: '{lines[0]}'");
        }

        var ops = new Dictionary<long, LedgerOp>();
        var order = new List<LedgerOp>();
        int session = 0;
        for (int i = 1; i < lines.Length; i++)
        {
            string[] f = lines[i].Split(' ', 3);
            bool ok = f.Length >= 2 && long.TryParse(f[1], CultureInfo.InvariantCulture, out long generation);
            generation = ok ? long.Parse(f[1], CultureInfo.InvariantCulture) : 0;
            if (ok && f[0] == "I" && f.Length == 3)
            {
                string[] rest = f[2].Split(' ');
                ok =
                    rest.Length == 3
                    && ParseKind(rest[0]) is { } kind
                    && long.TryParse(rest[1], CultureInfo.InvariantCulture, out long block)
                    && long.TryParse(rest[2], CultureInfo.InvariantCulture, out long count)
                    && block >= 0
                    && count >= 0
                    && block + count <= blocks
                    && ops.TryAdd(
                        generation,
                        new LedgerOp(generation, kind.Kind, block, count, session, kind.Fua, kind.NoHole)
                    );
                if (ok)
                {
                    order.Add(ops[generation]);
                }
            }
            else if (ok && f[0] == "B")
            {
                session++;
            }
            else if (ok && f[0] is "A" or "E" && ops.TryGetValue(generation, out LedgerOp? op))
            {
                op.Acked |= f[0] == "A";
                op.Failed |= f[0] == "E";
            }
            else
            {
                ok = false;
            }

            // A last line cut short by a kill says nothing: what it would have said is not known.
            if (!ok && i < lines.Length - 1)
            {
                throw new UsageException($"line {i + 1} of the ledger '{path}' is damaged: '{lines[i]}'");
            }
        }

        return new LedgerContents(seed, blocks, device, order);
    }

    /// <summary>
    /// A KIND field: <c>W</c>, <c>T</c>, <c>Z</c> or <c>S</c>, then <c>f</c> (FUA) and <c>n</c> (NO_HOLE, zeroes only);
    /// layout 1's <c>U</c> is <c>Wf</c>.
    /// </summary>
    private static (char Kind, bool Fua, bool NoHole)? ParseKind(string text) =>
        text switch
        {
            "U" => ('W', true, false),
            [char kind, .. string flags]
                when "WTZS".Contains(kind, StringComparison.Ordinal)
                    && flags is "" or "f" or "n" or "fn"
                    && (kind == 'Z' || !flags.Contains('n', StringComparison.Ordinal)) => (
                kind,
                flags.Contains('f', StringComparison.Ordinal),
                flags.Contains('n', StringComparison.Ordinal)
            ),
            _ => null,
        };
}

/// <summary>What a ledger holds: the run's seed and region, and its operations in the order they were issued.</summary>
internal sealed record LedgerContents(ulong Seed, long Blocks, long DeviceBytes, List<LedgerOp> Ops)
{
    /// <summary>The next generation to use.</summary>
    public long NextGeneration => Ops.Count == 0 ? 1 : Ops[^1].Generation + 1;
}
