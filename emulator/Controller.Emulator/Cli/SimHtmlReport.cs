using System.Globalization;
using Controller.Emulator.Sim;
using Controller.Reports;

namespace Controller.Emulator.Cli;

/// <summary>
/// <c>sim --report FILE.html</c>: one page that opens offline. For one seed: write amplification
/// and the host and GC write rates over virtual time, the latency CDF of each operation, the
/// erase-count histogram of the blocks, the cache hit ratio and the DRAM held over time, power
/// cuts marked on every time axis, and the run's figures. For a campaign: its seeds, cuts and
/// violations by class, and then the first seed (or the first that failed) as above.
/// </summary>
internal static class SimHtmlReport
{
    public static HtmlReport Build(
        IReadOnlyList<SimResult> results,
        IReadOnlyList<(ulong Seed, string Message)> deadSeeds,
        string commandLine
    )
    {
        bool campaign = results.Count + deadSeeds.Count > 1;
        var report = new HtmlReport(
            campaign
                ? $"ssd-emulator sim: campaign of {results.Count + deadSeeds.Count} seeds"
                : $"ssd-emulator sim: seed {results[0].Options.Seed}, {results[0].Options.Workload}"
        );
        report.Paragraph(commandLine);
        if (campaign)
        {
            Campaign(report, results, deadSeeds);
        }

        SimResult? shown = results.FirstOrDefault(r => r.Violations.Count > 0)
            ?? (results.Count > 0 ? results[0] : null);
        if (shown is not null)
        {
            if (campaign)
            {
                report.Heading(
                    $"Seed {shown.Options.Seed}{(shown.Violations.Count > 0 ? " (the first that failed)" : " (the first)")}"
                );
            }

            Run(report, shown);
        }

        return report;
    }

    private static void Campaign(
        HtmlReport report,
        IReadOnlyList<SimResult> results,
        IReadOnlyList<(ulong Seed, string Message)> deadSeeds
    )
    {
        report.Heading("Campaign");
        Dictionary<string, int> byClass = Violation.CountByClass(
            results.SelectMany(r => r.Violations).Select(v => v.ClassName),
            deadSeeds.Count
        );
        var cutsByActivity = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach ((string activity, int count) in results.SelectMany(r => r.PowerCuts.ByActivity))
        {
            cutsByActivity[activity] = cutsByActivity.GetValueOrDefault(activity) + count;
        }

        report.Figures(
            "The campaign",
            [
                ("seeds", (results.Count + deadSeeds.Count).ToString(CultureInfo.InvariantCulture)),
                (
                    "seeds that failed",
                    (results.Count(r => r.Violations.Count > 0) + deadSeeds.Count).ToString(
                        CultureInfo.InvariantCulture
                    )
                ),
                ("power cuts", results.Sum(r => r.PowerCuts.Total).ToString(CultureInfo.InvariantCulture)),
                ("violations", byClass.Values.Sum().ToString(CultureInfo.InvariantCulture)),
                ("host commands", results.Sum(r => r.HostOps).ToString(CultureInfo.InvariantCulture)),
            ]
        );
        ViolationsByClass(report, byClass);
        if (cutsByActivity.Count > 0)
        {
            report.Chart(
                Charts.Bars(
                    "Power cuts by what the firmware was doing",
                    "activity",
                    "cuts",
                    [.. cutsByActivity.Select(c => (c.Key, (double)c.Value))]
                ),
                "Where the cuts struck, over every seed."
            );
        }

        report.Chart(
            Charts.Lines(
                "Write amplification of each seed",
                "seed",
                "WAF",
                [new Series("waf", [.. results.Select(r => ((double)r.Options.Seed, r.Waf))])]
            ),
            "NAND bytes programmed over host bytes written, per seed."
        );
        report.Table(
            "Seeds",
            ["seed", "workload", "host ops", "waf", "power cuts", "violations", "trace hash"],
            results
                .Select(r =>
                    (IReadOnlyList<string>)
                        [
                            r.Options.Seed.ToString(CultureInfo.InvariantCulture),
                            r.Options.Workload,
                            r.HostOps.ToString(CultureInfo.InvariantCulture),
                            r.Waf.ToString("0.000", CultureInfo.InvariantCulture),
                            r.PowerCuts.Total.ToString(CultureInfo.InvariantCulture),
                            r.Violations.Count.ToString(CultureInfo.InvariantCulture),
                            r.TraceHash.ToString("x16", CultureInfo.InvariantCulture),
                        ]
                )
                .Concat(
                    deadSeeds.Select(d =>
                        (IReadOnlyList<string>)
                            [d.Seed.ToString(CultureInfo.InvariantCulture), "-", "0", "-", "0", "1", d.Message]
                    )
                )
        );
    }

    private static void Run(HtmlReport report, SimResult run)
    {
        IReadOnlyList<SimSample> timeline = run.Timeline;
        IReadOnlyList<double> cuts = run.CutSeconds;
        var intervals = timeline
            .Zip(timeline.Skip(1), (a, b) => (From: a, To: b))
            .Where(p => p.To.Seconds > p.From.Seconds)
            .ToList();
        report.Chart(
            Charts.Lines(
                "Write amplification over time",
                "virtual time (s)",
                "WAF",
                [
                    new Series(
                        "since the start",
                        [
                            .. timeline
                                .Where(s => s.HostBytesWritten > 0)
                                .Select(s => (s.Seconds, (double)s.NandBytesProgrammed / s.HostBytesWritten)),
                        ]
                    ),
                    new Series(
                        "per interval",
                        [
                            .. intervals
                                .Where(p => p.To.HostBytesWritten > p.From.HostBytesWritten)
                                .Select(p =>
                                    (
                                        p.To.Seconds,
                                        (double)(p.To.NandBytesProgrammed - p.From.NandBytesProgrammed)
                                            / (p.To.HostBytesWritten - p.From.HostBytesWritten)
                                    )
                                ),
                        ]
                    ),
                ],
                cuts,
                "power cut"
            ),
            "NAND bytes programmed (host data, GC, metadata) over host bytes written; dashed lines are power cuts."
        );
        report.Chart(
            Charts.Lines(
                "Host and GC write rates",
                "virtual time (s)",
                "MB/s",
                [
                    new Series(
                        "host writes",
                        [
                            .. intervals.Select(p =>
                                (p.To.Seconds, Rate(p.To.HostBytesWritten - p.From.HostBytesWritten, p))
                            ),
                        ]
                    ),
                    new Series(
                        "GC relocation",
                        [.. intervals.Select(p => (p.To.Seconds, Rate(p.To.GcBytesWritten - p.From.GcBytesWritten, p)))]
                    ),
                    new Series(
                        "NAND programs",
                        [
                            .. intervals.Select(p =>
                                (p.To.Seconds, Rate(p.To.NandBytesProgrammed - p.From.NandBytesProgrammed, p))
                            ),
                        ]
                    ),
                ],
                cuts,
                "power cut"
            ),
            "Bytes per second of virtual time, per interval of the timeline."
        );
        report.Chart(
            Charts.Cdf(
                "Latency CDF per operation (measured phase)",
                "latency (µs, virtual)",
                [.. run.LatencyBuckets.Select(o => new Series(o.Operation, Charts.CumulativeOf(o.Buckets, 1e-3)))]
            ),
            "The fraction of commands that completed within each latency, counted from their arrival."
        );
        report.Chart(
            Charts.Bars("Erase counts of the blocks", "erases", "blocks", EraseHistogram(run.EraseCounts)),
            "How many good blocks were erased how many times, at the end of the run."
        );
        report.Chart(
            Charts.Lines(
                "Cache read hit ratio over time",
                "virtual time (s)",
                "hit ratio",
                [
                    new Series(
                        "sectors read from the cache / sectors read",
                        [
                            .. intervals
                                .Where(p => Lookups(p) > 0)
                                .Select(p => (p.To.Seconds, (double)(p.To.CacheHits - p.From.CacheHits) / Lookups(p))),
                        ]
                    ),
                ],
                cuts,
                "power cut"
            ),
            run.Timeline.Count > 0 && run.Timeline[^1].CacheHits + run.Timeline[^1].CacheMisses == 0
                ? "The host read nothing in this run: no hit ratio to show."
                : "Of the sectors the host read in each interval, the fraction the cache held."
        );
        report.Chart(
            Charts.Lines(
                "DRAM held by the cache",
                "virtual time (s)",
                "MiB",
                [new Series("held", [.. timeline.Select(s => (s.Seconds, s.DramHeldBytes / 1048576.0))])],
                cuts,
                "power cut"
            ),
            "Bytes of DRAM the cache's large pages held; a power cut empties it."
        );
        report.Figures("The run's figures", Figures(run));
    }

    /// <summary>
    /// The chart every campaign report has: violations of each class of the invariant, zeros included.
    /// </summary>
    internal static void ViolationsByClass(HtmlReport report, Dictionary<string, int> byClass) =>
        report.Chart(
            Charts.Bars(
                "Violations by class",
                "class",
                "violations",
                [.. byClass.Select(c => (c.Key, (double)c.Value))]
            ),
            "Every class of the no-lost-writes invariant, those with none included."
        );

    private static double Rate(long bytes, (SimSample From, SimSample To) interval) =>
        bytes / 1e6 / (interval.To.Seconds - interval.From.Seconds);

    private static long Lookups((SimSample From, SimSample To) interval) =>
        interval.To.CacheHits - interval.From.CacheHits + interval.To.CacheMisses - interval.From.CacheMisses;

    /// <summary>Blocks per erase count, from the least erased to the most, in at most 40 bars of equal width.</summary>
    internal static IReadOnlyList<(string Label, double Value)> EraseHistogram(IReadOnlyList<uint> counts)
    {
        if (counts.Count == 0)
        {
            return [("0", 0)];
        }

        uint min = counts.Min();
        uint max = counts.Max();
        uint width = Math.Max(1, (max - min + 40) / 40);
        var bars = new double[((max - min) / width) + 1];
        foreach (uint count in counts)
        {
            bars[(count - min) / width]++;
        }

        return
        [
            .. bars.Select(
                (n, i) =>
                    (
                        width == 1
                            ? (min + i).ToString(CultureInfo.InvariantCulture)
                            : $"{min + (i * width)}-{min + (i * width) + width - 1}",
                        n
                    )
            ),
        ];
    }

    private static IEnumerable<(string, string)> Figures(SimResult run)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        yield return ("seed", run.Options.Seed.ToString(c));
        yield return ("workload", run.Options.Workload);
        yield return ("host commands measured", run.HostOps.ToString(c));
        yield return ("write amplification (all NAND programs)", run.Waf.ToString("0.000", c));
        yield return ("write amplification (host and GC data)", run.WafData.ToString("0.000", c));
        if (run.Options.Workload == "uniform-randwrite")
        {
            yield return ("model WAF at the spare factor (greedy, uniform)", run.ModelWaf.ToString("0.000", c));
        }

        yield return ("spare factor", run.SpareFactor.ToString("0.0000", c));
        yield return ("IOPS (virtual time)", run.Iops.ToString("0", c));
        yield return (
            "latency p50 / p99 / p99.9 (µs)",
            string.Create(
                c,
                $"{run.LatencyMicroseconds.P50:0.0} / {run.LatencyMicroseconds.P99:0.0} / {run.LatencyMicroseconds.P999:0.0}"
            )
        );
        yield return ("power cuts", run.PowerCuts.Total.ToString(c));
        yield return ("violations", run.Violations.Count.ToString(c));
        yield return (
            "erase counts min / mean / max",
            string.Create(c, $"{run.Wear.MinErases} / {run.Wear.MeanErases:0.0} / {run.Wear.MaxErases}")
        );
        yield return ("virtual seconds", run.VirtualSeconds.ToString("0.000000", c));
        yield return (
            "wall seconds: fill / warm-up / measured",
            string.Create(c, $"{run.FillWallSeconds:0.00} / {run.WarmupWallSeconds:0.00} / {run.WallSeconds:0.00}")
        );
        yield return ("trace hash", run.TraceHash.ToString("x16", c));
    }
}
