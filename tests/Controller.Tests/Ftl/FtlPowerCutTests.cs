using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

/// <summary>
/// Power cuts during the Nth NAND operation of a workload (inside writes, GC, checkpoints, and
/// recovery itself), then recovery, then every sector checked against DESIGN.md section 3.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FtlPowerCutTests
{
    private const int CutsPerSeed = 10;

    private static readonly string[] Shapes = ["tiny", "default", "w25n01gv"];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void NoPowerCutLosesADurableWriteOrResurrectsADurableTrim(int seed)
    {
        List<string> violations = Run(seed, canary: false);

        Assert.True(
            violations.Count == 0,
            $"seed {seed}: {violations.Count} violations, first: {string.Join(" | ", violations.Take(5))}"
        );
    }

    [Fact]
    public void AFlushThatDoesNotWaitForItsProgramsIsCaught()
    {
        int caught = Enumerable.Range(1, 12).Count(seed => Run(seed, canary: true).Count > 0);

        Assert.True(caught >= 3, $"the broken flush was caught in {caught} of 12 seeds");
    }

    [Fact]
    public void CuttingAtEveryNthOperationOfOneWorkloadBreaksNothing()
    {
        // One fixed workload, cut at operation 1, 1 + 23, 1 + 46, ... so the cuts walk through
        // host programs, GC relocations, erases, journal units, checkpoints and superblocks in turn.
        var violations = new List<string>();
        for (int operation = 1; operation < 2600; operation += 23)
        {
            violations.AddRange(CutOnceAt(operation));
        }

        Assert.True(violations.Count == 0, string.Join(" | ", violations.Take(5)));
    }

    [Fact]
    public void ACutAtEveryNandOperationOfARecoveryLosesNoDurableWriteOrTrim()
    {
        // Recovery writes too (it erases blocks it finds free and takes a checkpoint), so a second
        // cut can land inside it. Walk that cut through every operation of one recovery.
        var violations = new List<string>();
        bool recoveryFinished = false;
        for (int operation = 1; !recoveryFinished; operation++)
        {
            Assert.True(operation < 500, "a recovery of a tiny device takes fewer than 500 NAND operations");
            var clock = new VirtualClock();
            using EmulatedNand inner = Nands.Tiny(clock);
            var nand = new FaultingNand(inner, clock, new Prng(1), new Controller.Hosting.ExecutionTrace(null));
            FtlOptions options = FtlTestOptions.NoTimedCheckpoints;
            FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, new Prng(2), options);
            byte[] buffer = new byte[SectorContent.Bytes];
            for (long sector = 0; sector < 300; sector++)
            {
                SectorContent.Fill(buffer, sector, 1);
                ftl.Write(sector, buffer);
            }

            ftl.CheckpointNow();

            // Twenty flushed trims, one journal unit each: more than the checkpoint's metadata
            // block has room for, so the last ones open a block that holds journal units only.
            for (long sector = 0; sector < 100; sector += 5)
            {
                ftl.Trim(sector, 5);
                ftl.Flush();
            }

            for (long sector = 200; sector < 250; sector++)
            {
                SectorContent.Fill(buffer, sector, 2);
                ftl.Write(sector, buffer);
            }

            ftl.Flush();
            inner.PowerCut();
            inner.PowerOn();
            (recoveryFinished, ftl) = RecoveryCuts.MountCutAt(inner, nand, clock, options, operation);
            for (long sector = 0; sector < 300; sector++)
            {
                Assert.True(ftl.Read(sector, buffer).Ok);
                int expected =
                    sector < 100 ? 0
                    : sector is >= 200 and < 250 ? 2
                    : 1;
                if (SectorContent.Decode(buffer) != (true, expected == 0 ? -1 : sector, expected))
                {
                    violations.Add(
                        $"cut at operation {operation} of recovery: sector {sector} is not generation {expected}"
                    );
                }
            }
        }

        Assert.True(violations.Count == 0, string.Join(" | ", violations.Take(5)));
    }

    [Fact]
    public void ACutBeforeAnErasedBlocksFirstUnitIsWholeKeepsTheBlocksEraseCount()
    {
        // A block erased for reuse carries its erase count in its first unit; cut before that
        // unit is whole, the NAND has no count for it and recovery must take the checkpoint's.
        // A worn device (most blocks erased for reuse), then cuts walked over two blocks' worth of
        // operations of continued writes.
        var clock = new VirtualClock();
        using EmulatedNand inner = Nands.Tiny(clock);
        var nand = new FaultingNand(inner, clock, new Prng(1), new Controller.Hosting.ExecutionTrace(null));
        var options = new FtlOptions { SpareFactor = 0.2 };
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, new Prng(2), options);
        byte[] buffer = new byte[SectorContent.Bytes];
        long written = 0;
        while (written < 4 * ftl.LogicalSectors)
        {
            WriteNext();
        }

        ftl.CheckpointNow();
        // Blocks fresh from the factory are programmed without an erase, so some hold a count of 0
        // to the end; every block's count must survive each cut, and the blocks erased for reuse
        // are most of them.
        uint[] before = [.. Enumerable.Range(0, nand.Geometry.Blocks).Select(ftl.EraseCountOf)];
        Assert.True(before.Count(c => c >= 1) > before.Length / 2, $"most blocks were erased for reuse: {ftl.Wear()}");
        for (int operation = 1; operation <= 2 * ftl.Layout.UnitsPerBlock; operation++)
        {
            nand.CutDuring(operation);
            try
            {
                while (true)
                {
                    WriteNext();
                }
            }
            catch (PowerCutException) { }

            inner.PowerOn();
            nand.CutDuring(0);
            ftl = FlashTranslationLayer.Mount(nand, clock, new Prng(3), options);
            FlashTranslationLayer mounted = ftl;
            int lost = Enumerable.Range(0, before.Length).FirstOrDefault(b => mounted.EraseCountOf(b) < before[b], -1);
            Assert.True(
                lost < 0,
                $"cut at operation {operation}: block {lost} came back with erase count {(lost < 0 ? 0 : mounted.EraseCountOf(lost))}, below the {(lost < 0 ? 0 : before[lost])} it had before"
            );
        }

        void WriteNext()
        {
            long sector = written % ftl.LogicalSectors;
            SectorContent.Fill(buffer, sector, 1 + (int)(written / ftl.LogicalSectors));
            ftl.Write(sector, buffer);
            written++;
        }
    }

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 40)];

    private static List<string> CutOnceAt(int operation)
    {
        var clock = new VirtualClock();
        var prng = new Prng(77);
        using EmulatedNand inner = Nands.Tiny(clock);
        var nand = new FaultingNand(inner, clock, prng.Fork(), new Controller.Hosting.ExecutionTrace(null));
        var options = new FtlOptions { SpareFactor = 0.2, CheckpointIntervalPages = 96 };
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, prng.Fork(), options);
        var reference = new ReferenceDevice(ftl.LogicalSectors);
        byte[] buffer = new byte[SectorContent.Bytes];
        nand.CutDuring(operation);
        try
        {
            RunWorkload(ftl, reference, prng, buffer, seed: 77);
        }
        catch (PowerCutException) { }

        ftl = Remount(inner, nand, nand, clock, prng, options);
        var violations = new List<string>();
        for (long sector = 0; sector < reference.Sectors; sector++)
        {
            FtlReadResult read = ftl.Read(sector, buffer);
            string? violation = read.Ok ? reference.Check(sector, buffer) : "unreadable (dead sector)";
            if (violation is not null)
            {
                violations.Add($"cut at operation {operation}, sector {sector}: {violation}");
            }
        }

        return violations;
    }

    private static List<string> Run(int seed, bool canary)
    {
        var clock = new VirtualClock();
        var prng = new Prng((ulong)seed);
        using EmulatedNand inner = Nands.Shape(Shapes[seed % Shapes.Length], clock, $"faults.seed={seed}");
        var nand = new FaultingNand(inner, clock, prng.Fork(), new Controller.Hosting.ExecutionTrace(null));
        var options = new FtlOptions { SpareFactor = 0.2, CheckpointIntervalPages = 96 };
        INandDevice device = canary ? Sabotage.EarlyAcknowledgingNand(nand) : nand;
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(device, clock, prng.Fork(), options);
        var reference = new ReferenceDevice(ftl.LogicalSectors);
        var violations = new List<string>();
        byte[] buffer = new byte[SectorContent.Bytes];
        for (int cut = 0; cut < CutsPerSeed; cut++)
        {
            nand.CutDuring(1 + prng.NextInt(900));
            try
            {
                RunWorkload(ftl, reference, prng, buffer, seed);
            }
            catch (PowerCutException) { }

            ftl = Remount(inner, nand, device, clock, prng, options);
            for (long sector = 0; sector < reference.Sectors; sector++)
            {
                FtlReadResult read = ftl.Read(sector, buffer);
                string? violation = read.Ok ? reference.Check(sector, buffer) : "unreadable (dead sector)";
                if (violation is not null)
                {
                    violations.Add($"cut {cut} sector {sector}: {violation}");
                }

                reference.Settle(sector, buffer);
            }
        }

        return violations;
    }

    /// <summary>Writes, trims, flushes, background work and exact reads, until the armed cut strikes.</summary>
    private static void RunWorkload(
        FlashTranslationLayer ftl,
        ReferenceDevice reference,
        Prng prng,
        byte[] buffer,
        int seed
    )
    {
        for (long step = 0; ; step++)
        {
            FtlWorkload.Step(ftl, reference, prng, buffer, $"seed {seed} step {step}, before the cut");
        }
    }

    /// <summary>Powers on and mounts; a third of the time the power is cut again inside recovery first.</summary>
    /// <summary>
    /// Powers <paramref name="inner"/> on and mounts the FTL on <paramref name="device"/> (the faulting NAND, or a
    /// decorator of it), cutting the power inside recovery at times.
    /// </summary>
    private static FlashTranslationLayer Remount(
        EmulatedNand inner,
        FaultingNand nand,
        INandDevice device,
        VirtualClock clock,
        Prng prng,
        FtlOptions options
    )
    {
        while (true)
        {
            inner.PowerOn();
            bool cutInRecovery = prng.NextInt(3) == 0;
            nand.CutDuring(cutInRecovery ? 1 + prng.NextInt(400) : 0);
            try
            {
                FlashTranslationLayer ftl = FlashTranslationLayer.Mount(device, clock, prng.Fork(), options);
                nand.CutDuring(0);
                return ftl;
            }
            catch (PowerCutException) { }
        }
    }
}
