using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Config;
using Controller.Firmware.Ftl;
using Controller.Hosting;
using Controller.Traces;

namespace Controller.Emulator.Cli;

/// <summary><c>ssd-emulator sim</c>: deterministic runs of the firmware on the emulated NAND, one per seed.</summary>
internal static class SimCommand
{
    public static VerbSpec Verb(TextWriter output) =>
        new(
            "sim",
            "deterministic runs of the whole SSD with power cuts and the oracle, one line per seed",
            "Runs the whole SSD headless and deterministic: host workload, controller loop, cache, FTL and emulated NAND on one virtual clock in one thread. One seed gives one execution; the trace hash proves it. Every 512-byte block written carries its address, its operation's id and a checksum. Reads must return exactly what was written. With --power-cuts, the power is cut at random instants (inside NAND programs and erases, GC, checkpoints, and recovery itself); after each cut the firmware boots again and every sector is checked against the no-lost-writes invariant (DESIGN.md section 3). A violation is printed with its class, sector, history and the command that replays it. Exits 0 only if every invariant held in every seed.",
            [
                CommonOptions.Config(Profiles.BuiltInNames()),
                CommonOptions.Set,
                new("--seed", "N", "one seed (default 1)"),
                new("--seeds", "A..B", "every seed from A to B"),
                new(
                    "--shard",
                    "K/N",
                    "of those, only A+K, A+K+N, A+K+2N, ... (K from 0 to N-1): run a campaign on N machines"
                ),
                new(
                    "--workload",
                    "NAME",
                    $"{string.Join(", ", SimRunner.Workloads)} (default uniform-randwrite; with --swarm, drawn per seed unless given)"
                ),
                new(
                    "--ops",
                    "N",
                    "host commands measured (default: twice the live sectors for uniform-randwrite and hot-cold, the live sectors for zipf, 20000 for the others)"
                ),
                new(
                    "--power-cuts",
                    "N",
                    "power cuts per seed at random instants (default 0), plus cuts inside recovery"
                ),
                new(
                    "--queue-depth",
                    "N",
                    "host commands kept in flight (closed loop, default 1; with --swarm, drawn per seed unless given); commands that overlap one in flight where either writes wait for it, and a flush waits for all"
                ),
                new(
                    "--arrival-rate",
                    "IOPS",
                    "open loop: commands arrive as a Poisson process at this rate in virtual time, whatever the device is doing (up to --queue-depth in flight, default 64; the rest wait); latencies count from arrival"
                ),
                new(
                    "--swarm",
                    null,
                    "each seed draws its own configuration: geometry among the shipped profiles (scaled down), cache, large page, trim and eviction policy, spare factor, GC policy, checkpoint interval, fault rates, power-loss protection; --set still wins"
                ),
                new(
                    "--memcpy-floor",
                    null,
                    "after each run, time a plain loop copying the bytes the run had to copy (host data, NAND pages, relocated sectors) and print the run's wall time over it"
                ),
                new("--json", "FILE", "write {\"runs\":[...]} with every figure of each run"),
                new(
                    "--report",
                    "FILE.html",
                    "write one HTML page that opens offline: write amplification, write rates, cache hit ratio and DRAM held over time with the power cuts marked, latency CDFs, the blocks' erase counts, and the figures; for a campaign also its seeds, cuts and violations by class"
                ),
                new(
                    "--jobs",
                    "N",
                    "seeds run at once, each on a core of its own (default: every core; 1 with --memcpy-floor); the output is the same as on one core but for wall times. Each job holds its device's NAND in memory"
                ),
                new(
                    "--trace",
                    "FILE",
                    "write every event (NAND operations, host commands, cuts, mounts) as a line; with several seeds, FILE gets the seed before its extension"
                ),
                new(
                    "--replay",
                    "FILE",
                    "run the session again over the emulated NAND, input by input, on the recorded clock; prints trace-hash=HEX, which is the session's (and says so, or that it differs; exit 1 then, or if the firmware failed, as it did then)"
                ),
                new("--until", "N", "stop before the session's command N (bisect with --trace)"),
                new(
                    "--warmup",
                    "N",
                    "uniform-randwrite, hot-cold, zipf: random writes after the fill, before measuring (default: twice the live sectors; 0 with --swarm)"
                ),
                new(
                    "--trim-fraction",
                    "F",
                    "uniform-randwrite, hot-cold, zipf: trim this fraction after the fill, never written again"
                ),
                new("--hot-fraction", "F", "hot-cold: fraction of the space that is hot (default 0.2)"),
                new("--hot-traffic", "F", "hot-cold: fraction of writes to it (default 0.8)"),
                new("--zipf-theta", "T", "zipf: skew, 0 (uniform) to 0.999 (default 0.99)"),
                new("--read-fraction", "F", "zipf (default 0.2), sequential (0.25), mixed (0.35): fraction of reads"),
                new(
                    "--block-size",
                    "SIZE",
                    "sequential: transfer size (default 128k); mixed: largest write (default 64k)"
                ),
                new("--flush-every", "N", "sequential: a flush after every N writes (default 64; 0: only at the end)"),
                new(
                    "--region",
                    "SIZE",
                    "bytes of the device the workload uses, from offset 0 (default: all of it; a quarter, at most 256M, for fs, db and sequential-trim)"
                ),
                new(
                    "--idle-us",
                    "N",
                    "mean host idle time between commands, microseconds of virtual time, when GC, wear levelling and checkpoints run in the background (default 50 for mixed, else 0; the commands in flight go on meanwhile)"
                ),
                new(
                    "--trace-file",
                    "FILE",
                    "the trace (FILE.gz is read through gzip); every block it writes is stamped, so the oracle checks the replay, with --power-cuts too"
                ),
                new(
                    "--trace-format",
                    "F",
                    $"{string.Join(", ", Controller.Traces.TraceFormats.Names)}: blkparse (blkparse's default text, D events; RWBS with D discard, F flush or FUA), fio (iolog v2 or v3: read, write, trim, sync, datasync), mqsim (MQSim's ASCII trace), msr (MSR Cambridge CSV), spc (SNIA/UMass SPC: ASU,LBA,Size,Opcode,Timestamp)"
                ),
                new(
                    "--trace-speed",
                    "X",
                    "1 (default): commands arrive at the recorded times, in virtual time (up to --queue-depth in flight, default 64); 2 twice as fast, 0.5 half; 0: as fast as the device allows, --queue-depth in flight (default 1)"
                ),
                new(
                    "--trace-fit",
                    "wrap|scale",
                    "addresses beyond the device: modulo its size (default) or in proportion; a warning says when the trace is larger than the device"
                ),
            ],
            (args, cancellation) =>
                Task.FromResult(Run(args, output, Console.Error, !Console.IsErrorRedirected, cancellation))
        )
        {
            Subverbs = [SimMerge.Verb(output)],
            Epilogue =
                "Examples:\n  ssd-emulator sim --workload uniform-randwrite --set ftl.spareFactor=0.07 --json waf.json\n  ssd-emulator sim --swarm --seeds 1..200 --power-cuts 8 --ops 1500\n  ssd-emulator sim --swarm --seeds 1..100000 --shard 3/16 --power-cuts 10 --json shard-3.json\n  ssd-emulator sim --trace-file tpcc.trace --trace-format mqsim --power-cuts 4",
        };

    /// <summary>
    /// Runs the command line. Progress goes to <paramref name="progress"/> (rewritten in place when
    /// it is a <paramref name="terminal"/>); <paramref name="interrupt"/> (Ctrl-C) stops the campaign
    /// at the next seed, with what ran reported and written.
    /// </summary>
    public static int Run(
        CommandArgs args,
        TextWriter output,
        TextWriter progress,
        bool terminal,
        CancellationToken interrupt
    )
    {
        if (args.Single("--replay") is { } recording)
        {
            if (args.GivenOptions.Except(["--replay", "--until", "--trace"]).FirstOrDefault() is { } option)
            {
                throw new UsageException($"--replay runs a recorded session as it was; {option} does not apply to it");
            }

            return SessionReplay.Run(
                recording,
                args.Integer("--until", 0, 1, long.MaxValue),
                args.Single("--trace"),
                output
            );
        }

        if (args.Single("--until") is not null)
        {
            throw new UsageException("--until applies to --replay FILE");
        }

        string? profile = args.Single("--config");
        IReadOnlyList<string> overrides = args.All("--set");
        bool swarm = args.Has("--swarm");
        ResolvedConfig? fixedConfig = swarm ? null : Profiles.Load(profile, overrides);
        List<ulong> seeds = Seeds(args);
        string? workload = args.Single("--workload");
        if (workload is not null && !SimRunner.Workloads.Contains(workload))
        {
            throw new UsageException(
                $"--workload: unknown workload '{workload}'; workloads are {string.Join(", ", SimRunner.Workloads)}"
            );
        }

        TraceSource? replayed = Trace(args, ref workload);

        var parameters = new WorkloadParameters
        {
            // 0 means the workload's default inside; a user who writes 0 gets told, not the default.
            Ops = args.Integer("--ops", 0, 1, long.MaxValue),
            Warmup = args.Integer("--warmup", -1, -1, long.MaxValue),
            TrimFraction = Fraction(args, "--trim-fraction", 0, 0.9),
            HotFraction = Fraction(args, "--hot-fraction", 0.2, 0.99),
            HotTraffic = Fraction(args, "--hot-traffic", 0.8, 1),
            ZipfTheta = Fraction(args, "--zipf-theta", 0.99, 0.999),
            ReadFraction = Fraction(args, "--read-fraction", -1, 0.95),
            BlockBytes = Size(args, "--block-size"),
            RegionBytes = Size(args, "--region"),
            IdleMicroseconds = args.Integer("--idle-us", -1, 0, 1_000_000_000),
            FlushEvery = args.Integer("--flush-every", 64, 0, long.MaxValue),
            QueueDepth = (int)args.Integer("--queue-depth", 0, 1, 1024),
            ArrivalRate = Rate(args, "--arrival-rate"),
            Trace = replayed,
        };
        int powerCuts = (int)args.Integer("--power-cuts", 0, 0, 1_000_000);
        string? tracePath = args.Single("--trace");
        string replayOptions = args.Echo("--seed", "--seeds", "--shard", "--json", "--trace");
        var results = new List<SimResult>();
        var deadSeeds = new List<(ulong Seed, string Message)>();
        var total = new PowerCutReport();
        var wall = System.Diagnostics.Stopwatch.StartNew();
        var line = new ProgressLine(progress, terminal, TimeSpan.FromSeconds(seeds.Count > 1 ? 10 : 5));
        // Seeds are independent executions: on N cores N of them run at once, and their summaries
        // are printed in seed order, so the output is the same as on one core (but the wall times).
        string? reportPath = args.Single("--report");
        int jobs = (int)args.Integer("--jobs", args.Has("--memcpy-floor") ? 1 : Environment.ProcessorCount, 1, 4096);
        bool parallel = jobs > 1 && seeds.Count > 1;
        var outcomes = new SeedOutcome?[seeds.Count];
        int printed = 0;
        var gate = new object();
        void RunOne(int i)
        {
            ulong seed = seeds[i];
            SwarmDraw? draw = swarm
                ? Swarm.Draw(seed, (name, sets) => Profiles.Load(name, sets), profile, overrides, workload, parameters)
                : null;
            Action<SimProgress>? show = parallel
                ? null
                : p =>
                {
                    lock (gate)
                    {
                        line.Show(
                            Status(
                                seeds,
                                printed,
                                seed,
                                p,
                                total.Total,
                                results.Sum(r => r.Violations.Count) + deadSeeds.Count,
                                line
                            ),
                            now: p.Done == 0 && seeds.Count == 1
                        );
                    }
                };
            var options = new SimOptions(
                seed,
                draw?.Workload ?? workload ?? "uniform-randwrite",
                draw?.Parameters ?? parameters,
                powerCuts
            )
            {
                Progress = show,
                KeepTimeline = reportPath is not null,
            };
            string replay =
                $"ssd-emulator sim --seed {seed.ToString(CultureInfo.InvariantCulture)}{(replayOptions.Length > 0 ? " " : string.Empty)}{replayOptions}";
            SeedOutcome outcome;
            try
            {
                string? file = tracePath is null ? null : TracePath(tracePath, seed, seeds.Count);
                SimResult result;
                using (TextWriter? trace = file is null ? null : ExecutionTrace.OpenFile(file))
                {
                    result = SimRunner.Run(draw?.Config ?? fixedConfig!, options, trace);
                }

                if (args.Has("--memcpy-floor"))
                {
                    result = result with
                    {
                        MemcpyFloorSeconds = MemcpyFloor.Measure(
                            result.BytesCopied,
                            result.NandPageBytes,
                            FirmwareConfig.Geometry(result.Config).DataBytes
                        ),
                    };
                }

                outcome = new SeedOutcome(seed, options.Workload, draw, replay, result, null, file);
            }
            catch (FtlMountException e) when (seeds.Count > 1)
            {
                // One seed whose device cannot even be formatted does not stop the campaign.
                outcome = new SeedOutcome(
                    seed,
                    options.Workload,
                    draw,
                    replay,
                    null,
                    $"{Violation.Name(ViolationClass.DeadDevice)}: {e.Message}",
                    null
                );
            }

            lock (gate)
            {
                outcomes[i] = outcome;
                while (printed < seeds.Count && outcomes[printed] is { } ready)
                {
                    line.Clear();
                    Print(ready);
                    printed++;
                }

                if (parallel)
                {
                    line.Show(
                        CampaignStatus(
                            seeds.Count,
                            printed,
                            total.Total,
                            results.Sum(r => r.Violations.Count) + deadSeeds.Count,
                            line
                        )
                    );
                }
            }
        }

        void Print(SeedOutcome ready)
        {
            if (ready.Result is not { } result)
            {
                deadSeeds.Add((ready.Seed, ready.Dead!));
                output.WriteLine(
                    $"seed={ready.Seed.ToString(CultureInfo.InvariantCulture)} workload={ready.Workload} FAILED {ready.Dead}"
                );
                output.WriteLine(
                    ready.Draw is null
                        ? $"    replay: {ready.Replay}"
                        : $"  drew: {ready.Draw.Describe()}\n    replay: {ready.Replay}"
                );
                return;
            }

            results.Add(result);
            total.Add(result.PowerCuts);
            WriteSummary(output, result, ready.Draw, ready.Replay);
            if (ready.TraceFile is { } file)
            {
                output.WriteLine(
                    $"  trace: {file}, {Units.Binary(new FileInfo(file).Length)} (every event a line; the first line names the columns)"
                );
            }
        }

        if (!parallel)
        {
            for (int i = 0; i < seeds.Count && !interrupt.IsCancellationRequested; i++)
            {
                RunOne(i);
            }
        }
        else
        {
            try
            {
                Parallel.For(0, seeds.Count, new ParallelOptions { MaxDegreeOfParallelism = jobs }, (i, state) =>
                {
                    if (interrupt.IsCancellationRequested)
                    {
                        // The seeds before this one still finish, so what ran is a prefix to resume after.
                        state.Break();
                        return;
                    }

                    RunOne(i);
                });
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
        }

        ulong? stoppedAt = printed < seeds.Count ? seeds[printed] : null;
        line.Clear();
        if (stoppedAt is { } next)
        {
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"interrupted (Ctrl-C): {results.Count + deadSeeds.Count} of {seeds.Count} seeds ran; to run the rest: ssd-emulator sim {Resume(args, seeds, next)}"
                )
            );
        }

        if (seeds.Count > 1)
        {
            WriteCampaign(output, results, deadSeeds, total, wall.Elapsed.TotalSeconds);
        }

        string? resume = stoppedAt is { } from ? $"ssd-emulator sim {Resume(args, seeds, from)}" : null;
        if (args.Single("--json") is { } path)
        {
            string range = args.Single("--seeds") ?? seeds[0].ToString(CultureInfo.InvariantCulture);
            SimReport.Write(
                path,
                results,
                new SimCampaign(
                    range,
                    args.Single("--shard"),
                    args.Echo("--seed", "--seeds", "--shard", "--json", "--trace", "--jobs"),
                    deadSeeds,
                    resume
                )
            );
            if (resume is not null)
            {
                output.WriteLine($"json: {path} holds the {results.Count} runs that finished");
            }
        }

        if (reportPath is not null && results.Count + deadSeeds.Count > 0)
        {
            Reports.HtmlReport page = SimHtmlReport.Build(
                results,
                deadSeeds,
                $"ssd-emulator sim {args.Echo("--report")}"
            );
            page.Write(reportPath);
            output.WriteLine($"report: {reportPath} ({page.Charts} charts)");
        }

        if (deadSeeds.Count > 0 || results.Any(r => r.Violations.Count > 0))
        {
            return ExitCodes.Failure;
        }

        return resume is null ? ExitCodes.Done : ExitCodes.Interrupted;
    }

    /// <summary>The options that run the seeds from <paramref name="next"/> on, the rest as given.</summary>
    private static string Resume(CommandArgs args, List<ulong> seeds, ulong next)
    {
        string rest = args.Echo("--seed", "--seeds", "--shard");
        string range;
        if (args.Single("--shard") is { } shard)
        {
            // The shard's next seed and every N-th after it: shard 0/N from there.
            range = string.Create(
                CultureInfo.InvariantCulture,
                $"--seeds {next}..{seeds[^1]} --shard 0/{Shard.Parse(shard).Count}"
            );
        }
        else
        {
            range = string.Create(CultureInfo.InvariantCulture, $"--seeds {next}..{seeds[^1]}");
        }

        return rest.Length == 0 ? range : $"{range} {rest}";
    }

    /// <summary>
    /// The progress line of seeds run in parallel: the campaign's counts, the rate and the time left.
    /// </summary>
    private static string CampaignStatus(int count, int done, long cuts, long violations, ProgressLine line)
    {
        double rate = line.Elapsed.TotalSeconds > 0 ? done / line.Elapsed.TotalSeconds : 0;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"seeds {done}/{count} cuts={cuts} violations={violations} {rate:0.00} seeds/s {line.TimeLeft((double)done / count)}"
        );
    }

    /// <summary>
    /// The progress line: which seed, its phase and how far, the campaign's counts, the rate and the time left.
    /// </summary>
    private static string Status(
        List<ulong> seeds,
        int index,
        ulong seed,
        SimProgress p,
        long cuts,
        long violations,
        ProgressLine line
    )
    {
        double phaseDone = p.Total <= 0 ? 1 : (double)p.Done / p.Total;
        string phase = string.Create(
            CultureInfo.InvariantCulture,
            $"{p.Phase} {phaseDone * 100:0}% ({p.Done}/{p.Total} commands)"
        );
        if (seeds.Count == 1)
        {
            return string.Create(
                CultureInfo.InvariantCulture,
                $"seed {seed}: {phase}, {ProgressLine.Duration(line.Elapsed)}"
            );
        }

        double done = (double)index / seeds.Count;
        double rate = line.Elapsed.TotalSeconds > 0 ? index / line.Elapsed.TotalSeconds : 0;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"seeds {index}/{seeds.Count} (seed {seed}: {phase}) cuts={cuts} violations={violations} {rate:0.00} seeds/s {line.TimeLeft(done)}"
        );
    }

    private static void WriteSummary(TextWriter output, SimResult result, SwarmDraw? draw, string replay)
    {
        ulong seed = result.Options.Seed;
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"seed={seed} workload={result.Options.Workload} ops={result.HostOps} waf={result.Waf:0.000} trace-hash={result.TraceHash:x16} ops/s={result.HostOpsPerWallSecond:0} violations={result.Violations.Count}"
            )
        );
        if (draw is not null)
        {
            output.WriteLine($"  drew: {draw.Describe()}");
        }

        foreach (string note in result.Notes)
        {
            output.WriteLine($"  {note}");
        }

        if (result.PowerCuts.Total > 0)
        {
            PowerCutReport cuts = result.PowerCuts;
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"  power-cuts={cuts.Total} (inside recovery {cuts.InRecovery}, on hold-up energy {cuts.HoldUpSaves}) during {Counts(cuts.ByOperation)}; in {Counts(cuts.ByActivity)}; torn programs={cuts.TornPrograms} erases={cuts.TornErases}; unflushed sectors lost={cuts.UnflushedSectorsLost} of {cuts.UnflushedSectors} at risk; dirty sectors when armed={DirtyWhenArmed(cuts)}"
                )
            );
        }

        if (result.Cache is { } cache)
        {
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"  trimPolicy={cache.Policy} dramHeld={cache.MeanBytesHeld / 1048576:0.0}MiB migrated={cache.BytesMigrated / 1048576.0:0.0}MiB zeroed={cache.BytesZeroed / 1048576.0:0.0}MiB hitRatio={cache.HitRatio:0.000} trimP50={cache.TrimLatencyMicroseconds.P50:0.0}us trimP99={cache.TrimLatencyMicroseconds.P99:0.0}us punches={cache.Statistics.PartialPagePunches} fallbacks={cache.Statistics.SplitFallbacks}/{cache.Statistics.MigrateFallbacks} reclaimed={cache.Statistics.CleanPagesReclaimed} nandRead={result.NandPagesRead} nandProgrammed={result.NandPagesProgrammed}"
                )
            );
        }

        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  queueDepth={result.QueueDepth} readsOverlappingWrites={result.ReadsOverlappingWrites} writesOverlappingWrites={result.WritesOverlappingWrites} iops={result.Iops:0} virtual={result.MeasuredVirtualSeconds:0.000000}s {string.Join(" ", result.Operations.Select(o => $"{o.Operation}: n={o.Count} mean={o.Mean:0.0}us p50={o.P50:0.0}us p99={o.P99:0.0}us p99.9={o.P999:0.0}us max={o.Max:0.0}us"))}"
            )
        );
        // The model is greedy GC under uniform random writes (DESIGN.md section 7): beside another
        // workload its figure would read as a prediction it is not.
        string model =
            result.Options.Workload == "uniform-randwrite"
                ? string.Create(
                    CultureInfo.InvariantCulture,
                    $" modelWaf={result.ModelWaf:0.000} effectiveSpareFactor={result.EffectiveSpareFactor:0.0000} modelWafEffective={result.ModelWafEffective:0.000}"
                )
                : string.Create(
                    CultureInfo.InvariantCulture,
                    $" effectiveSpareFactor={result.EffectiveSpareFactor:0.0000} (the WAF model is for uniform-randwrite)"
                );
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  wafData={result.WafData:0.000} spareFactor={result.SpareFactor:0.0000}{model} wear={result.Wear.MinErases}/{result.Wear.MeanErases:0.0}/{result.Wear.MaxErases}"
            )
        );
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  speed: wall={result.WallSeconds:0.000}s (measured phase; fill {result.FillWallSeconds:0.0}s, warm-up {result.WarmupWallSeconds:0.0}s before it) host ops/s={result.HostOpsPerWallSecond:0} nand page ops/s={result.NandPageOpsPerWallSecond:0} ({result.Nand4KPageOpsPerWallSecond:0} in 4 KiB pages) copied={result.BytesCopied / 1048576.0:0}MiB{(result.MemcpyFloorSeconds > 0 ? string.Create(CultureInfo.InvariantCulture, $" memcpy floor={result.MemcpyFloorSeconds:0.000}s wall/floor={result.WallOverMemcpyFloor:0.00}") : string.Empty)}"
            )
        );
        if (result.EndOfLife is { } endOfLife)
        {
            output.WriteLine(
                $"  end of life (not a violation; the run stopped writing and checked what was written): {endOfLife}"
            );
        }

        if (result.Ftl.SectorsLost > 0 || result.Ftl.UnreadableSectors > 0)
        {
            output.WriteLine(
                $"  media: the NAND could not return {result.Ftl.UnreadableSectors} host reads intact, and {result.Ftl.SectorsLost} sectors were unreadable when relocated"
            );
        }

        foreach (Violation violation in result.Violations.Take(5))
        {
            output.WriteLine($"  VIOLATION {violation}");
            if (violation.History.Length > 0)
            {
                output.WriteLine($"    history: {violation.History}");
            }
        }

        if (result.Violations.Count > 0)
        {
            output.WriteLine($"    replay: {replay}");
        }
    }

    /// <summary>The mean dirty sectors at the instants cuts were armed, as text.</summary>
    private static string DirtyWhenArmed(PowerCutReport cuts) =>
        cuts.Armed == 0
            ? "-"
            : string.Create(
                CultureInfo.InvariantCulture,
                $"{(double)cuts.DirtySectorsWhenArmed / cuts.Armed:0.#} mean over {cuts.Armed}"
            );

    private static void WriteCampaign(
        TextWriter output,
        List<SimResult> results,
        List<(ulong Seed, string Message)> deadSeeds,
        PowerCutReport cuts,
        double wallSeconds
    )
    {
        var byClass = results
            .SelectMany(r => r.Violations)
            .GroupBy(v => v.ClassName)
            .ToDictionary(g => g.Key, g => g.Count());
        if (deadSeeds.Count > 0)
        {
            string dead = Violation.Name(ViolationClass.DeadDevice);
            byClass[dead] = byClass.GetValueOrDefault(dead) + deadSeeds.Count;
        }

        string classes = string.Join(
            ", ",
            Enum.GetValues<ViolationClass>()
                .Select(c => $"{Violation.Name(c)} {byClass.GetValueOrDefault(Violation.Name(c))}")
        );
        long ops = results.Sum(r => r.HostOps);
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"campaign: seeds={results.Count + deadSeeds.Count} failed={results.Count(r => r.Violations.Count > 0) + deadSeeds.Count} host-ops={ops} power-cuts={cuts.Total} (inside recovery {cuts.InRecovery}; during {Counts(cuts.ByOperation)}; in {Counts(cuts.ByActivity)}; torn programs {cuts.TornPrograms}, erases {cuts.TornErases}; unflushed sectors lost {cuts.UnflushedSectorsLost} of {cuts.UnflushedSectors}; dirty sectors when armed {DirtyWhenArmed(cuts)}) violations={byClass.Values.Sum()} ({classes}) end-of-life={results.Count(r => r.EndOfLife is not null)} wall={wallSeconds:0.0}s"
            )
        );
        foreach (SimResult failed in results.Where(r => r.Violations.Count > 0))
        {
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"  failed: seed={failed.Options.Seed} {failed.Violations[0]}"
                )
            );
        }

        foreach ((ulong seed, string message) in deadSeeds)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  failed: seed={seed} {message}"));
        }
    }

    /// <summary>
    /// The trace to replay, from --trace-file and its options; --trace-file alone selects the trace workload.
    /// </summary>
    private static TraceSource? Trace(CommandArgs args, ref string? workload)
    {
        string? file = args.Single("--trace-file");
        if (file is null)
        {
            foreach (string option in new[] { "--trace-format", "--trace-speed", "--trace-fit" })
            {
                if (args.Single(option) is not null)
                {
                    throw new UsageException($"{option} applies to a trace replay: give --trace-file FILE with it");
                }
            }

            return workload == "trace"
                ? throw new UsageException("--workload trace needs --trace-file FILE and --trace-format FORMAT")
                : null;
        }

        if (workload is not null && workload != "trace")
        {
            throw new UsageException($"--trace-file replays a trace; it does not go with --workload {workload}");
        }

        workload = "trace";
        if (!File.Exists(file))
        {
            throw new UsageException($"--trace-file: '{file}' does not exist");
        }

        string format = args.Single("--trace-format")
            ?? throw new UsageException(
                $"--trace-format: say which format '{file}' is in: {string.Join(", ", TraceFormats.Names)}"
            );
        if (!TraceFormats.TryParse(format, out TraceFormat parsed))
        {
            throw new UsageException(
                $"--trace-format: unknown trace format '{format}'; formats are {string.Join(", ", TraceFormats.Names)}"
            );
        }

        return new TraceSource(
            Path.GetFullPath(file),
            parsed,
            Parsed("--trace-fit", TraceFormats.ParseFit),
            Parsed("--trace-speed", TraceFormats.ParseSpeed)
        );

        T Parsed<T>(string option, Func<string?, T> parse)
        {
            try
            {
                return parse(args.Single(option));
            }
            catch (FormatException e)
            {
                throw new UsageException($"{option}: {e.Message}");
            }
        }
    }

    private static string Counts(SortedDictionary<string, int> counts) =>
        counts.Count == 0 ? "-" : string.Join(' ', counts.Select(c => $"{c.Key}={c.Value}"));

    private static string TracePath(string path, ulong seed, int seeds) =>
        seeds == 1
            ? path
            : Path.Combine(
                Path.GetDirectoryName(path) ?? string.Empty,
                $"{Path.GetFileNameWithoutExtension(path)}.{seed}{Path.GetExtension(path)}"
            );

    private static List<ulong> Seeds(CommandArgs args)
    {
        string? range = args.Single("--seeds");
        string? shard = args.Single("--shard");
        if (range is null)
        {
            if (shard is not null)
            {
                throw new UsageException("--shard splits a --seeds range; give --seeds A..B with it");
            }

            return [(ulong)args.Integer("--seed", 1, 0, long.MaxValue)];
        }

        if (args.Single("--seed") is not null)
        {
            throw new UsageException("give --seed or --seeds, not both");
        }

        string[] parts = range.Split("..");
        if (
            parts.Length != 2
            || !ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong first)
            || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong last)
            || last < first
        )
        {
            throw new UsageException($"--seeds: '{range}' is not A..B with A <= B, e.g. 1..100");
        }

        (ulong index, ulong count) = Shard.Parse(shard);

        var seeds = new List<ulong>();
        for (ulong seed = first + index; seed <= last && seed >= first; seed += count)
        {
            seeds.Add(seed);
        }

        return seeds;
    }

    private static long Size(CommandArgs args, string name)
    {
        string? text = args.Single(name);
        if (text is null)
        {
            return 0;
        }

        var key = new IntegerKey(name, "a size", 512, 512, 1L << 40, isByteSize: true);
        if (!key.TryParse(text, out object? value, out string reason))
        {
            throw new UsageException($"{name}: {reason}");
        }

        long bytes = (long)value!;
        if (bytes % 512 != 0)
        {
            throw new UsageException($"{name}: {bytes} is not a whole number of 512-byte blocks, e.g. 128k or 64M");
        }

        return bytes;
    }

    private static double Fraction(CommandArgs args, string name, double defaultValue, double max)
    {
        string? text = args.Single(name);
        if (text is null)
        {
            return defaultValue;
        }

        if (
            !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || value < 0
            || value > max
        )
        {
            throw new UsageException(
                $"{name}: '{text}' is not a number from 0 to {max.ToString(CultureInfo.InvariantCulture)}"
            );
        }

        return value;
    }

    /// <summary>A rate in commands per second: a positive number, 0 when not given.</summary>
    private static double Rate(CommandArgs args, string name)
    {
        string? text = args.Single(name);
        if (text is null)
        {
            return 0;
        }

        if (
            !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || !(value > 0)
            || double.IsInfinity(value)
        )
        {
            throw new UsageException($"{name}: '{text}' is not a positive number of commands per second");
        }

        return value;
    }
}

/// <summary>The <c>--json</c> report: <c>{"runs":[RUN,...]}</c> with the fields of DESIGN.md section 6.</summary>
/// <summary>One seed's run as it finished: its result, or why its device could not even be formatted.</summary>
internal sealed record SeedOutcome(
    ulong Seed,
    string Workload,
    SwarmDraw? Draw,
    string Replay,
    SimResult? Result,
    string? Dead,
    string? TraceFile
);

/// <summary>
/// What a report says of the campaign it is of: its seeds, shard and options, the seeds whose device died, and how to
/// resume it.
/// </summary>
internal sealed record SimCampaign(
    string Seeds,
    string? Shard,
    string Options,
    IReadOnlyList<(ulong Seed, string Message)> DeadSeeds,
    string? Resume
);

internal static class SimReport
{
    public static void Write(string path, IReadOnlyList<SimResult> results, SimCampaign? campaign = null)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        if (campaign is not null)
        {
            // What `sim merge` checks shards by: one version, one range, one set of options.
            json.WriteString("version", SimMerge.Version);
            json.WriteStartObject("campaign");
            json.WriteString("seeds", campaign.Seeds);
            if (campaign.Shard is { } shard)
            {
                json.WriteString("shard", shard);
            }

            json.WriteString("options", campaign.Options);
            json.WriteEndObject();
            if (campaign.Resume is { } resume)
            {
                // Stopped by Ctrl-C: the runs are those that finished; this command line runs the rest.
                json.WriteString("interruptedResume", resume);
            }

            json.WriteStartArray("deadSeeds");
            foreach ((ulong seed, string message) in campaign.DeadSeeds)
            {
                json.WriteStartObject();
                json.WriteNumber("seed", seed);
                json.WriteString("message", message);
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteStartArray("runs");
        foreach (SimResult run in results)
        {
            WriteRun(json, run);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteCounts(Utf8JsonWriter json, string name, SortedDictionary<string, int> counts)
    {
        json.WriteStartObject(name);
        foreach ((string key, int count) in counts)
        {
            json.WriteNumber(key, count);
        }

        json.WriteEndObject();
    }

    private static void WriteRun(Utf8JsonWriter json, SimResult run)
    {
        json.WriteStartObject();
        json.WriteNumber("seed", run.Options.Seed);
        json.WriteString("workload", run.Options.Workload);
        if (run.Options.Parameters.Trace is { } trace)
        {
            json.WriteStartObject("trace");
            json.WriteString("file", trace.Path);
            json.WriteString("format", TraceFormats.NameOf(trace.Format));
            json.WriteString("fit", trace.Fit == TraceFit.Wrap ? "wrap" : "scale");
            json.WriteNumber("speed", trace.Speed);
            json.WriteEndObject();
        }

        if (run.Notes.Count > 0)
        {
            json.WriteStartArray("notes");
            foreach (string note in run.Notes)
            {
                json.WriteStringValue(note);
            }

            json.WriteEndArray();
        }

        json.WritePropertyName("config");
        run.Config.WriteJson(json);
        json.WriteNumber("hostOps", run.HostOps);
        json.WriteNumber("hostBytesWritten", run.HostBytesWritten);
        json.WriteNumber("nandPagesRead", run.NandPagesRead);
        json.WriteNumber("nandPagesProgrammed", run.NandPagesProgrammed);
        json.WriteNumber("nandBlocksErased", run.NandBlocksErased);
        json.WriteNumber("nandPageBytes", run.NandPageBytes);
        json.WriteNumber("nandBytesProgrammed", run.NandBytesProgrammed);
        json.WriteNumber("waf", run.Waf);
        json.WriteNumber("wafData", run.WafData);
        json.WriteNumber("spareFactor", run.SpareFactor);
        json.WriteNumber("modelWaf", run.ModelWaf);
        json.WriteNumber("trimFraction", run.Options.Parameters.TrimFraction);
        json.WriteNumber("effectiveSpareFactor", run.EffectiveSpareFactor);
        json.WriteNumber("modelWafEffective", run.ModelWafEffective);
        json.WriteNumber("powerCuts", run.PowerCuts.Total);
        if (run.EndOfLife is { } endOfLife)
        {
            json.WriteString("endOfLife", endOfLife);
        }

        json.WriteStartObject("powerCutDetail");
        json.WriteNumber("insideRecovery", run.PowerCuts.InRecovery);
        json.WriteNumber("onHoldUpEnergy", run.PowerCuts.HoldUpSaves);
        json.WriteNumber("tornPrograms", run.PowerCuts.TornPrograms);
        json.WriteNumber("tornErases", run.PowerCuts.TornErases);
        json.WriteNumber("unflushedSectors", run.PowerCuts.UnflushedSectors);
        json.WriteNumber("unflushedSectorsLost", run.PowerCuts.UnflushedSectorsLost);
        json.WriteNumber("cutsArmed", run.PowerCuts.Armed);
        json.WriteNumber("dirtySectorsWhenArmed", run.PowerCuts.DirtySectorsWhenArmed);
        WriteCounts(json, "byOperation", run.PowerCuts.ByOperation);
        WriteCounts(json, "byActivity", run.PowerCuts.ByActivity);
        json.WriteEndObject();
        json.WriteStartArray("violations");
        foreach (Violation violation in run.Violations)
        {
            json.WriteStartObject();
            json.WriteString("class", violation.ClassName);
            json.WriteNumber("sector", violation.Sector);
            json.WriteString("detail", violation.Detail);
            json.WriteString("history", violation.History);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteNumber("nandPageOpsPerWallSecond", run.NandPageOpsPerWallSecond);
        json.WriteNumber("bytesCopied", run.BytesCopied);
        json.WriteNumber("nand4KPageOpsPerWallSecond", run.Nand4KPageOpsPerWallSecond);
        json.WriteNumber("memcpyFloorSeconds", run.MemcpyFloorSeconds);
        json.WriteNumber("wallOverMemcpyFloor", run.WallOverMemcpyFloor);
        json.WriteString("traceHash", run.TraceHash.ToString("x16", CultureInfo.InvariantCulture));
        json.WriteNumber("wallSeconds", run.WallSeconds);
        json.WriteNumber("fillWallSeconds", run.FillWallSeconds);
        json.WriteNumber("warmupWallSeconds", run.WarmupWallSeconds);
        json.WriteNumber("hostOpsPerWallSecond", run.HostOpsPerWallSecond);
        json.WriteNumber("virtualSeconds", run.VirtualSeconds);
        json.WriteStartObject("latencyMicroseconds");
        json.WriteNumber("p50", run.LatencyMicroseconds.P50);
        json.WriteNumber("p99", run.LatencyMicroseconds.P99);
        json.WriteNumber("p999", run.LatencyMicroseconds.P999);
        json.WriteEndObject();
        json.WriteNumber("queueDepth", run.QueueDepth);
        json.WriteNumber("readsOverlappingWrites", run.ReadsOverlappingWrites);
        json.WriteNumber("writesOverlappingWrites", run.WritesOverlappingWrites);
        json.WriteNumber("measuredVirtualSeconds", run.MeasuredVirtualSeconds);
        json.WriteNumber("iops", run.Iops);
        json.WriteNumber("hostBytesRead", run.HostBytesRead);
        json.WriteStartObject("operations");
        foreach (OperationLatency operation in run.Operations)
        {
            json.WriteStartObject(operation.Operation);
            json.WriteNumber("count", operation.Count);
            json.WriteStartObject("latencyMicroseconds");
            json.WriteNumber("mean", operation.Mean);
            json.WriteNumber("p50", operation.P50);
            json.WriteNumber("p99", operation.P99);
            json.WriteNumber("p999", operation.P999);
            json.WriteNumber("max", operation.Max);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteStartObject("wear");
        json.WriteNumber("minErases", run.Wear.MinErases);
        json.WriteNumber("meanErases", run.Wear.MeanErases);
        json.WriteNumber("maxErases", run.Wear.MaxErases);
        json.WriteNumber("badBlocks", run.Wear.BadBlocks);
        json.WriteEndObject();
        if (run.Cache is { } cache)
        {
            json.WriteStartObject("cache");
            json.WriteString("trimPolicy", cache.Policy);
            json.WriteNumber("meanBytesHeld", cache.MeanBytesHeld);
            json.WriteNumber("bytesMigrated", cache.BytesMigrated);
            json.WriteNumber("bytesZeroed", cache.BytesZeroed);
            json.WriteNumber("hitRatio", cache.HitRatio);
            json.WriteNumber("trimLatencyP50Microseconds", cache.TrimLatencyMicroseconds.P50);
            json.WriteNumber("trimLatencyP99Microseconds", cache.TrimLatencyMicroseconds.P99);
            json.WriteNumber("sectorsFilled", cache.Statistics.SectorsFilled);
            json.WriteNumber("sectorsWrittenBack", cache.Statistics.SectorsWrittenBack);
            json.WriteNumber("evictions", cache.Statistics.Evictions);
            json.WriteNumber("partialPagePunches", cache.Statistics.PartialPagePunches);
            json.WriteNumber("splitFallbacks", cache.Statistics.SplitFallbacks);
            json.WriteNumber("migrateFallbacks", cache.Statistics.MigrateFallbacks);
            json.WriteNumber("cleanPagesReclaimed", cache.Statistics.CleanPagesReclaimed);
            json.WriteNumber("largeFrameFallbacks", cache.Statistics.LargeFrameFallbacks);
            json.WriteNumber("readsPastTheCache", cache.Statistics.ReadsPastTheCache);
            json.WriteEndObject();
        }

        json.WriteStartObject("ftl");
        json.WriteNumber("gcVictims", run.Ftl.GcVictims);
        json.WriteNumber("sectorsRelocated", run.Ftl.SectorsRelocated);
        json.WriteNumber("checkpoints", run.Ftl.Checkpoints);
        json.WriteNumber("wearLevelingMoves", run.Ftl.WearLevelingMoves);
        json.WriteNumber("hostUnitsProgrammed", run.Ftl.HostUnitsProgrammed);
        json.WriteNumber("coldUnitsProgrammed", run.Ftl.ColdUnitsProgrammed);
        json.WriteNumber("hostSectorsWritten", run.Ftl.HostSectorsWritten);
        json.WriteNumber("foregroundGcVictims", run.Ftl.ForegroundGcVictims);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
