using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Emulator.Cli;
using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Hosting;

namespace Controller.Tests.Sim;

/// <summary>
/// <c>ssd-emulator crashtest</c>: what it enumerates, that its prefixes leave the targets as they
/// say, that it catches a device that ignores FUA on TRIM (its canary) and replays what it finds,
/// and its command line.
/// </summary>
[Trait("Category", "Process")]
public sealed class CrashTestTests
{
    private const int Sector = 4096;
    private const int Large = 64 * 1024;

    private static CrashTest NewTest(int length = 2, SimHooks? hooks = null) =>
        new(length, (name, sets) => Profiles.Load(name, sets), []) { Hooks = hooks ?? SimHooks.None };

    [Fact]
    public void TheVocabularyIsEveryKindAtEveryTargetAndAFlush()
    {
        CrashTest test = NewTest();

        Assert.Equal((8 * 7) + 1, test.Vocabulary.Count);
        Assert.Equal(57 + (57 * 57), test.SequencesPerPrefix);
        Assert.Equal(8 * 3 * test.SequencesPerPrefix, test.Cases);
        Assert.Contains(test.Vocabulary, o =>
            o.Name == "Zfn@unaligned"
            && o.Request.Flags == (HostCommandOptions.ForceUnitAccess | HostCommandOptions.NoHole)
        );
        Assert.Equal(HostOpcode.Flush, test.Vocabulary[^1].Request.Opcode);
        HostRequest Target(string name) => test.Vocabulary.Single(o => o.Name == $"W@{name}").Request;
        Assert.Equal((Large + (2 * Sector), Sector), (Target("sector").Offset, Target("sector").Length));
        Assert.Equal(Target("sector").Offset + Sector, Target("neighbour").Offset);
        Assert.Equal((Large, Large / 2), (Target("first-half").Offset, Target("first-half").Length));
        Assert.Equal((Large + (Large / 2), Large / 2), (Target("second-half").Offset, Target("second-half").Length));
        Assert.True(
            Target("across").Offset / Large != (Target("across").Offset + Target("across").Length - 1) / Large,
            "across crosses a large-page boundary"
        );
        Assert.NotEqual(0, Target("unaligned").Offset % Sector);
        Assert.NotEqual(0, (Target("unaligned").Offset + Target("unaligned").Length) % Sector);
        Assert.Equal(0, Target("unaligned").Offset % 512);
    }

    [Fact]
    public void EveryCaseIndexIsADistinctCaseThatParsesBackFromItsId()
    {
        CrashTest test = NewTest();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (long index = 0; index < test.Cases; index += 97)
        {
            CrashCase crashCase = test.Case(index);
            Assert.True(ids.Add(crashCase.Id), crashCase.Id);
            Assert.Equal(crashCase.Id, test.Parse(crashCase.Id).Id);
        }

        Assert.Equal("zero-fill/no-plp/uncached/W@sector", test.Case(0).Id);
        Assert.Equal("evict/plp/dirty/S,S", test.Case(test.Cases - 1).Id);
        Assert.Throws<FormatException>(() => test.Parse("split/no-plp/dirty/Tx@sector"));
        Assert.Throws<FormatException>(() => test.Parse("split/maybe/dirty/T@sector"));
    }

    /// <summary>
    /// The prefixes, seen from the cache's counters: a read of the targets after <c>uncached</c>
    /// misses (filled from NAND), after <c>clean</c> or <c>dirty</c> hits; a FLUSH after
    /// <c>dirty</c> writes the targets back, after <c>clean</c> writes nothing.
    /// </summary>
    [Theory]
    [InlineData("uncached", 1, 0)]
    [InlineData("clean", 0, 0)]
    [InlineData("dirty", 0, 18)]
    public void EachPrefixLeavesTheTargetsAsItsNameSays(string prefix, long misses, long writtenBack)
    {
        CrashDevice device = NewTest().Parse($"split/no-plp/{prefix}/S").Device;
        var script = new List<HostRequest>();
        CrashVocabulary.Prefix(device.Config, prefix, script);
        var clock = new VirtualClock();
        using EmulatedNand nand = EmulatedNand.InMemory(device.Config, clock);
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(
            nand,
            clock,
            new Prng(1),
            FtlConfig.Options(device.Config)
        );
        var loop = new ControllerLoop(
            new LargePageCache(new FtlSectorStore(ftl), CacheConfig.Options(device.Config), clock),
            ftl,
            clock,
            queueDepth: 1
        );
        byte[] buffer = new byte[1 << 20];
        foreach (HostRequest request in script)
        {
            Execute(loop, request, buffer);
        }

        CacheStatistics stats = loop.Cache.Statistics;
        (long missesBefore, long writtenBackBefore) = (stats.SectorMisses, stats.SectorsWrittenBack);
        Execute(loop, new HostRequest(HostOpcode.Read, HostCommandOptions.None, Large, Large), buffer);
        Execute(loop, HostRequest.Flush, buffer);

        Assert.Equal(misses, stats.SectorMisses - missesBefore);
        Assert.Equal(writtenBack, stats.SectorsWrittenBack - writtenBackBefore);
    }

    [Fact]
    public void ACaseIsOneExecution()
    {
        CrashTest test = NewTest();
        CrashCase crashCase = test.Parse("migrate/no-plp/dirty/Tf@unaligned,Zn@across");
        using var first = new StringWriter();
        using var second = new StringWriter();

        CrashCaseResult a = test.Run(crashCase, new CrashCut(CrashCutKind.DuringNand, 2), first);
        CrashCaseResult b = test.Run(crashCase, new CrashCut(CrashCutKind.DuringNand, 2), second);

        Assert.Empty(a.Violations);
        Assert.Contains("power cut", first.ToString(), StringComparison.Ordinal);
        Assert.Equal(first.ToString(), second.ToString());
        Assert.Equal(a.NandOperations, b.NandOperations);
    }

    /// <summary>
    /// The canary: a device that ignores FUA on TRIM. A share of the length-2 cases (every 40th,
    /// across all devices and prefixes) catches it as a resurrected trim, the replay command
    /// printed with it reproduces it, and the same case passes on the device as it is.
    /// </summary>
    [Fact]
    public void LengthTwoCatchesADeviceThatIgnoresFuaOnTrimAndReplaysIt()
    {
        var hooks = new SimHooks(Command: r =>
            r.Opcode == HostOpcode.Trim ? r with { Flags = r.Flags & ~HostCommandOptions.ForceUnitAccess } : r
        );
        using var output = new StringWriter();

        int exitCode = CrashTestCommand.Run(Args("--length", "2", "--shard", "0/40"), output, TextWriter.Null, hooks);

        Assert.Equal(1, exitCode);
        string text = output.ToString();
        Assert.Contains("violation: resurrected-trim", text, StringComparison.Ordinal);
        Assert.DoesNotContain(
            "/plp/",
            text.Split('\n').First(l => l.Contains("case: ", StringComparison.Ordinal)),
            StringComparison.Ordinal
        );
        string replay = text.Split('\n')
            .First(l => l.Contains("replay: ", StringComparison.Ordinal))
            .Split("replay: ")[1]
            .Trim();
        Assert.StartsWith("ssd-emulator crashtest --case '", replay, StringComparison.Ordinal);
        string id = replay.Split('\'')[1];
        string cut = replay.Split("--cut ")[1];
        Assert.Contains("Tf@", id, StringComparison.Ordinal);

        using var replayed = new StringWriter();
        Assert.Equal(1, CrashTestCommand.Run(Args("--case", id, "--cut", cut), replayed, TextWriter.Null, hooks));
        Assert.Contains("violation: resurrected-trim", replayed.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, CrashTestCommand.Run(Args("--case", id), TextWriter.Null, TextWriter.Null, SimHooks.None));
    }

    [Fact]
    public void TheJsonReportCountsSequencesAndCutPointsAndShardsCoverEveryCaseOnce()
    {
        using var temp = new Support.TempDirectory();
        var shards = new List<JsonElement>();
        for (int k = 0; k < 2; k++)
        {
            string json = temp.File($"shard-{k}.json");
            Assert.Equal(
                0,
                CrashTestCommand.Run(
                    Args("--length", "1", "--shard", $"{k}/2", "--json", json, "--jobs", "2"),
                    TextWriter.Null,
                    TextWriter.Null,
                    SimHooks.None
                )
            );
            shards.Add(JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone());
        }

        Assert.Equal(NewTest(1).Cases, shards.Sum(s => s.GetProperty("sequences").GetInt64()));
        Assert.All(shards, s =>
            Assert.True(s.GetProperty("cutPoints").GetInt64() > s.GetProperty("sequences").GetInt64())
        );
        Assert.All(shards, s => Assert.Equal(0, s.GetProperty("violations").GetArrayLength()));
        Assert.All(shards, s => Assert.Equal(8, s.GetProperty("devices").GetArrayLength()));
    }

    [Fact]
    public void ASampleIsSeededAndDistinct()
    {
        using var a = new StringWriter();
        using var b = new StringWriter();
        Assert.Equal(
            0,
            CrashTestCommand.Run(
                Args("--length", "3", "--sample", "40", "--seed", "5"),
                a,
                TextWriter.Null,
                SimHooks.None
            )
        );
        Assert.Equal(
            0,
            CrashTestCommand.Run(
                Args("--length", "3", "--sample", "40", "--seed", "5", "--jobs", "1"),
                b,
                TextWriter.Null,
                SimHooks.None
            )
        );

        string Counts(string text) =>
            text.Split('\n')
                .Single(l => l.StartsWith("crashtest: length 3", StringComparison.Ordinal))
                .Split(':')[2]
                .Split(',')[..2]
                .Aggregate((x, y) => x + y);
        Assert.Equal(Counts(a.ToString()), Counts(b.ToString()));
        Assert.Contains(" 40 sequences", a.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--length 5", "--length 5 is out of range")]
    [InlineData("--seed 3", "--seed draws a --sample")]
    [InlineData("--cut nand:1", "--cut goes with --case")]
    [InlineData("--case split/no-plp/dirty/T@nowhere", "no operation 'T@nowhere'")]
    [InlineData("--case split/no-plp/dirty/T@sector --cut middle", "cut 'middle' is not nand:N")]
    [InlineData("--case split/no-plp/dirty/T@sector --shard 0/2", "--case runs one case")]
    public void BadInputIsOneLineAndExitCodeTwo(string arguments, string expected)
    {
        var (exitCode, output, error) = Support.EmulatorProcess.Run(["crashtest", .. arguments.Split(' ')]);

        Assert.Equal(2, exitCode);
        Assert.Empty(output);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    private static void Execute(ControllerLoop loop, HostRequest request, byte[] buffer)
    {
        Assert.True(
            loop.TrySubmit(
                new HostCommand
                {
                    Opcode = request.Opcode,
                    Flags = request.Flags,
                    Offset = request.Offset,
                    Length = request.Length,
                    Buffer = buffer.AsMemory(0, (int)request.Length),
                }
            )
        );
        HostCompletion completion;
        while (!loop.TryTakeCompletion(out completion))
        {
            loop.Step();
        }

        Assert.Equal(HostStatus.Ok, completion.Status);
    }

    private static CommandArgs Args(params string[] args) =>
        CommandArgs.Parse(CrashTestCommand.Verb(TextWriter.Null), args);
}
