using Controller.Emulator;
using Controller.Emulator.Nand;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Config;

[Trait("Category", "Unit")]
public sealed class ConfigLoaderTests
{
    private const string Source = "profile.json";

    [Fact]
    public void TheDefaultProfileDescribesAGibibyteOfSixteenKibibytePagesOnSeveralDies()
    {
        ResolvedConfig config = ConfigLoader.Load(
            EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "emulated", "default.json"),
            []
        );
        NandGeometry geometry = FirmwareConfig.Geometry(config);

        Assert.True(geometry.Channels > 1);
        Assert.True(geometry.DiesPerChannel > 1);
        Assert.Equal(16384, geometry.PageBytes);
        Assert.True(geometry.SpareBytes > 0);
        Assert.True(geometry.Blocks >= 1000);
        Assert.InRange(geometry.DataBytes, 900L << 20, 1200L << 20);
        Assert.True(NandTiming.FromConfig(config).ProgramNanoseconds > NandTiming.FromConfig(config).ReadNanoseconds);
    }

    [Fact]
    public void TheTinyProfileIsSmall()
    {
        NandGeometry geometry = FirmwareConfig.Geometry(Nands.TinyConfig());

        Assert.True(geometry.DataBytes <= 16L << 20);
        Assert.True(geometry.Channels > 1);
    }

    [Fact]
    public void TheWinbondChipIsDescribedAsItsDatasheetSays()
    {
        ResolvedConfig config = ConfigLoader.Load(
            EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
            []
        );
        NandGeometry geometry = FirmwareConfig.Geometry(config);

        Assert.Equal(new byte[] { 0xEF, 0xAA, 0x21 }, config.Get(FirmwareConfig.ChipJedecId).Span.ToArray());
        Assert.Equal(
            (2048, 64, 64, 1024),
            (geometry.PageBytes, geometry.SpareBytes, geometry.PagesPerBlock, geometry.Blocks)
        );
        Assert.Equal("W25N01GV", config.Get(FirmwareConfig.ChipName));
    }

    [Fact]
    public void SetOverridesAFileValueAndRecordsWhereItCameFrom()
    {
        ResolvedConfig config = Parse("""{ "nand": { "channels": 2 } }""", "nand.channels=8", "nand.pageBytes=4k");

        Assert.Equal(8, config.Get(FirmwareConfig.Channels));
        Assert.Equal(4096, config.Get(FirmwareConfig.PageBytes));
        Assert.Equal("--set nand.channels=8", config.SourceOf(FirmwareConfig.Channels));
        Assert.Equal("default", config.SourceOf(FirmwareConfig.DiesPerChannel));
    }

    [Fact]
    public void FileValuesReplaceDefaultsAndCommentsAreAllowed()
    {
        ResolvedConfig config = Parse(
            """
            {
              // a comment
              "nand": { "diesPerChannel": 4, "pageBytes": "8k", "spareBytes": 448 },
              "timing": { "mode": "realtime" },
            }
            """
        );

        Assert.Equal(4, config.Get(FirmwareConfig.DiesPerChannel));
        Assert.Equal(8192, config.Get(FirmwareConfig.PageBytes));
        Assert.Equal("realtime", config.Get(FirmwareConfig.TimingMode));
        Assert.Equal(Source, config.SourceOf(FirmwareConfig.DiesPerChannel));
    }

    [Theory]
    [InlineData("""{ "nand": { "chanels": 2 } }""", "nand.chanels", "unknown key; did you mean nand.channels?")]
    [InlineData("""{ "bogus": 1 }""", "bogus", "unknown key")]
    [InlineData("""{ "nand": { "channels": "four" } }""", "nand.channels", "is not a whole number")]
    [InlineData("""{ "nand": { "channels": 2.5 } }""", "nand.channels", "is not a whole number")]
    [InlineData(
        """{ "nand": { "channels": 0 } }""",
        "nand.channels",
        "out of range; expected a whole number from 1 to 32"
    )]
    [InlineData("""{ "timing": { "mode": "fast" } }""", "timing.mode", "is not one of none, realtime")]
    [InlineData("""{ "timing": { "readMicroseconds": -1 } }""", "timing.readMicroseconds", "out of range")]
    [InlineData("""{ "nand": 3 }""", "nand", "is a group of keys, not a value")]
    [InlineData("""{ "nand": { "pageBytes": 3000 } }""", "nand.pageBytes", "is not a power of two")]
    [InlineData(
        """{ "nand": { "pageBytes": 4096, "spareBytes": 128, "eccCodewordBytes": 1000 } }""",
        "nand.eccCodewordBytes",
        "1000 does not divide the page of 4096 bytes"
    )]
    [InlineData(
        """{ "nand": { "pageBytes": 4096, "spareBytes": 130, "eccCodewordBytes": 1024 } }""",
        "nand.spareBytes",
        "does not split evenly"
    )]
    [InlineData(
        """{ "nand": { "pageBytes": 2048, "spareBytes": 64, "eccCodewordBytes": 512, "pagesPerBlock": 3 } }""",
        "nand.pagesPerBlock",
        "does not hold whole 4096-byte sectors"
    )]
    [InlineData(
        """{ "nand": { "channels": 32, "diesPerChannel": 16, "blocksPerDie": 1048576 } }""",
        "nand.blocksPerDie",
        "more than 2^31 pages"
    )]
    [InlineData("""{ "faults": { "weakBlocks": "3-4" } }""", "faults.weakBlocks", "is not block:erases")]
    [InlineData(
        """{ "faults": { "weakBlocks": "99999:4" } }""",
        "faults.weakBlocks",
        "block 99999 is outside the array"
    )]
    [InlineData("""{ "chip": { "jedecId": "EF ZZ" } }""", "chip.jedecId", "'ZZ' in 'EF ZZ' is not a hex byte")]
    [InlineData("""{ "nand": { "channels": 2, "channels": 3 } }""", "nand.channels", "is set twice")]
    [InlineData(
        """{ "ftl": { "spareFactor": 0.011 } }""",
        "ftl.spareFactor",
        "open blocks and garbage collection need at least"
    )]
    [InlineData("""{ "ftl": { "gcPolicy": "fifo" } }""", "ftl.gcPolicy", "'fifo' is not one of greedy, cost-benefit")]
    [InlineData("""{ "cache": { "largePageBytes": "48k" } }""", "cache.largePageBytes", "49152 is not a power of two")]
    [InlineData("""{ "cache": { "largePageBytes": "4M" } }""", "cache.largePageBytes", "out of range")]
    [InlineData(
        """{ "cache": { "bytes": "100k" } }""",
        "cache.bytes",
        "is not a whole number of at least 4 large pages"
    )]
    [InlineData(
        """{ "cache": { "trimPolicy": "discard" } }""",
        "cache.trimPolicy",
        "'discard' is not one of zero-fill, split, migrate, evict"
    )]
    [InlineData(
        """{ "power": { "plp": true, "plpBudgetPages": 100 } }""",
        "power.plpBudgetPages",
        "100 page programs cannot save a cache of 16384 dirty sectors"
    )]
    [InlineData(
        """{ "nand": { "pageBytes": 4096, "spareBytes": 16, "eccCodewordBytes": 1024 } }""",
        "nand.spareBytes",
        "cannot hold the FTL's page metadata of 30 bytes"
    )]
    public void ABadValueInAFileIsOneErrorNamingTheFileTheKeyAndTheReason(string json, string key, string reason)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(json));

        Assert.Equal(Source, error.Source);
        Assert.Equal(key, error.Key);
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.StartsWith($"{Source}: {key}: ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("nand.channels=x", "nand.channels", "'x' is not a whole number")]
    [InlineData("nand.chanels=2", "nand.chanels", "unknown key")]
    [InlineData("nand.pageBytes=3000", "nand.pageBytes", "is not a power of two")]
    [InlineData("nandd.channels=2", "nandd.channels", "unknown key; did you mean nand.channels?")]
    public void ABadOverrideIsOneErrorNamingTheOverride(string assignment, string key, string reason)
    {
        var error = Assert.Throws<ConfigException>(() => Parse("{}", assignment));

        Assert.Equal(key, error.Key);
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.EndsWith($"(from --set {assignment})", error.Message, StringComparison.Ordinal);
        Assert.StartsWith(Source, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARuleBrokenByAnOverrideOfAnotherKeyNamesThatOverride()
    {
        var error = Assert.Throws<ConfigException>(() =>
            Parse(
                """{ "nand": { "pageBytes": 4096, "spareBytes": 100, "eccCodewordBytes": 1024 } }""",
                "nand.eccCodewordBytes=512",
                "nand.pageBytes=8k"
            )
        );

        Assert.Equal("nand.spareBytes", error.Key);
        Assert.EndsWith(
            "(from --set nand.pageBytes=8k, --set nand.eccCodewordBytes=512)",
            error.Message,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void AnOverrideWithoutAnEqualsSignIsRejected()
    {
        var error = Assert.Throws<ConfigException>(() => Parse("{}", "nand.channels"));

        Assert.Contains("expected KEY=VALUE", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        var error = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(EmulatorConfig.Schema, "/nonexistent/profile.json", [])
        );

        Assert.Equal("/nonexistent/profile.json: no such file", error.Message);
    }

    [Theory]
    [InlineData("{ \"nand\": ", "not valid JSON (line 1")]
    [InlineData("[1, 2]", "a profile is a JSON object of keys")]
    public void MalformedJsonIsNamed(string json, string reason)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(json));

        Assert.Null(error.Key);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ByteSizesTakeBinarySuffixes()
    {
        Assert.True(FirmwareConfig.PageBytes.TryParse("16k", out object? value, out _));
        Assert.Equal(16384L, value);
        Assert.True(FirmwareConfig.PageBytes.TryParse("64K", out value, out _));
        Assert.Equal(65536L, value);
        Assert.False(FirmwareConfig.PageBytes.TryParse("1G", out _, out string reason));
        Assert.Contains("out of range", reason, StringComparison.Ordinal);
        Assert.False(FirmwareConfig.Channels.TryParse("4k", out _, out _));
    }

    private static ResolvedConfig Parse(string json, params string[] overrides) =>
        ConfigLoader.Parse(EmulatorConfig.Schema, Source, json, overrides);
}
