using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

/// <summary>Long seeded random sequences of write, trim, flush, read and clean remount against an in-memory reference.</summary>
public sealed class FtlModelTests
{
    private readonly byte[] _expected = new byte[SectorContent.Bytes];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomOperationsReadBackAsTheReferenceSays(int seed)
    {
        var clock = new VirtualClock();
        var prng = new Prng((ulong)seed);
        using EmulatedNand nand = Nands.Shape(Shapes[seed % Shapes.Length], clock, $"faults.seed={seed}");
        var options = new FtlOptions { SpareFactor = 0.15, CheckpointIntervalPages = 256, GcPolicy = seed % 2 == 0 ? GcVictimPolicy.Greedy : GcVictimPolicy.CostBenefit };
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(nand, clock, prng.Fork(), options);
        var reference = new ReferenceDevice(ftl.LogicalSectors);
        byte[] buffer = new byte[SectorContent.Bytes];
        for (int op = 0; op < 6000; op++)
        {
            long sector = (long)prng.NextUInt64((ulong)reference.Sectors);
            switch (prng.NextInt(100))
            {
                case < 55:
                    SectorContent.Fill(buffer, sector, reference.Write(sector));
                    ftl.Write(sector, buffer);
                    break;
                case < 65:
                    long count = 1 + prng.NextInt(16);
                    count = Math.Min(count, reference.Sectors - sector);
                    ftl.Trim(sector, count);
                    reference.Trim(sector, count);
                    break;
                case < 70:
                    ftl.Flush();
                    reference.Flush();
                    break;
                case < 71:
                    // A clean shutdown: flush, lose power, mount again.
                    ftl.Flush();
                    reference.Flush();
                    nand.PowerCut();
                    nand.PowerOn();
                    ftl = FlashTranslationLayer.Mount(nand, clock, prng.Fork(), options);
                    break;
                case < 73:
                    ftl.DoBackgroundWork();
                    break;
                default:
                    FtlReadResult read = ftl.Read(sector, buffer);
                    Assert.True(read.Ok, $"seed {seed} op {op}: sector {sector} unreadable");
                    SectorContent.Fill(_expected, sector, reference.Latest(sector));
                    Assert.True(buffer.AsSpan().SequenceEqual(_expected), $"seed {seed} op {op}: sector {sector} reads {SectorContent.Decode(buffer)}, expected generation {reference.Latest(sector)}");
                    break;
            }
        }

        for (long sector = 0; sector < reference.Sectors; sector++)
        {
            ftl.Read(sector, buffer);
            SectorContent.Fill(_expected, sector, reference.Latest(sector));
            Assert.True(buffer.AsSpan().SequenceEqual(_expected), $"seed {seed}: at the end sector {sector} reads {SectorContent.Decode(buffer)}, expected generation {reference.Latest(sector)}");
        }
    }

    private static readonly string[] Shapes = ["tiny", "default", "w25n01gv"];

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 24)];
}
