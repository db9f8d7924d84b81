using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Host.Cli;
using Controller.Host.Nbd;
using Controller.Host.Verify;
using Controller.Management;

namespace Controller.Host.Commands;

/// <summary><c>ssdhost verify</c>: a checked workload with a ledger, and the check against it.</summary>
internal static class VerifyCommand
{
    public static readonly Verb Verb = new(
        "verify",
        "a checked workload with a ledger; --check finds lost writes",
        """
        Runs a seeded mix of writes, trims, zeroes (with and without NO_HOLE) and flushes, each sometimes with FUA, one at a time, on the first SIZE bytes of the device (default: all of it). Every 512-byte unit written carries its offset, the operation's number, the run's seed and a checksum. The ledger FILE records each operation when it is sent and when it is acknowledged, so it knows what was durable (done before a completed flush, or a completed FUA write, trim or zeroing) and what was in flight. A new ledger starts by zeroing the region and flushing; an existing one is continued.

        --check reads the region back and judges every 4 KiB sector against the ledger by the classes of the no-lost-writes invariant: bit-corruption, flying-write, shorn-write, lost-durable-write, resurrected-trim, dead-device. It prints the count per class with examples, and exits 1 if there is any. It works against any NBD server.
        """,
        [
            new("--ledger", "FILE", "the ledger: created, continued, or (with --check) judged against"),
            new("--ops", "N", "operations to run"),
            new("--duration", "TIME", "how long to run: 10s, 2m (instead of --ops)"),
            new("--seed", "N", "seed of the workload and the stamps (default 1)"),
            new("--size", "SIZE", "bytes of the device used, from offset 0 (default: all of it)"),
            new("--check", null, "judge the device against the ledger instead of running"),
            new("--examples", "N", "with --check, examples printed per class (default 5)"),
            HostOptions.Json,
        ],
        RunAsync
    )
    {
        Arguments = [HostOptions.Uri],
        Epilogue = """
            Examples:
              ssdhost verify nbd+unix:///ssd?socket=/tmp/ssd.sock --ledger run.ledger --duration 30s
              ssdhost power-cut --control unix:/tmp/ssd.ctl
              ssdhost verify nbd+unix:///ssd?socket=/tmp/ssd.sock --ledger run.ledger --check
            """,
    };

    private static async Task<int> RunAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        string ledgerPath = args.Value("--ledger") ?? throw new UsageException("--ledger FILE is required");
        if (args.Has("--check"))
        {
            if (args.Value("--ops") is not null || args.Value("--duration") is not null)
            {
                throw new UsageException("--check reads and judges; it takes no --ops or --duration");
            }

            return await CheckAsync(args, console, Ledger.Read(ledgerPath, "verify"), cancellation)
                .ConfigureAwait(false);
        }

        long? ops = args.Value("--ops") is null ? null : args.Integer("--ops", 0, 1, long.MaxValue);
        TimeSpan? duration = args.Duration("--duration");
        if ((ops is null) == (duration is null))
        {
            throw new UsageException("give one of --ops N or --duration TIME (or --check)");
        }

        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        LedgerContents? existing = File.Exists(ledgerPath) ? Ledger.Read(ledgerPath, "verify") : null;
        ulong seed = (ulong)args.Integer("--seed", existing is null ? 1 : (long)existing.Seed, 0, long.MaxValue);
        long size = args.Size("--size", existing is null ? client.Size : existing.Blocks * Ledger.BlockBytes);
        if (size <= 0 || size % Ledger.BlockBytes != 0)
        {
            throw new UsageException($"--size {size} must be a positive multiple of {Ledger.BlockBytes} bytes");
        }

        Connection.CheckRange(args, client, 0, size);
        if (existing is not null && (existing.Seed != seed || existing.Blocks * Ledger.BlockBytes != size))
        {
            throw new UsageException(
                $"the ledger '{ledgerPath}' is of seed {existing.Seed} over {existing.Blocks * Ledger.BlockBytes} bytes; continue it with the same, or start another ledger"
            );
        }

        using Ledger ledger = existing is null
            ? Ledger.Create(ledgerPath, seed, size / Ledger.BlockBytes, client.Size)
            : Ledger.Append(ledgerPath, existing);
        var run = new VerifyRun(client, ledger, existing?.NextGeneration ?? 1, cancellation);
        if (existing is null)
        {
            await run.BaselineAsync().ConfigureAwait(false);
        }

        long started = Stopwatch.GetTimestamp();
        var progress = new ProgressLine(console.Error, console.OutputIsTerminal, TimeSpan.FromSeconds(5));
        var prng = new Prng(seed ^ ((ulong)run.Generation * 0x9E3779B97F4A7C15));
        while (ops is { } n ? run.Operations < n : Stopwatch.GetElapsedTime(started) < duration)
        {
            await run.StepAsync(prng).ConfigureAwait(false);
            if (progress.Due)
            {
                progress.Show(run.Describe(Stopwatch.GetElapsedTime(started)));
            }
        }

        progress.Keep();

        await console
            .Out.WriteLineAsync(
                args.Has("--json")
                    ? JsonSerializer.Serialize(
                        new
                        {
                            ledger = ledgerPath,
                            seed,
                            bytes = size,
                            run.Operations,
                            run.Writes,
                            run.Trims,
                            run.Flushes,
                            run.Failures,
                            lastGeneration = run.Generation - 1,
                        },
                        ManagementJson.Options
                    )
                    : $"verify: {run.Describe(Stopwatch.GetElapsedTime(started))}; ledger {ledgerPath} (seed {seed}, {size} bytes); check it with --check"
            )
            .ConfigureAwait(false);
        return run.Failures > 0 ? 1 : 0;
    }

    private static async Task<int> CheckAsync(
        CommandArgs args,
        HostConsole console,
        LedgerContents contents,
        CancellationToken cancellation
    )
    {
        int examples = (int)args.Integer("--examples", 5, 0, 1000);
        var check = new VerifyCheck(contents);
        var counts = VerifyCheck.Classes.ToDictionary(c => c, _ => 0L);
        var found = new List<Violation>();
        long started = Stopwatch.GetTimestamp();
        NbdClient client;
        try
        {
            client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        }
        catch (UsageException e)
            when (e.Message.Contains("no NBD server", StringComparison.Ordinal)
                || e.Message.Contains("closed", StringComparison.Ordinal)
            )
        {
            // The device did not come back: that is the dead-device class, not a usage error.
            await console.Out.WriteLineAsync($"verify --check: dead-device: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using (client.ConfigureAwait(false))
        {
            if (client.Size < contents.Blocks * Ledger.BlockBytes)
            {
                throw new UsageException(
                    $"the device has {client.Size} bytes; the ledger covers {contents.Blocks * Ledger.BlockBytes}"
                );
            }

            const int Chunk = 1 << 20;
            long region = contents.Blocks * Ledger.BlockBytes;
            var reads = new Queue<(Task Read, byte[] Buffer, long Offset, int Size)>();
            long next = 0;
            while (next < region || reads.Count > 0)
            {
                while (next < region && reads.Count < 4)
                {
                    int size = (int)Math.Min(Chunk, region - next);
                    byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
                    reads.Enqueue((client.ReadAsync(next, buffer.AsMemory(0, size), cancellation), buffer, next, size));
                    next += size;
                }

                (Task read, byte[] data, long offset, int got) = reads.Dequeue();
                try
                {
                    bool ok = await TryAsync(read).ConfigureAwait(false);
                    for (int i = 0; i < got / Ledger.BlockBytes; i++)
                    {
                        long block = (offset / Ledger.BlockBytes) + i;
                        Violation? violation =
                            ok
                            || await TryAsync(
                                    client.ReadAsync(
                                        block * Ledger.BlockBytes,
                                        data.AsMemory(i * Ledger.BlockBytes, Ledger.BlockBytes),
                                        cancellation
                                    )
                                )
                                .ConfigureAwait(false)
                                ? check.Judge(block, data.AsSpan(i * Ledger.BlockBytes, Ledger.BlockBytes))
                                : new Violation(
                                    "dead-device",
                                    block * Ledger.BlockBytes,
                                    "a read error",
                                    "the sector's data",
                                    ""
                                );
                        if (violation is not null)
                        {
                            counts[violation.Class]++;
                            if (found.Count(v => v.Class == violation.Class) < examples)
                            {
                                found.Add(violation);
                            }
                        }
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(data);
                }
            }
        }

        long total = counts.Values.Sum();
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        new
                        {
                            sectors = contents.Blocks,
                            sectorsTouched = check.BlocksTouched,
                            operations = contents.Ops.Count,
                            violations = total,
                            byClass = counts,
                            examples = found,
                            seconds = Math.Round(seconds, 3),
                        },
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
        }
        else
        {
            await console
                .Out.WriteLineAsync(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"verify --check: {contents.Blocks} sectors of 4 KiB read in {seconds:0.00} s ({check.BlocksTouched} touched by {contents.Ops.Count} operations); {total} violate the invariant"
                    )
                )
                .ConfigureAwait(false);
            foreach (string name in VerifyCheck.Classes)
            {
                await console.Out.WriteLineAsync($"  {name, -20} {counts[name]}").ConfigureAwait(false);
            }

            foreach (Violation v in found)
            {
                await console
                    .Out.WriteLineAsync(
                        string.Create(
                            CultureInfo.InvariantCulture,
                            $"  {v.Class} at byte {v.Offset}: found {v.Found}; allowed {v.Expected}; history {v.History}"
                        )
                    )
                    .ConfigureAwait(false);
            }
        }

        return total == 0 ? 0 : 1;
    }

    private static async Task<bool> TryAsync(Task read)
    {
        try
        {
            await read.ConfigureAwait(false);
            return true;
        }
        catch (NbdCommandException)
        {
            return false;
        }
    }

    /// <summary>
    /// The operations of a run, one at a time, each in the ledger before it is sent and after it is answered.
    /// </summary>
    private sealed class VerifyRun(NbdClient client, Ledger ledger, long generation, CancellationToken cancellation)
    {
        private readonly byte[] _buffer = new byte[16 * Ledger.BlockBytes];
        private readonly List<(long Block, long Count)> _recentHoles = [];

        public long Generation { get; private set; } = generation;

        public long Operations { get; private set; }

        public long Writes { get; private set; }

        public long Trims { get; private set; }

        public long Flushes { get; private set; }

        public long Failures { get; private set; }

        /// <summary>The region zeroed and flushed: the known state every sector starts from.</summary>
        public async Task BaselineAsync()
        {
            await DoAsync('Z', 0, ledger.Blocks, fua: false, noHole: false).ConfigureAwait(false);
            await DoAsync('S', 0, 0, fua: false, noHole: false).ConfigureAwait(false);
            Operations = 0;
            Flushes = 0;
        }

        /// <summary>
        /// One operation drawn from <paramref name="prng"/>: every command and flag the protocol
        /// has for changing the device (writes, trims and zeroes with and without FUA, zeroes with
        /// and without NO_HOLE, flushes with and without FUA).
        /// </summary>
        public async Task StepAsync(Prng prng)
        {
            ulong draw = prng.NextUInt64() % 100;
            if (draw < 10)
            {
                Flushes++;
                await DoAsync('S', 0, 0, fua: prng.NextUInt64() % 8 == 0, noHole: false).ConfigureAwait(false);
                return;
            }

            if (draw < 30)
            {
                // A hole, often inside what was just written (a partial punch of a cached large page).
                (long block, long count) = Range(prng, 16);
                bool zero = draw < 15;
                bool fua = prng.NextUInt64() % 4 == 0;
                Trims++;
                await DoAsync(zero ? 'Z' : 'T', block, count, fua, noHole: zero && (prng.NextUInt64() & 1) == 0)
                    .ConfigureAwait(false);
                _recentHoles.Add((block, count));
                if (_recentHoles.Count > 16)
                {
                    _recentHoles.RemoveAt(0);
                }

                return;
            }

            // A write: half of them into a recent hole (the write after a punch that must not be lost).
            (long first, long blocks) = draw < 55 && _recentHoles.Count > 0 ? InHole(prng) : Range(prng, 8);
            bool fuaWrite = prng.NextUInt64() % 10 == 0;
            long gen = Generation;
            for (long i = 0; i < blocks; i++)
            {
                VerifyStamp.Fill(
                    _buffer.AsSpan((int)(i * Ledger.BlockBytes), Ledger.BlockBytes),
                    (first + i) * Ledger.BlockBytes,
                    gen,
                    ledger.Seed
                );
            }

            Writes++;
            await DoAsync('W', first, blocks, fuaWrite, noHole: false).ConfigureAwait(false);
        }

        public string Describe(TimeSpan elapsed) =>
            string.Create(
                CultureInfo.InvariantCulture,
                $"{Operations} operations in {elapsed.TotalSeconds:0.0} s ({Writes} writes, {Trims} trims and zeroes, {Flushes} flushes, {Failures} failed)"
            );

        private (long Block, long Count) Range(Prng prng, int most)
        {
            long count = 1 + (long)(prng.NextUInt64() % (ulong)most);
            long block = (long)(prng.NextUInt64() % (ulong)ledger.Blocks);
            return (block, Math.Min(count, ledger.Blocks - block));
        }

        private (long Block, long Count) InHole(Prng prng)
        {
            (long block, long count) = _recentHoles[(int)(prng.NextUInt64() % (ulong)_recentHoles.Count)];
            long at = block + (long)(prng.NextUInt64() % (ulong)count);
            return (at, Math.Min(1 + (long)(prng.NextUInt64() % 2), ledger.Blocks - at));
        }

        private async Task DoAsync(char kind, long block, long count, bool fua, bool noHole)
        {
            var op = new LedgerOp(Generation++, kind, block, count, session: 0, fua, noHole);
            Operations++;
            ledger.Issued(op);
            long offset = block * Ledger.BlockBytes;
            long length = count * Ledger.BlockBytes;
            try
            {
                await (
                    kind switch
                    {
                        'W' => client.WriteAsync(offset, _buffer.AsMemory(0, (int)length), fua, cancellation),
                        'T' => client.TrimAsync(offset, length, fua, cancellation),
                        'Z' => client.ZeroAsync(offset, length, noHole, fua, cancellation),
                        _ => client.FlushAsync(fua, cancellation),
                    }
                ).ConfigureAwait(false);
                ledger.Acked(op.Generation);
            }
            catch (NbdCommandException e)
            {
                Failures++;
                ledger.Failed(op.Generation, e.Message);
            }
        }
    }
}
