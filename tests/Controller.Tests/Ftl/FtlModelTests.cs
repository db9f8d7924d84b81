using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

/// <summary>
/// Long seeded random sequences of write, trim, flush, read and clean remount against an in-memory reference.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FtlModelTests
{
    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomOperationsReadBackAsTheReferenceSays(int seed)
    {
        var clock = new VirtualClock();
        var prng = new Prng((ulong)seed);
        using EmulatedNand nand = Nands.Shape(Shapes[seed % Shapes.Length], clock, $"faults.seed={seed}");
        var options = new FtlOptions
        {
            SpareFactor = 0.15,
            CheckpointIntervalPages = 256,
            GcPolicy = seed % 2 == 0 ? GcVictimPolicy.Greedy : GcVictimPolicy.CostBenefit,
        };
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, prng.Fork(), options);
        var reference = new ReferenceDevice(ftl.LogicalSectors);
        byte[] buffer = new byte[SectorContent.Bytes];
        for (int op = 0; op < 6000; op++)
        {
            if (prng.NextInt(100) == 0)
            {
                // A clean shutdown: flush, lose power, mount again.
                ftl.Flush();
                reference.Flush();
                nand.PowerCut();
                nand.PowerOn();
                ftl = FlashTranslationLayer.Mount(nand, clock, prng.Fork(), options);
            }

            FtlWorkload.Step(ftl, reference, prng, buffer, $"seed {seed} op {op}");
        }

        for (long sector = 0; sector < reference.Sectors; sector++)
        {
            FtlWorkload.ExpectLatest(ftl, reference, sector, buffer, $"seed {seed}, at the end");
        }
    }

    private static readonly string[] Shapes = ["tiny", "default", "w25n01gv"];

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 24)];
}
