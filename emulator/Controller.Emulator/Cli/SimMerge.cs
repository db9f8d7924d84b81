using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Controller.Cli;
using Controller.Emulator.Sim;

namespace Controller.Emulator.Cli;

/// <summary>
/// <c>ssd-emulator sim merge</c>: joins the <c>--json</c> reports of a campaign's shards (each
/// machine's <c>--shard K/N</c>) into the report one machine would have written, after checking
/// that they are of one campaign (the same seeds, options and version) and cover it exactly once.
/// </summary>
internal static class SimMerge
{
    /// <summary>The product version a report is written by; shards of different versions do not merge.</summary>
    public static string Version { get; } =
        typeof(SimMerge).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? "unknown";

    public static VerbSpec Verb(TextWriter output) =>
        new(
            "merge",
            "join the --json reports of a campaign's shards into one",
            "Reads the --json report of every shard of a campaign (sim --seeds A..B --shard K/N on N machines), checks that they are of one campaign (the same --seeds, the same options, the same version of the emulator), that no shard was interrupted, and that together they cover every seed exactly once, then writes the report one machine running the whole range would have written (runs in seed order) and prints the campaign's figures. Exits 1 if any run found a violation, 2 if the shards do not make one campaign.",
            [
                new("--json", "FILE", "where the joined report goes (required)"),
                new(
                    "--report",
                    "FILE.html",
                    "also write the campaign as one HTML page: its seeds, power cuts and violations by class"
                ),
            ],
            (args, _) => Task.FromResult(Run(args, output))
        )
        {
            Arguments = [new("SHARD", "the shards' reports (shard-*.json)", Many: true)],
            Epilogue = """
                Example:
                  ssd-emulator sim merge shard-*.json --json campaign.json
                """,
        };

    public static int Run(CommandArgs args, TextWriter output)
    {
        string target = args.Single("--json")
            ?? throw new UsageException("--json FILE is required: where the joined report goes");
        if (args.Positionals.Count == 0)
        {
            throw new UsageException(
                "name the shards' reports: ssd-emulator sim merge shard-*.json --json campaign.json"
            );
        }

        var shards = args.Positionals.Select(Read).ToList();
        ShardReport first = shards[0];
        foreach (ShardReport shard in shards.Skip(1))
        {
            Same(first, shard, "version", s => s.Version);
            Same(first, shard, "--seeds", s => s.Seeds);
            Same(first, shard, "options", s => s.Options);
            Same(first, shard, "shard count", s => s.Count.ToString(CultureInfo.InvariantCulture));
        }

        ulong count = first.Count;
        var missing = Enumerable
            .Range(0, (int)Math.Min(count, int.MaxValue))
            .Select(i => (ulong)i)
            .Except(shards.Select(s => s.Index))
            .ToList();
        var twice = shards.GroupBy(s => s.Index).Where(g => g.Count() > 1).ToList();
        if (twice.Count > 0)
        {
            throw new UsageException(
                $"shard {twice[0].Key}/{count} is given twice: {string.Join(" and ", twice[0].Select(s => s.Path))}"
            );
        }

        if (missing.Count > 0)
        {
            throw new UsageException(
                $"shard{(missing.Count > 1 ? "s" : string.Empty)} {string.Join(", ", missing.Take(8).Select(k => $"{k}/{count}"))}{(missing.Count > 8 ? ", ..." : string.Empty)} of --seeds {first.Seeds} {(missing.Count > 1 ? "are" : "is")} missing"
            );
        }

        (ulong low, ulong high) = Range(first);
        var seen = new Dictionary<ulong, string>();
        foreach (ShardReport shard in shards)
        {
            foreach (
                ulong seed in shard
                    .Runs.Select(r => r.GetProperty("seed").GetUInt64())
                    .Concat(shard.Dead.Select(d => d.GetProperty("seed").GetUInt64()))
            )
            {
                if (seed < low || seed > high || (seed - low) % count != shard.Index)
                {
                    throw new UsageException(
                        $"{shard.Path}: seed {seed} is not of shard {shard.Index}/{count} of --seeds {first.Seeds}"
                    );
                }

                if (!seen.TryAdd(seed, shard.Path))
                {
                    throw new UsageException($"seed {seed} is in both {seen[seed]} and {shard.Path}");
                }
            }
        }

        ulong expected = high - low + 1;
        if ((ulong)seen.Count != expected)
        {
            throw new UsageException(
                $"the shards hold {seen.Count} of the {expected} seeds of --seeds {first.Seeds}; a shard's report is incomplete"
            );
        }

        var runs = shards.SelectMany(s => s.Runs).OrderBy(r => r.GetProperty("seed").GetUInt64()).ToList();
        var dead = shards.SelectMany(s => s.Dead).OrderBy(d => d.GetProperty("seed").GetUInt64()).ToList();
        using (var stream = new FileStream(target, FileMode.Create, FileAccess.Write))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("version", first.Version);
            json.WriteStartObject("campaign");
            json.WriteString("seeds", first.Seeds);
            json.WriteString("options", first.Options);
            json.WriteNumber("shards", count);
            json.WriteEndObject();
            json.WriteStartArray("deadSeeds");
            dead.ForEach(d => d.WriteTo(json));
            json.WriteEndArray();
            json.WriteStartArray("runs");
            runs.ForEach(r => r.WriteTo(json));
            json.WriteEndArray();
            json.WriteEndObject();
        }

        var byClass = runs.SelectMany(r => r.GetProperty("violations").EnumerateArray())
            .GroupBy(v => v.GetProperty("class").GetString())
            .ToDictionary(g => g.Key ?? "?", g => g.Count());
        long cuts = runs.Sum(r => r.GetProperty("powerCuts").GetInt64());
        int failed = runs.Count(r => r.GetProperty("violations").GetArrayLength() > 0) + dead.Count;
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"campaign: seeds={expected} (--seeds {first.Seeds}, {count} shards) failed={failed} power-cuts={cuts} violations={byClass.Values.Sum()}{(byClass.Count > 0 ? $" ({string.Join(", ", byClass.Select(c => $"{c.Key} {c.Value}"))})" : string.Empty)} dead-devices={dead.Count}"
            )
        );
        output.WriteLine($"json: {target}");
        if (args.Single("--report") is { } html)
        {
            Reports.HtmlReport page = Page(first, count, runs, dead);
            page.Write(html);
            output.WriteLine($"report: {html} ({page.Charts} charts)");
        }

        return failed == 0 ? ExitCodes.Done : ExitCodes.Failure;
    }

    /// <summary>The joined campaign as one HTML page, from the shards' runs.</summary>
    private static Reports.HtmlReport Page(
        ShardReport first,
        ulong shards,
        List<JsonElement> runs,
        List<JsonElement> dead
    )
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        var page = new Reports.HtmlReport($"ssd-emulator sim campaign: --seeds {first.Seeds}, {shards} shards");
        page.Paragraph($"ssd-emulator sim --seeds {first.Seeds} {first.Options} (version {first.Version})");
        Dictionary<string, int> byClass = Violation.CountByClass(
            runs.SelectMany(r => r.GetProperty("violations").EnumerateArray())
                .Select(v => v.GetProperty("class").GetString() ?? "?"),
            dead.Count
        );
        page.Figures(
            "The campaign",
            [
                ("seeds", (runs.Count + dead.Count).ToString(c)),
                (
                    "seeds that failed",
                    (runs.Count(r => r.GetProperty("violations").GetArrayLength() > 0) + dead.Count).ToString(c)
                ),
                ("power cuts", runs.Sum(r => r.GetProperty("powerCuts").GetInt64()).ToString(c)),
                ("violations", byClass.Values.Sum().ToString(c)),
            ]
        );
        SimHtmlReport.ViolationsByClass(page, byClass);
        page.Chart(
            Reports.Charts.Lines(
                "Power cuts and write amplification per seed",
                "seed",
                "count / WAF",
                [
                    new Reports.Series(
                        "power cuts",
                        [
                            .. runs.Select(r =>
                                (
                                    (double)r.GetProperty("seed").GetUInt64(),
                                    (double)r.GetProperty("powerCuts").GetInt64()
                                )
                            ),
                        ]
                    ),
                    new Reports.Series(
                        "waf",
                        [
                            .. runs.Select(r =>
                                ((double)r.GetProperty("seed").GetUInt64(), r.GetProperty("waf").GetDouble())
                            ),
                        ]
                    ),
                ]
            ),
            "Each seed's power cuts and its write amplification."
        );
        page.Table(
            "Seeds",
            ["seed", "workload", "host ops", "waf", "power cuts", "violations", "trace hash"],
            runs.Select(r =>
                (IReadOnlyList<string>)
                    [
                        r.GetProperty("seed").GetUInt64().ToString(c),
                        r.GetProperty("workload").GetString() ?? "?",
                        r.GetProperty("hostOps").GetInt64().ToString(c),
                        r.GetProperty("waf").GetDouble().ToString("0.000", c),
                        r.GetProperty("powerCuts").GetInt64().ToString(c),
                        r.GetProperty("violations").GetArrayLength().ToString(c),
                        r.GetProperty("traceHash").GetString() ?? "?",
                    ]
            )
        );
        return page;
    }

    private static (ulong Low, ulong High) Range(ShardReport shard)
    {
        string[] parts = shard.Seeds.Split("..");
        return parts.Length == 2
            ? (ulong.Parse(parts[0], CultureInfo.InvariantCulture), ulong.Parse(parts[1], CultureInfo.InvariantCulture))
            : (
                ulong.Parse(shard.Seeds, CultureInfo.InvariantCulture),
                ulong.Parse(shard.Seeds, CultureInfo.InvariantCulture)
            );
    }

    private static void Same(ShardReport first, ShardReport other, string what, Func<ShardReport, string> of)
    {
        if (of(first) != of(other))
        {
            throw new UsageException(
                $"{other.Path} is of another campaign than {first.Path}: {what} '{of(other)}', not '{of(first)}'"
            );
        }
    }

    private static ShardReport Read(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new UsageException($"{path}: not a sim report ({e.Message})");
        }

        JsonElement root = document.RootElement;
        if (
            root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("campaign", out JsonElement campaign)
            || !root.TryGetProperty("runs", out JsonElement runs)
        )
        {
            throw new UsageException(
                $"{path}: not a sim --json report of a campaign (it has no \"campaign\" and \"runs\"; written by an older version?)"
            );
        }

        if (root.TryGetProperty("interruptedResume", out JsonElement resume))
        {
            throw new UsageException(
                $"{path} was interrupted before its shard was done; finish it with: {resume.GetString()}"
            );
        }

        string shard =
            campaign.TryGetProperty("shard", out JsonElement k) && k.ValueKind == JsonValueKind.String
                ? k.GetString()!
                : "0/1";
        (ulong index, ulong count) = Shard.Parse(shard);
        return new ShardReport(
            path,
            root.GetProperty("version").GetString() ?? "unknown",
            campaign.GetProperty("seeds").GetString() ?? string.Empty,
            campaign.GetProperty("options").GetString() ?? string.Empty,
            index,
            count,
            [.. runs.EnumerateArray()],
            root.TryGetProperty("deadSeeds", out JsonElement dead) ? [.. dead.EnumerateArray()] : []
        );
    }

    private sealed record ShardReport(
        string Path,
        string Version,
        string Seeds,
        string Options,
        ulong Index,
        ulong Count,
        List<JsonElement> Runs,
        List<JsonElement> Dead
    );
}
