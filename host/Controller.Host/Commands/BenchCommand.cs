using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Host.Cli;
using Controller.Host.Nbd;
using Controller.Management;
using Controller.Reports;

namespace Controller.Host.Commands;

/// <summary><c>ssdhost bench</c>: reads, writes, trims and mixes at a queue depth, with latency percentiles.</summary>
internal static class BenchCommand
{
    private static readonly string[] s_patterns =
    [
        "read",
        "write",
        "trim",
        "randread",
        "randwrite",
        "randtrim",
        "readwrite",
        "randrw",
    ];

    public static readonly Verb Verb = new(
        "bench",
        "throughput and latency of reads, writes, trims and mixes",
        "Keeps IODEPTH requests of BS bytes in flight on one connection, as fio's nbd engine does, over the region [OFFSET, OFFSET+SIZE) (default: the whole device). On a terminal a progress bar shows live IOPS and MiB/s (plain lines when redirected); then IOPS, MiB/s, latency percentiles and a histogram, or one JSON object. Writes overwrite the device's data.",
        [
            new(
                "--rw",
                "PATTERN",
                "read, write, trim (sequential, wrapping at the end of the region), randread, randwrite, randtrim, or the mixes readwrite and randrw (default randread)",
                Choices: s_patterns
            ),
            new("--bs", "SIZE", "bytes per request (default 4k)"),
            new("--iodepth", "N", "requests in flight (default 1)"),
            new("--size", "SIZE", "bytes of the region (default: from --offset to the end)"),
            new("--offset", "SIZE", "where the region starts (default 0)"),
            new("--duration", "TIME", "how long: 10s, 500ms, 2m (default 10s)"),
            new("--count", "N", "this many requests instead of a duration"),
            new("--mix", "PERCENT", "readwrite and randrw: percent of reads (default 50)"),
            new("--seed", "N", "seed of the random offsets (default 1)"),
            new(
                "--report",
                "FILE.html",
                "also write one HTML page that opens offline: IOPS and MiB/s over time, the latency CDF, and the figures"
            ),
            HostOptions.Json,
        ],
        RunAsync
    )
    {
        Arguments = [HostOptions.Uri],
        Epilogue = """
            Examples:
              ssdhost bench nbd://127.0.0.1:10809/ssd --rw randwrite --bs 4k --iodepth 16 --duration 15s
              ssdhost bench nbd://127.0.0.1:10809/ssd --rw read --bs 1M --size 512M --count 512 --json
            """,
    };

    private static async Task<int> RunAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        string pattern = args.Value("--rw") ?? "randread";
        if (!s_patterns.Contains(pattern))
        {
            throw new UsageException($"--rw '{pattern}' is not one of {string.Join(", ", s_patterns)}");
        }

        long blockSize = args.Size("--bs", 4096);
        int depth = (int)args.Integer("--iodepth", 1, 1, 1024);
        long? count = args.Value("--count") is null ? null : args.Integer("--count", 0, 1, long.MaxValue);
        TimeSpan? duration = args.Duration("--duration");
        if (count is not null && duration is not null)
        {
            throw new UsageException("give --duration or --count, not both");
        }

        duration ??= count is null ? TimeSpan.FromSeconds(10) : null;
        int mix = (int)args.Integer("--mix", 50, 0, 100);
        ulong seed = (ulong)args.Integer("--seed", 1, 0, long.MaxValue);
        await using NbdClient client = await Connection.OpenAsync(args, cancellation).ConfigureAwait(false);
        long offset = args.Size("--offset", 0);
        long size = args.Size("--size", client.Size - Math.Min(offset, client.Size));
        Connection.CheckRange(args, client, offset, size);
        if (
            blockSize <= 0
            || blockSize > client.BlockSizes.Maximum
            || blockSize > size
            || blockSize % Math.Max(1, client.BlockSizes.Minimum) != 0
        )
        {
            throw new UsageException(
                $"--bs {blockSize} must be a multiple of {client.BlockSizes.Minimum}, at most {Math.Min(client.BlockSizes.Maximum, size)}"
            );
        }

        var job = new Job(client, pattern, blockSize, offset, size / blockSize, mix, count, cancellation);
        long started = Stopwatch.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        if (duration is { } limit)
        {
            stop.CancelAfter(limit);
        }

        Task[] workers =
        [
            .. Enumerable
                .Range(0, depth)
                .Select(i => job.WorkerAsync(new Prng(seed + (ulong)i * 0x9E3779B97F4A7C15), stop.Token)),
        ];
        Task all = Task.WhenAll(workers);
        var progress = new ProgressLine(console.Error, console.OutputIsTerminal, TimeSpan.FromSeconds(1));
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(console.OutputIsTerminal ? 250 : 1000, CancellationToken.None))
                .ConfigureAwait(false);
            if (!all.IsCompleted)
            {
                progress.Show(Progress(console.OutputIsTerminal, job, started, duration, count), now: true);
            }
        }

        await all.ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        progress.Keep();

        var latency = new LatencyHistogram();
        foreach (LatencyHistogram h in job.Histograms)
        {
            latency.Add(h);
        }

        (long lastOps, long lastBytes) = job.TakeInterval();
        double last = Math.Max(1e-6, seconds - job.LastProgressSeconds);
        job.Intervals.Add((seconds, lastOps / last, lastBytes / last / (1 << 20)));
        await Report(args, console, pattern, blockSize, depth, job, latency, seconds).ConfigureAwait(false);
        if (args.Single("--report") is { } path)
        {
            HtmlReport page = HtmlPage(args, pattern, blockSize, depth, job, latency, seconds);
            page.Write(path);
            await console.Error.WriteLineAsync($"report: {path} ({page.Charts} charts)").ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>
    /// Takes the interval since the last call into the job's intervals and says how it went: a bar on a terminal, a
    /// plain line elsewhere.
    /// </summary>
    private static string Progress(bool terminal, Job job, long started, TimeSpan? duration, long? count)
    {
        double elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        (long ops, long bytes) = job.TakeInterval();
        double interval = Math.Max(1e-6, elapsed - job.LastProgressSeconds);
        job.LastProgressSeconds = elapsed;
        job.Intervals.Add((elapsed, ops / interval, bytes / interval / (1 << 20)));
        double done = duration is { } d ? elapsed / d.TotalSeconds : (double)job.Completed / count!.Value;
        string rates = string.Create(
            CultureInfo.InvariantCulture,
            $"{ops / interval, 9:0} IOPS {bytes / interval / (1 << 20), 9:0.0} MiB/s"
        );
        int filled = (int)Math.Clamp(done * 30, 0, 30);
        return terminal
            ? string.Create(
                CultureInfo.InvariantCulture,
                $"[{new string('#', filled)}{new string('.', 30 - filled)}] {Math.Min(done, 1):P0} {rates}"
            )
            : string.Create(CultureInfo.InvariantCulture, $"bench: {elapsed, 6:0.0} s {rates}");
    }

    private static async Task Report(
        CommandArgs args,
        HostConsole console,
        string pattern,
        long blockSize,
        int depth,
        Job job,
        LatencyHistogram latency,
        double seconds
    )
    {
        double iops = job.Completed / seconds;
        double mib = job.Bytes / seconds / (1 << 20);
        double Us(double q) => latency.Percentile(q) / 1000.0;
        if (args.Has("--json"))
        {
            await console
                .Out.WriteLineAsync(
                    JsonSerializer.Serialize(
                        new
                        {
                            rw = pattern,
                            bs = blockSize,
                            iodepth = depth,
                            ops = job.Completed,
                            bytes = job.Bytes,
                            seconds = Math.Round(seconds, 3),
                            iops = Math.Round(iops, 1),
                            mibPerSecond = Math.Round(mib, 2),
                            latencyMicroseconds = new
                            {
                                min = job.MinNanoseconds / 1000.0,
                                mean = Math.Round(job.TotalNanoseconds / 1000.0 / Math.Max(1, job.Completed), 1),
                                p50 = Us(0.5),
                                p90 = Us(0.9),
                                p99 = Us(0.99),
                                p999 = Us(0.999),
                                max = job.MaxNanoseconds / 1000.0,
                            },
                            histogram = latency
                                .Buckets()
                                .Select(b => new { upToMicroseconds = b.UpperEdge / 1000.0, count = b.Count }),
                        },
                        ManagementJson.Options
                    )
                )
                .ConfigureAwait(false);
            return;
        }

        var text = new StringBuilder();
        CultureInfo c = CultureInfo.InvariantCulture;
        text.AppendLine(
            c,
            $"bench {pattern} bs={blockSize} iodepth={depth}: {job.Completed} ops in {seconds:0.00} s: {iops:0} IOPS, {mib:0.0} MiB/s"
        );
        text.AppendLine(
            c,
            $"latency us: min {job.MinNanoseconds / 1000.0:0.0}  mean {job.TotalNanoseconds / 1000.0 / Math.Max(1, job.Completed):0.0}  p50 {Us(0.5):0.0}  p90 {Us(0.9):0.0}  p99 {Us(0.99):0.0}  p99.9 {Us(0.999):0.0}  max {job.MaxNanoseconds / 1000.0:0.0}"
        );
        text.AppendLine("histogram (up to us: count):");
        foreach (string line in HistogramLines(latency.Buckets(), 40))
        {
            text.AppendLine(line);
        }

        await console.Out.WriteAsync(text.ToString()).ConfigureAwait(false);
    }

    /// <summary>The run as one HTML page: IOPS and MiB/s over wall time, the latency CDF, the figures.</summary>
    private static HtmlReport HtmlPage(
        CommandArgs args,
        string pattern,
        long blockSize,
        int depth,
        Job job,
        LatencyHistogram latency,
        double seconds
    )
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        var page = new HtmlReport($"ssdhost bench: {pattern}, {blockSize} B at depth {depth}");
        page.Paragraph($"ssdhost bench {string.Join(' ', args.Positionals)} {args.Echo("--report")}".Trim());
        page.Chart(
            Charts.Lines(
                "IOPS over time",
                "wall time (s)",
                "IOPS",
                [new Series("IOPS", [.. job.Intervals.Select(i => (i.Seconds, i.Iops))])]
            ),
            "Commands completed per second, per progress interval."
        );
        page.Chart(
            Charts.Lines(
                "Throughput over time",
                "wall time (s)",
                "MiB/s",
                [new Series("MiB/s", [.. job.Intervals.Select(i => (i.Seconds, i.MibPerSecond))])]
            ),
            "Bytes moved per second, per progress interval."
        );
        page.Chart(
            Charts.Cdf(
                "Latency CDF",
                "latency (µs, wall)",
                [new Series(pattern, Charts.CumulativeOf(latency.Buckets(), 1e-3))]
            ),
            "The fraction of commands that completed within each latency."
        );
        page.Figures(
            "The run's figures",
            [
                ("pattern", pattern),
                ("block size (bytes)", blockSize.ToString(c)),
                ("queue depth", depth.ToString(c)),
                ("commands", job.Completed.ToString(c)),
                ("seconds", seconds.ToString("0.000", c)),
                ("IOPS", (job.Completed / seconds).ToString("0", c)),
                ("MiB/s", (job.Bytes / seconds / (1 << 20)).ToString("0.0", c)),
                (
                    "latency p50 / p99 / p99.9 (µs)",
                    string.Create(
                        c,
                        $"{latency.Percentile(0.5) / 1000.0:0.0} / {latency.Percentile(0.99) / 1000.0:0.0} / {latency.Percentile(0.999) / 1000.0:0.0}"
                    )
                ),
            ]
        );
        return page;
    }

    /// <summary>
    /// The histogram in power-of-two buckets, for a display that fits a screen: one line a bucket,
    /// its bar scaled so that the fullest of these buckets (not of the fine ones they merge) is
    /// <paramref name="width"/> characters and every other bar is in proportion.
    /// </summary>
    internal static IReadOnlyList<string> HistogramLines(IEnumerable<(long UpperEdge, long Count)> buckets, int width)
    {
        var coarse = buckets
            .GroupBy(b => 64 - long.LeadingZeroCount(b.UpperEdge))
            .Select(g => (UpperEdge: (1L << (int)g.Key) - 1, Count: g.Sum(b => b.Count)))
            .ToList();
        long most = coarse.Select(b => b.Count).DefaultIfEmpty(1).Max();
        return
        [
            .. coarse.Select(b =>
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"  {b.UpperEdge / 1000.0, 10:0.0} {b.Count, 10} {new string('#', (int)Math.Ceiling((double)width * b.Count / Math.Max(1, most)))}"
                )
            ),
        ];
    }

    /// <summary>The work of one run: the region, the pattern, the counts, one histogram per worker.</summary>
    private sealed class Job(
        NbdClient client,
        string pattern,
        long blockSize,
        long offset,
        long blocks,
        int mix,
        long? count,
        CancellationToken cancellation
    )
    {
        private long _nextSequential;
        private long _issued;
        private long _intervalOps;
        private long _intervalBytes;
        private long _completed;
        private long _bytes;
        private long _total;
        private long _min = long.MaxValue;
        private long _max;

        public List<LatencyHistogram> Histograms { get; } = [];

        /// <summary>Each progress interval: when it ended (wall seconds from the start), its IOPS and MiB/s.</summary>
        public List<(double Seconds, double Iops, double MibPerSecond)> Intervals { get; } = [];

        public long Completed => Interlocked.Read(ref _completed);

        public long Bytes => Interlocked.Read(ref _bytes);

        public long TotalNanoseconds => Interlocked.Read(ref _total);

        public long MinNanoseconds => _min == long.MaxValue ? 0 : _min;

        public long MaxNanoseconds => _max;

        public double LastProgressSeconds { get; set; }

        public (long Ops, long Bytes) TakeInterval() =>
            (Interlocked.Exchange(ref _intervalOps, 0), Interlocked.Exchange(ref _intervalBytes, 0));

        public async Task WorkerAsync(Prng prng, CancellationToken stop)
        {
            var histogram = new LatencyHistogram();
            lock (Histograms)
            {
                Histograms.Add(histogram);
            }

            byte[] buffer = new byte[blockSize];
            for (int i = 0; i + 8 <= buffer.Length; i += 8)
            {
                BitConverter.TryWriteBytes(buffer.AsSpan(i), prng.NextUInt64());
            }

            bool random = pattern.StartsWith("rand", StringComparison.Ordinal);
            while (!stop.IsCancellationRequested && (count is null || Interlocked.Increment(ref _issued) <= count))
            {
                long block = random
                    ? (long)(prng.NextUInt64() % (ulong)blocks)
                    : (Interlocked.Increment(ref _nextSequential) - 1) % blocks;
                long at = offset + (block * blockSize);
                char op = pattern switch
                {
                    "read" or "randread" => 'r',
                    "write" or "randwrite" => 'w',
                    "trim" or "randtrim" => 't',
                    _ => (int)(prng.NextUInt64() % 100) < mix ? 'r' : 'w',
                };
                long started = Stopwatch.GetTimestamp();
                try
                {
                    await (
                        op switch
                        {
                            'r' => client.ReadAsync(at, buffer, cancellation),
                            'w' => client.WriteAsync(at, buffer, fua: false, cancellation),
                            _ => client.TrimAsync(at, blockSize, fua: false, cancellation),
                        }
                    ).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                    when (stop.IsCancellationRequested && !cancellation.IsCancellationRequested)
                {
                    return;
                }

                long nanoseconds = Stopwatch.GetElapsedTime(started).Ticks * 100;
                histogram.Record(nanoseconds);
                Interlocked.Increment(ref _completed);
                Interlocked.Increment(ref _intervalOps);
                Interlocked.Add(ref _bytes, blockSize);
                Interlocked.Add(ref _intervalBytes, blockSize);
                Interlocked.Add(ref _total, nanoseconds);
                InterlockedMin(ref _min, nanoseconds);
                InterlockedMax(ref _max, nanoseconds);
            }
        }

        private static void InterlockedMin(ref long target, long value)
        {
            long seen;
            while (
                value < (seen = Volatile.Read(ref target))
                && Interlocked.CompareExchange(ref target, value, seen) != seen
            ) { }
        }

        private static void InterlockedMax(ref long target, long value)
        {
            long seen;
            while (
                value > (seen = Volatile.Read(ref target))
                && Interlocked.CompareExchange(ref target, value, seen) != seen
            ) { }
        }
    }
}
