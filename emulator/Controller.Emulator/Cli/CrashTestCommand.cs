using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Emulator.Sim;
using Controller.Firmware.Loop;
using Controller.Hosting;

namespace Controller.Emulator.Cli;

/// <summary><c>ssd-emulator crashtest</c>: bounded exhaustive crash testing (see <see cref="CrashTest"/>).</summary>
internal static class CrashTestCommand
{
    public static VerbSpec Verb(TextWriter output) =>
        new(
            "crashtest",
            "every short sequence of commands, cut at every NAND operation, checked by the oracle",
            "Bounded exhaustive crash testing, as CrashMonkey and ACE do for file systems: every sequence of 1 to K host commands from the protocol's vocabulary, over the ranges that matter to a cache of large pages, after a prefix that leaves them uncached, clean in the cache or dirty in it, on a tiny device for each trim policy, with and without power-loss protection. The power is cut during every NAND operation of the sequence and of the FLUSH that follows it (at an instant drawn within it, so programs and erases are torn) and right after every command; the firmware recovers and every sector is checked against the no-lost-writes invariant (DESIGN.md section 3). Deterministic: a case is one execution wherever it runs. Exits 1 if any cut point finds a violation, and prints each with the command that replays it.",
            [
                new("--length", "K", "longest sequence (default 3; 1 to 4)"),
                new(
                    "--set",
                    "KEY=VALUE",
                    "change the device (after the crash test's own settings: the tiny profile with nand.pageBytes=16k, nand.spareBytes=512, nand.pagesPerBlock=4, nand.blocksPerDie=20, ftl.spareFactor=0.7, cache.bytes=256k, cache.largePageBytes=64k, cache.checkInvariants=true, and each case's trim policy and PLP); repeatable",
                    Repeatable: true
                ),
                new("--shard", "K/N", "only cases K, K+N, K+2N, ... (0 <= K < N): a run on N machines"),
                new(
                    "--sample",
                    "N",
                    "N cases drawn without repeats by the seed of --seed S (default 1), instead of all"
                ),
                new("--seed", "S", "with --sample, the seed the cases are drawn by (default 1)"),
                new("--json", "FILE", "write the report: counts, and every violation with its case, cut and replay"),
                new("--jobs", "N", "cases run on N threads (default: every core); the report is the same"),
                new("--case", "ID", "run one case, as the report names it (e.g. split/no-plp/dirty/Tf@sector,S)"),
                new(
                    "--cut",
                    "CUT",
                    "with --case, only this cut point: nand:N (during the Nth NAND operation from the sequence's start), after:N (after its Nth command; the FLUSH that follows the sequence is the last), or none"
                ),
                new("--trace", "FILE", "with --case, every event of every run as a line"),
                new(
                    "--report",
                    "FILE.html",
                    "write one HTML page that opens offline: violations by class, cut points and violations per device, and the figures"
                ),
            ],
            (args, cancellation) =>
                Task.FromResult(
                    Run(args, output, Console.Error, SimHooks.None, !Console.IsErrorRedirected, cancellation)
                )
        )
        {
            Epilogue =
                "Vocabulary: W write, T trim, Z write zeroes, each plain or with f (FUA), Z also with n (NO_HOLE)\nand fn, at one of the targets sector, neighbour, first-half, second-half (of a large page),\nacross (a large-page boundary), unaligned (ends inside sectors), last (the device's last\nsector); and S, a flush.\n\nExamples:\n  ssd-emulator crashtest --length 2 --json k2.json\n  ssd-emulator crashtest --length 3 --sample 20000 --seed 7\n  ssd-emulator crashtest --length 3 --shard 5/64 --json shard-5.json\n  ssd-emulator crashtest --case 'split/no-plp/dirty/Tf@sector,S' --cut nand:2 --trace case.trace",
        };

    /// <summary>Runs the command line; <paramref name="hooks"/> selects a canary (tests only).</summary>
    internal static int Run(
        CommandArgs args,
        TextWriter output,
        TextWriter progress,
        SimHooks hooks,
        bool terminal = false,
        CancellationToken interrupt = default
    )
    {
        IReadOnlyList<string> overrides = args.All("--set");
        int length = (int)args.Integer("--length", 3, 1, 4);
        var test = new CrashTest(length, (name, sets) => Profiles.Load(name, sets), overrides) { Hooks = hooks };
        string setOptions = string.Concat(overrides.Select(o => $" --set {Quote(o)}"));
        if (args.Single("--case") is { } id)
        {
            return RunOne(args, output, test, id, setOptions);
        }

        foreach (string only in new[] { "--cut", "--trace" })
        {
            if (args.Single(only) is not null)
            {
                throw new UsageException($"{only} goes with --case ID (one case)");
            }
        }

        long[] cases = Select(args, test);
        int jobs = (int)args.Integer("--jobs", Environment.ProcessorCount, 1, 1024);
        var results = new CrashCaseResult?[cases.Length];
        var wall = Stopwatch.StartNew();
        var line = new ProgressLine(progress, terminal, TimeSpan.FromSeconds(5));
        var gate = new object();
        long done = 0,
            cutPoints = 0,
            violations = 0;
        try
        {
            Parallel.For(0, cases.Length, new ParallelOptions { MaxDegreeOfParallelism = jobs }, (i, state) =>
            {
                if (interrupt.IsCancellationRequested)
                {
                    // The sequences before this one still finish: the report covers a prefix of the run.
                    state.Break();
                    return;
                }

                CrashCaseResult result = test.Run(test.Case(cases[i]));
                results[i] = result;
                lock (gate)
                {
                    done++;
                    cutPoints += result.CutPoints;
                    violations += result.Violations.Count;
                    line.Show(
                        string.Create(
                            CultureInfo.InvariantCulture,
                            $"crashtest: {done}/{cases.Length} sequences, {cutPoints} cut points, {violations} violations, {done / Math.Max(1e-3, line.Elapsed.TotalSeconds):0} sequences/s {line.TimeLeft((double)done / cases.Length)}"
                        )
                    );
                }
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }

        wall.Stop();
        line.Clear();
        CrashCaseResult[] ran = [.. results.TakeWhile(r => r is not null).Select(r => r!)];
        var report = new CrashReport(
            test,
            ran.Length,
            ran,
            wall.Elapsed.TotalSeconds,
            args.Echo("--json", "--jobs", "--report")
        );
        report.Write(output, setOptions);
        if (ran.Length < cases.Length)
        {
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"interrupted (Ctrl-C): {ran.Length} of {cases.Length} sequences ran; the report covers those (the same command runs them all)"
                )
            );
        }

        if (args.Single("--json") is { } json)
        {
            report.WriteJson(json, setOptions);
        }

        if (args.Single("--report") is { } html)
        {
            Reports.HtmlReport page = report.Html($"ssd-emulator crashtest {args.Echo("--report")}");
            page.Write(html);
            output.WriteLine($"report: {html} ({page.Charts} charts)");
        }

        if (report.Violations.Count > 0)
        {
            return ExitCodes.Failure;
        }

        return ran.Length < cases.Length ? ExitCodes.Interrupted : ExitCodes.Done;
    }

    private static int RunOne(CommandArgs args, TextWriter output, CrashTest test, string id, string setOptions)
    {
        foreach (string whole in new[] { "--shard", "--sample", "--json" })
        {
            if (args.Single(whole) is not null)
            {
                throw new UsageException($"--case runs one case; {whole} is for a whole run");
            }
        }

        CrashCase crashCase;
        CrashCut? cut;
        try
        {
            crashCase = test.Parse(id);
            cut = args.Single("--cut") is { } text ? CrashCut.Parse(text) : null;
        }
        catch (FormatException e)
        {
            throw new UsageException($"--case: {e.Message}");
        }

        using TextWriter? trace = args.Single("--trace") is { } path ? ExecutionTrace.OpenFile(path) : null;
        CrashCaseResult result = test.Run(crashCase, cut, trace);
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"crashtest: case {crashCase.Id}: {result.NandOperations} NAND operations, {result.CutPoints} cut points, {result.Violations.Count} violations"
            )
        );
        foreach (CrashViolation violation in result.Violations)
        {
            CrashReport.WriteViolation(output, violation, setOptions);
        }

        return result.Violations.Count == 0 ? 0 : 1;
    }

    /// <summary>The indices of the cases to run: all, a shard of them, or a seeded sample.</summary>
    private static long[] Select(CommandArgs args, CrashTest test)
    {
        (ulong shardIndex, ulong shardCount) = Shard.Parse(args.Single("--shard"));
        long sample = args.Integer("--sample", 0, 1, long.MaxValue);
        if (sample == 0 && args.Single("--seed") is not null)
        {
            throw new UsageException("--seed draws a --sample; give --sample N with it");
        }

        IEnumerable<long> all =
            sample > 0
                ? Sample(test.Cases, sample, (ulong)args.Integer("--seed", 1, 0, long.MaxValue))
                : Range(test.Cases);
        return [.. all.Where(index => (ulong)index % shardCount == shardIndex)];
    }

    private static IEnumerable<long> Range(long count)
    {
        for (long i = 0; i < count; i++)
        {
            yield return i;
        }
    }

    /// <summary>
    /// <paramref name="count"/> distinct indices below <paramref name="total"/> (Floyd's algorithm), in order.
    /// </summary>
    private static List<long> Sample(long total, long count, ulong seed)
    {
        if (count >= total)
        {
            return [.. Range(total)];
        }

        var prng = new Prng(seed);
        var chosen = new HashSet<long>();
        for (long j = total - count; j < total; j++)
        {
            long t = (long)prng.NextUInt64((ulong)j + 1);
            chosen.Add(chosen.Contains(t) ? j : t);
        }

        return [.. chosen.Order()];
    }

    private static string Quote(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || "-_.,:=/+@".Contains(c, StringComparison.Ordinal))
            ? value
            : $"'{value.Replace("'", "'\\''", StringComparison.Ordinal)}'";

    /// <summary>What a run found, as the summary lines and the JSON report write it.</summary>
    private sealed class CrashReport(
        CrashTest test,
        long sequences,
        CrashCaseResult[] results,
        double wallSeconds,
        string options
    )
    {
        public List<CrashViolation> Violations { get; } = [.. results.SelectMany(r => r.Violations)];

        private long CutPoints => results.Sum(r => (long)r.CutPoints);

        public void Write(TextWriter output, string setOptions)
        {
            foreach (CrashViolation violation in Violations.Take(20))
            {
                WriteViolation(output, violation, setOptions);
            }

            if (Violations.Count > 20)
            {
                output.WriteLine($"... and {Violations.Count - 20} more violations (--json FILE lists them all)");
            }

            foreach (var device in results.GroupBy(r => (r.Case.Device.Policy, r.Case.Device.PlpName)))
            {
                output.WriteLine(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"  {device.Key.Policy, -10} {device.Key.PlpName, -7} sequences={device.Count()} cutPoints={device.Sum(r => (long)r.CutPoints)} violations={device.Sum(r => r.Violations.Count)}"
                    )
                );
            }

            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"crashtest: length {test.Length} ({options}): {sequences} sequences, {CutPoints} cut points, {Violations.Count} violations, {wallSeconds:0.0} s"
                )
            );
        }

        /// <summary>
        /// The run as one HTML page: its figures, violations by class, cut points and violations per device.
        /// </summary>
        public Reports.HtmlReport Html(string commandLine)
        {
            CultureInfo c = CultureInfo.InvariantCulture;
            var page = new Reports.HtmlReport($"ssd-emulator crashtest: length {test.Length}");
            page.Paragraph(commandLine);
            page.Figures(
                "The run",
                [
                    ("sequences", sequences.ToString(c)),
                    ("cut points", CutPoints.ToString(c)),
                    ("violations", Violations.Count.ToString(c)),
                    ("wall seconds", wallSeconds.ToString("0.0", c)),
                ]
            );
            Dictionary<string, int> byClass = Violation.CountByClass(Violations.Select(v => v.Violation.ClassName));
            var devices = results
                .GroupBy(r => $"{r.Case.Device.Policy}/{r.Case.Device.PlpName}")
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToList();
            SimHtmlReport.ViolationsByClass(page, byClass);
            page.Chart(
                Reports.Charts.Bars(
                    "Cut points per device",
                    "trim policy / power-loss protection",
                    "cut points",
                    [.. devices.Select(d => (d.Key, (double)d.Sum(r => (long)r.CutPoints)))]
                ),
                "Every instant the power was cut, per device the cases ran on."
            );
            page.Table(
                "Devices",
                ["device", "sequences", "cut points", "violations"],
                devices.Select(d =>
                    (IReadOnlyList<string>)
                        [
                            d.Key,
                            d.Count().ToString(c),
                            d.Sum(r => (long)r.CutPoints).ToString(c),
                            d.Sum(r => r.Violations.Count).ToString(c),
                        ]
                )
            );
            page.Table(
                "Violations (the first 200)",
                ["case", "cut", "class", "sector"],
                Violations
                    .Take(200)
                    .Select(v =>
                        (IReadOnlyList<string>)
                            [v.Case.Id, v.Cut.ToString(), v.Violation.ClassName, v.Violation.Sector.ToString(c)]
                    )
            );
            return page;
        }

        public static void WriteViolation(TextWriter output, CrashViolation violation, string setOptions)
        {
            output.WriteLine($"violation: {violation.Violation}");
            output.WriteLine($"  case: {violation.Case.Id}  cut: {violation.Cut}");
            output.WriteLine($"  history: {violation.Violation.History}");
            output.WriteLine($"  replay: {Replay(violation, setOptions)}");
        }

        public void WriteJson(string path, string setOptions)
        {
            using FileStream file = File.Create(path);
            using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteNumber("length", test.Length);
            json.WriteString("options", options);
            json.WriteNumber("sequences", sequences);
            json.WriteNumber("cutPoints", CutPoints);
            json.WriteNumber("nandOperations", results.Sum(r => r.NandOperations));
            json.WriteNumber("wallSeconds", Math.Round(wallSeconds, 3));
            json.WriteStartArray("devices");
            foreach (var device in results.GroupBy(r => (r.Case.Device.Policy, r.Case.Device.Plp)))
            {
                json.WriteStartObject();
                json.WriteString("trimPolicy", device.Key.Policy);
                json.WriteBoolean("plp", device.Key.Plp);
                json.WriteNumber("sequences", device.Count());
                json.WriteNumber("cutPoints", device.Sum(r => (long)r.CutPoints));
                json.WriteNumber("violations", device.Sum(r => r.Violations.Count));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("violations");
            foreach (CrashViolation violation in Violations)
            {
                json.WriteStartObject();
                json.WriteString("class", violation.Violation.ClassName);
                json.WriteString("sequence", violation.Case.Id);
                json.WriteString("cutPoint", violation.Cut.ToString());
                json.WriteNumber("sector", violation.Violation.Sector);
                json.WriteString("detail", violation.Violation.Detail);
                json.WriteString("history", violation.Violation.History);
                json.WriteString("replay", Replay(violation, setOptions));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        private static string Replay(CrashViolation violation, string setOptions) =>
            $"ssd-emulator crashtest --case '{violation.Case.Id}' --cut {violation.Cut}{setOptions}";
    }
}
