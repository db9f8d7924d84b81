using Controller.Board;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Hosting;
using Controller.Tests.Support;

namespace Controller.Tests.Board;

/// <summary>
/// <c>ssd-board probe</c> on the emulated chip: one that matches its description passes; one whose
/// ID differs, whose parameter page disagrees with the description, or with more bad blocks than
/// allowed fails; a chip holding data is refused the self-test unless --yes, which leaves its block
/// erased; the ONFI parameter page codec against its CRC.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ProbeTests
{
    private static string Profile => Repository.PathOf("hw-config", "boards", "emulated.json");

    [Fact]
    public void AChipThatMatchesItsDescriptionPassesEveryCheckAndExitsZero()
    {
        (int code, string output, _) = Run("probe", "--board", Profile, "--set", "faults.factoryBadBlockFraction=0.01");

        Assert.True(code == 0, output);
        Assert.Contains("  id              EF AA 21", output, StringComparison.Ordinal);
        Assert.Contains("EMULATED W25N01GV, copy 1 of 3", output, StringComparison.Ordinal);
        Assert.Matches(@"bad blocks\s+[1-9]\d? of 1024 marked by the maker \(\d+.*ok \(at most 20\)", output);
        Assert.Matches(@"self-test\s+block 1023: 64 pages programmed, read back, erased ok", output);
        Assert.DoesNotContain("FAIL", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AChipWhoseIdDiffersFailsAtOnceAndWritesNothing()
    {
        (int code, string output, _) = Run(
            "probe",
            "--board",
            Profile,
            "--set",
            "nand.blocksPerDie=256",
            "--set",
            "emulator.spiJedecId=C8 D1 00"
        );

        Assert.Equal(1, code);
        Assert.Contains("C8 D1 00", output, StringComparison.Ordinal);
        Assert.Contains("FAIL: expected EFAA21 (W25N01GV)", output, StringComparison.Ordinal);
        Assert.Contains("Nothing was written", output, StringComparison.Ordinal);
        Assert.DoesNotContain("self-test", output, StringComparison.Ordinal);
    }

    [Fact]
    public void MoreBadBlocksThanAllowedFailTheProbe()
    {
        (int code, string output, _) = Run(
            "probe",
            "--board",
            Profile,
            "--set",
            "nand.blocksPerDie=256",
            "--set",
            "faults.factoryBadBlockFraction=0.2"
        );

        Assert.Equal(1, code);
        Assert.Matches(@"bad blocks\s+\d+ of 256 .* FAIL: more than the 5 allowed", output);
    }

    [Fact]
    public void AParameterPageThatDisagreesWithTheDescriptionFails()
    {
        // The chip on the bus has 64-page blocks; the description says 32 (same ID).
        ResolvedConfig chipConfig = Load("nand.blocksPerDie=256");
        ResolvedConfig described = Load("nand.blocksPerDie=512", "nand.pagesPerBlock=32");
        var clock = new MonotonicClock();
        using EmulatedNand array = EmulatedNand.InMemory(chipConfig, clock);
        var chip = new EmulatedSpiNandChip(array, SpiNandChip.FromConfig(chipConfig), clock);
        SpiNandChip description = SpiNandChip.FromConfig(described);
        using var output = new StringWriter();

        int code = ProbeCommand.Run(
            new SpiNandDevice(chip, description, clock),
            description,
            clock,
            "the test's bus",
            selfTestOnData: false,
            output
        );

        Assert.Equal(1, code);
        Assert.Matches(@"block\s+64 pages\s+FAIL: described 32", output.ToString());
        Assert.Contains("the self-test was not run", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AChipHoldingDataIsRefusedTheSelfTestUnlessYesWhichLeavesItsBlockErased()
    {
        using var temp = new TempDirectory();
        string image = temp.File("chip.img");
        ResolvedConfig config = Load("nand.blocksPerDie=256");
        var clock = new MonotonicClock();
        using (EmulatedNand array = EmulatedNand.OpenImage(image, config, clock))
        {
            byte[] data = new byte[2048];
            byte[] spare = new byte[64];
            Array.Fill(data, (byte)0x42);
            Array.Fill(spare, (byte)0xFF);
            array.ProgramPage(new PageAddress(3, 0), data, spare);
            array.ProgramPage(new PageAddress(255, 5), data, spare);
        }

        (int refused, string refusal, _) = Run(
            "probe",
            "--board",
            Profile,
            "--set",
            "nand.blocksPerDie=256",
            "--image",
            image
        );
        (int yes, string output, _) = Run(
            "probe",
            "--board",
            Profile,
            "--set",
            "nand.blocksPerDie=256",
            "--image",
            image,
            "--yes"
        );

        Assert.Equal(1, refused);
        Assert.Contains("1 blocks hold data", refusal, StringComparison.Ordinal);
        Assert.Contains(
            "FAIL: the self-test writes a block; add --yes to run it anyway",
            refusal,
            StringComparison.Ordinal
        );
        Assert.True(yes == 0, output);
        Assert.Contains("block 255: 64 pages programmed, read back, erased ok", output, StringComparison.Ordinal);
        using EmulatedNand after = EmulatedNand.OpenImage(image, config, clock);
        byte[] page = new byte[2048];
        byte[] spareBack = new byte[64];
        after.ReadPage(new PageAddress(255, 5), page, spareBack);
        Assert.All(page, b => Assert.Equal(0xFF, b));
        after.ReadPage(new PageAddress(3, 0), page, spareBack);
        Assert.All(page, b => Assert.Equal(0x42, b));
    }

    [Fact]
    public void TheParameterPageCodecTakesTheFirstCopyWhoseCrcHolds()
    {
        var page = new OnfiParameterPage("WINBOND", "W25N01GVZEIG", 0xEF, 2048, 64, 64, 1024, 1, 20, 100_000);
        byte[] copy = page.Encode();
        byte[] corrupt = (byte[])copy.Clone();
        corrupt[81] ^= 0x01;

        (OnfiParameterPage? first, int firstCopy) = OnfiParameterPage.Parse([.. copy, .. copy, .. copy]);
        (OnfiParameterPage? second, int secondCopy) = OnfiParameterPage.Parse([.. corrupt, .. copy, .. copy]);
        (OnfiParameterPage? none, int noCopy) = OnfiParameterPage.Parse([.. corrupt, .. corrupt, .. corrupt]);

        Assert.Equal(page, first);
        Assert.Equal(0, firstCopy);
        Assert.Equal(page, second);
        Assert.Equal(1, secondCopy);
        Assert.Null(none);
        Assert.Equal(-1, noCopy);
        // ONFI's CRC-16 of "123456789" (polynomial 8005h, initial 4F4Eh, no reflection), worked out as the remainder of
        // a polynomial division.
        Assert.Equal(0x2771, OnfiParameterPage.Crc16("123456789"u8));
    }

    private static ResolvedConfig Load(params string[] sets) => ConfigLoader.Load(BoardConfig.Schema, Profile, sets);

    private static (int Code, string Output, string Error) Run(params string[] args) =>
        BoardRun.Run(() => throw new InvalidOperationException("an emulated chip needs no machine"), args);
}
