using System.Text.Json;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

/// <summary>
/// The CI campaign: 200 swarm seeds with power cuts, split in two shards run side by side as a
/// batch runner would run them, must hold the invariant everywhere and reach every kind of cut.
/// </summary>
[Trait("Category", "Campaign")]
public sealed class SimCampaignTests
{
    private const int Seeds = 200;

    [Fact]
    public async Task TwoHundredSwarmSeedsWithPowerCutsHoldTheInvariant()
    {
        using var temp = new TempDirectory();
        Task<(int ExitCode, string Output, string Error)>[] shards =
        [
            .. Enumerable
                .Range(0, 2)
                .Select(shard =>
                    Task.Run(() =>
                        EmulatorProcess.Run(
                            TimeSpan.FromMinutes(8),
                            "sim",
                            "--swarm",
                            "--seeds",
                            $"1..{Seeds}",
                            "--shard",
                            $"{shard}/2",
                            "--power-cuts",
                            "8",
                            "--ops",
                            "1500",
                            "--json",
                            temp.File($"shard-{shard}.json")
                        )
                    )
                ),
        ];
        (int ExitCode, string Output, string Error)[] finished = await Task.WhenAll(shards);

        var runs = new List<JsonElement>();
        var documents = new List<JsonDocument>();
        try
        {
            for (int shard = 0; shard < 2; shard++)
            {
                var (exitCode, output, error) = finished[shard];
                Assert.True(exitCode == 0, $"shard {shard}/2 failed:\n{output}{error}");
                Assert.Contains($"campaign: seeds={Seeds / 2} failed=0 ", output, StringComparison.Ordinal);
                JsonDocument document = JsonDocument.Parse(File.ReadAllText(temp.File($"shard-{shard}.json")));
                documents.Add(document);
                JsonElement[] shardRuns = [.. document.RootElement.GetProperty("runs").EnumerateArray()];
                Assert.All(shardRuns, run => Assert.Equal(shard, (int)(run.GetProperty("seed").GetInt64() - 1) % 2));
                runs.AddRange(shardRuns);
            }

            // The shards partition the range: every seed once.
            Assert.Equal(Enumerable.Range(1, Seeds), runs.Select(r => (int)r.GetProperty("seed").GetInt64()).Order());
            Assert.All(runs, run => Assert.Equal(0, run.GetProperty("violations").GetArrayLength()));

            // The swarm and the cuts reached what the invariant is about.
            int Sum(Func<JsonElement, int> pick) => runs.Sum(pick);
            JsonElement Detail(JsonElement run) => run.GetProperty("powerCutDetail");
            int Activity(JsonElement run, string name) =>
                Detail(run).GetProperty("byActivity").TryGetProperty(name, out JsonElement count)
                    ? count.GetInt32()
                    : 0;
            Assert.True(Sum(r => r.GetProperty("powerCuts").GetInt32()) >= Seeds * 6, "the seeds get their cuts");
            Assert.True(Sum(r => Detail(r).GetProperty("insideRecovery").GetInt32()) > 50, "cuts inside recovery");
            Assert.True(Sum(r => Detail(r).GetProperty("tornPrograms").GetInt32()) > 100, "programs torn by a cut");
            Assert.True(Sum(r => Detail(r).GetProperty("tornErases").GetInt32()) > 5, "erases torn by a cut");
            Assert.True(
                Sum(r => Detail(r).GetProperty("onHoldUpEnergy").GetInt32()) > 10,
                "cuts with power-loss protection"
            );
            foreach (string activity in new[] { "host", "gc", "checkpoint", "journal", "recovery" })
            {
                Assert.True(Sum(r => Activity(r, activity)) > 0, $"no cut struck during {activity}");
            }

            string[] workloads = [.. runs.Select(r => r.GetProperty("workload").GetString()!).Distinct()];
            Assert.Equal(8, workloads.Length);
            string[] policies =
            [
                .. runs.Select(r => r.GetProperty("config").GetProperty("cache").GetProperty("trimPolicy").GetString()!)
                    .Distinct(),
            ];
            Assert.Equal(4, policies.Length);
            Assert.Contains(runs, r => r.GetProperty("config").GetProperty("power").GetProperty("plp").GetBoolean());
            Assert.Contains(runs, r => !r.GetProperty("config").GetProperty("power").GetProperty("plp").GetBoolean());
            Assert.Contains(runs, r => r.GetProperty("wear").GetProperty("badBlocks").GetInt32() > 0);
            Assert.True(
                Sum(r => r.GetProperty("readsOverlappingWrites").GetInt32()) > 100,
                "reads in flight with writes to their sectors"
            );
            Assert.True(
                Sum(r => r.GetProperty("writesOverlappingWrites").GetInt32()) > 100,
                "writes in flight together to a common sector"
            );
        }
        finally
        {
            documents.ForEach(d => d.Dispose());
        }
    }
}
