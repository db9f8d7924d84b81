using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

/// <summary>The SPI NAND driver against the emulated chip: the whole byte protocol, end to end.</summary>
[Trait("Category", "Unit")]
public sealed class EmulatedSpiNandTests
{
    [Fact]
    public void APageProgrammedThroughTheDriverReadsBackWhole()
    {
        (SpiNandDevice driver, _, _, VirtualClock clock) = Open();
        driver.Initialize();
        (byte[] data, byte[] spare) = Page(11);

        NandCompletion erase = driver.EraseBlock(3);
        NandCompletion program = driver.ProgramPage(new PageAddress(3, 0), data, spare);
        byte[] readData = new byte[2048],
            readSpare = new byte[64];
        NandCompletion read = driver.ReadPage(new PageAddress(3, 0), readData, readSpare);

        Assert.Equal((NandStatus.Ok, NandStatus.Ok, NandStatus.Ok), (erase.Status, program.Status, read.Status));
        Assert.Equal(data, readData);
        Assert.Equal(spare, readSpare);
        Assert.True(
            clock.NowNanoseconds >= 250_000 + 2_000_000,
            "BUSY held for the datasheet's program and erase times on the virtual clock"
        );
    }

    [Fact]
    public void EveryBlockIsLockedAtPowerUpUntilTheDriverUnlocksIt()
    {
        (SpiNandDevice driver, EmulatedSpiNandChip chip, _, _) = Open();
        (byte[] data, byte[] spare) = Page(12);

        NandCompletion locked = driver.ProgramPage(new PageAddress(4, 0), data, spare);
        driver.Initialize();
        NandCompletion unlocked = driver.ProgramPage(new PageAddress(4, 0), data, spare);
        chip.PowerOn();
        NandCompletion lockedAgain = driver.ProgramPage(new PageAddress(4, 1), data, spare);

        Assert.Equal(
            (NandStatus.ProgramFailed, NandStatus.Ok, NandStatus.ProgramFailed),
            (locked.Status, unlocked.Status, lockedAgain.Status)
        );
    }

    [Fact]
    public void ProgramAndEraseFailuresOfTheArrayAreReportedAsPFailAndEFail()
    {
        (SpiNandDevice driver, _, EmulatedNand array, _) = Open();
        driver.Initialize();
        (byte[] data, byte[] spare) = Page(13);

        array.FailNext(programs: 1, erases: 0);
        NandCompletion program = driver.ProgramPage(new PageAddress(5, 0), data, spare);
        array.FailNext(programs: 0, erases: 1);
        NandCompletion erase = driver.EraseBlock(6);

        Assert.Equal(NandStatus.ProgramFailed, program.Status);
        Assert.Equal(NandStatus.EraseFailed, erase.Status);
    }

    [Fact]
    public void BitErrorsBeyondTheEccAreAnUncorrectableRead()
    {
        (SpiNandDevice driver, _, EmulatedNand array, _) = Open();
        driver.Initialize();
        (byte[] data, byte[] spare) = Page(14);
        driver.ProgramPage(new PageAddress(7, 0), data, spare);

        NandCompletion clean = driver.ReadPage(new PageAddress(7, 0), new byte[2048], new byte[64]);
        array.SetFaultRates(rawBitErrorRate: 0.01, programFailProbability: 0, eraseFailProbability: 0);
        NandCompletion noisy = driver.ReadPage(new PageAddress(7, 0), new byte[2048], new byte[64]);

        Assert.Equal(NandStatus.Ok, clean.Status);
        Assert.Equal(NandStatus.Uncorrectable, noisy.Status);
    }

    [Fact]
    public void FactoryBadBlocksAreFoundByTheirMarkerAndUnknownCommandsAreIgnored()
    {
        (SpiNandDevice driver, EmulatedSpiNandChip chip, _, _) = Open(["faults.factoryBadBlockFraction=0.05"]);
        driver.Initialize();
        chip.Write([0xAB, 0x12, 0x34]); // not a command of this chip

        int[] bad = [.. Enumerable.Range(0, 1024).Where(driver.IsFactoryBad)];

        Assert.DoesNotContain(0, bad);
        Assert.InRange(bad.Length, 20, 110);
        (byte[] data, byte[] spare) = Page(15);
        Assert.Equal(NandStatus.Ok, driver.ProgramPage(new PageAddress(bad[0] == 1 ? 2 : 1, 0), data, spare).Status);
        Assert.Equal(NandStatus.ProgramFailed, driver.ProgramPage(new PageAddress(bad[0], 1), data, spare).Status);
    }

    [Fact]
    public void TheFtlRunsOverTheSpiPathAndKeepsFlushedSectorsAcrossAPowerCut()
    {
        (SpiNandDevice driver, EmulatedSpiNandChip chip, EmulatedNand array, VirtualClock clock) = Open([
            "nand.blocksPerDie=128",
            "nand.pagesPerBlock=32",
        ]);
        ResolvedConfig config = ConfigLoader.Load(
            Controller.Emulator.EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
            ["nand.blocksPerDie=128", "nand.pagesPerBlock=32"]
        );
        driver.Initialize();
        var ftl = Controller.Firmware.Ftl.FlashTranslationLayer.Mount(
            driver,
            clock,
            new Controller.Common.Prng(1),
            Controller.Firmware.Ftl.FtlConfig.Options(config)
        );
        byte[] sector = new byte[4096];
        for (int i = 0; i < 300; i++)
        {
            sector.AsSpan().Fill((byte)(i + 1));
            ftl.Write(i, sector);
        }

        ftl.Flush();
        for (int i = 300; i < 340; i++)
        {
            sector.AsSpan().Fill(0xEE);
            ftl.Write(i, sector);
        }

        array.PowerCut();
        array.PowerOn();
        chip.PowerOn();
        driver.Initialize();
        var recovered = Controller.Firmware.Ftl.FlashTranslationLayer.Mount(
            driver,
            clock,
            new Controller.Common.Prng(2),
            Controller.Firmware.Ftl.FtlConfig.Options(config)
        );

        Assert.False(recovered.LastMount.Formatted);
        for (int i = 0; i < 300; i++)
        {
            Assert.True(recovered.Read(i, sector).Ok);
            Assert.True(sector.AsSpan().IndexOfAnyExcept((byte)(i + 1)) < 0, $"sector {i} lost its flushed data");
        }
    }

    [Fact]
    public void APowerCutInsideTheProgramsBusyWindowTearsOnlyThatPage()
    {
        // The cut strikes from below the chip, at an instant drawn inside the program's BUSY window
        // (while the driver polls C0h), as the sim's cuts do: the driver's call unwinds, the page
        // being programmed is left erased, torn or whole, and pages programmed before it are intact.
        ResolvedConfig config = ConfigLoader.Load(
            Controller.Emulator.EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
            []
        );
        var clock = new VirtualClock();
        using EmulatedNand array = EmulatedNand.InMemory(config, clock);
        var faulting = new Controller.Emulator.Sim.FaultingNand(
            array,
            clock,
            new Controller.Common.Prng(7),
            new Controller.Hosting.ExecutionTrace(null)
        );
        SpiNandChip description = SpiNandChip.FromConfig(config);
        var chip = new EmulatedSpiNandChip(faulting, description, clock);
        var driver = new SpiNandDevice(chip, description, clock);
        driver.Initialize();
        Assert.Equal(NandStatus.Ok, driver.EraseBlock(9).Status);
        var outcomes = new List<PowerCutOutcome>();
        for (int page = 0; page < 40; page += 2)
        {
            (byte[] before, byte[] beforeSpare) = Page(page);
            Assert.Equal(NandStatus.Ok, driver.ProgramPage(new PageAddress(9, page), before, beforeSpare).Status);
            long issued = clock.NowNanoseconds;
            faulting.CutDuring(1);
            Assert.Throws<Controller.Emulator.Sim.PowerCutException>(() =>
                driver.ProgramPage(new PageAddress(9, page + 1), Page(page + 1).Data, Page(page + 1).Spare)
            );

            Controller.Emulator.Sim.PowerCutPoint cut = faulting.LastCut!;
            Assert.Equal(NandOperationKind.Program, cut.Operation);
            // Inside the window: the page's 2112 bytes moving at 13 MB/s (162 us), then tPROG (250 us).
            Assert.InRange(cut.AtNanoseconds, issued, issued + 162_500 + 250_000);

            // A cut while the page was still moving to the array (the transfer before tPROG)
            // leaves no torn operation: the program never started.
            PowerCutOutcome outcome =
                cut.Torn.Count == 0 ? PowerCutOutcome.NotStarted : Assert.Single(cut.Torn).Outcome;
            Assert.All(cut.Torn, t => Assert.Equal(new PageAddress(9, page + 1), t.Address));
            outcomes.Add(outcome);
            array.PowerOn();
            chip.PowerOn();
            driver.Initialize();
            byte[] data = new byte[2048],
                spare = new byte[64];

            // Every page programmed before the cut is intact, not only the last.
            for (int earlier = 0; earlier <= page; earlier += 2)
            {
                Assert.Equal(NandStatus.Ok, driver.ReadPage(new PageAddress(9, earlier), data, spare).Status);
                Assert.Equal(Page(earlier).Data, data);
                Assert.Equal(Page(earlier).Spare, spare);
            }

            NandCompletion cutPage = driver.ReadPage(new PageAddress(9, page + 1), data, spare);
            switch (outcome)
            {
                case PowerCutOutcome.NotStarted or PowerCutOutcome.LeftErased:
                    Assert.True(
                        cutPage.Status == NandStatus.Ok && data.AsSpan().IndexOfAnyExcept((byte)0xFF) < 0,
                        $"page {page + 1}, {outcome}: not erased"
                    );
                    break;
                case PowerCutOutcome.Programmed:
                    Assert.Equal(Page(page + 1).Data, data);
                    break;
                default:
                    // Torn: ECC cannot correct it, or it passes ECC with the wrong bits.
                    Assert.True(
                        cutPage.Status == NandStatus.Uncorrectable || !data.AsSpan().SequenceEqual(Page(page + 1).Data),
                        $"page {page + 1}, {outcome}: reads back whole"
                    );
                    break;
            }
        }

        Assert.Contains(PowerCutOutcome.Corrupted, outcomes);
        Assert.Contains(PowerCutOutcome.LeftErased, outcomes);
    }

    [Fact]
    public void TheSpiPathNeedsAChipDescriptionAndOneDie()
    {
        ConfigException e = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(
                Controller.Emulator.EmulatorConfig.Schema,
                Repository.PathOf("hw-config", "emulated", "tiny.json"),
                ["emulator.spi=true"]
            )
        );

        Assert.Contains("emulator.spi", e.Message, StringComparison.Ordinal);
        Assert.Contains(
            "needs a chip description (chip.name, chip.jedecId) and a one-die array",
            e.Message,
            StringComparison.Ordinal
        );
    }

    private static (byte[] Data, byte[] Spare) Page(int seed) =>
        (
            [.. Enumerable.Range(0, 2048).Select(i => (byte)((i * 31) + seed))],
            [.. Enumerable.Range(0, 64).Select(i => (byte)((i * 17) + seed))]
        );

    private static (SpiNandDevice Driver, EmulatedSpiNandChip Chip, EmulatedNand Array, VirtualClock Clock) Open(
        string[]? overrides = null
    )
    {
        ResolvedConfig config = ConfigLoader.Load(
            Controller.Emulator.EmulatorConfig.Schema,
            Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
            overrides ?? []
        );
        var clock = new VirtualClock();
        EmulatedNand array = EmulatedNand.InMemory(config, clock);
        SpiNandChip description = SpiNandChip.FromConfig(config);
        var chip = new EmulatedSpiNandChip(array, description, clock);
        return (new SpiNandDevice(chip, description, clock), chip, array, clock);
    }
}
