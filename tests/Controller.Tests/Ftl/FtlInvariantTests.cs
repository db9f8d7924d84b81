using System.Reflection;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Ftl;
using Controller.Firmware.Invariants;
using Controller.Firmware.Loop;
using Controller.Tests.Support;

namespace Controller.Tests.Ftl;

/// <summary>
/// The FTL's run-time checks: the full walk (<see cref="FlashTranslationLayer.CheckInvariants"/>)
/// passes on a sound map and fails on each kind of damage; the cheap checks on the write and GC
/// paths, which run in every build, fail where the damage is touched.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FtlInvariantTests : IDisposable
{
    private readonly VirtualClock _clock = new();
    private readonly EmulatedNand _nand;
    private readonly FlashTranslationLayer _ftl;

    public FtlInvariantTests()
    {
        _nand = Nands.Tiny(_clock);
        _ftl = FlashTranslationLayer.Mount(_nand, _clock, new Prng(1), new FtlOptions { SpareFactor = 0.2 });
        byte[] data = new byte[4096];
        for (long sector = 0; sector < 64; sector++)
        {
            _ftl.Write(sector, data);
        }

        _ftl.Flush();
        _ftl.Write(100, data);
        _ftl.Trim(10, 4);
    }

    public void Dispose() => _nand.Dispose();

    [Fact]
    public void ASoundMapPassesTheFullCheck() => _ftl.CheckInvariants();

    [Fact]
    public void AValidCountThatDisagreesWithTheMapIsCaught()
    {
        Field<int[]>("_valid")[0]++;

        var error = Assert.Throws<InvariantViolationException>(_ftl.CheckInvariants);

        Assert.Contains("its valid count says", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AReverseEntryThatNamesAnotherSectorIsCaughtByTheFullCheckAndByTheNextWriteOfTheSector()
    {
        uint physical = Field<uint[]>("_map")[5];
        Field<uint[]>("_reverse")[physical] = 6;

        var full = Assert.Throws<InvariantViolationException>(_ftl.CheckInvariants);
        var write = Assert.Throws<InvariantViolationException>(() => _ftl.Write(5, new byte[4096]));

        Assert.Contains(
            $"sector 5 maps to physical sector {physical}, whose reverse entry is 6",
            full.Message,
            StringComparison.Ordinal
        );
        Assert.Contains("the map and the reverse map disagree", write.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASectorMarkedBufferedThatNoBufferHoldsIsCaught()
    {
        Field<uint[]>("_map")[40] = SectorMap.InHostBuffer;

        var error = Assert.Throws<InvariantViolationException>(_ftl.CheckInvariants);

        Assert.Contains(
            "sector 40 is mapped to the host unit buffer, which does not hold it",
            error.Message,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void AFreeCountThatDisagreesWithTheBlockStatesIsCaught()
    {
        BlockState[] states = Part<BlockTable, BlockState[]>("_blocks", "_states");
        int free = Array.IndexOf(states, BlockState.Free);
        states[free] = BlockState.Bad;

        var error = Assert.Throws<InvariantViolationException>(_ftl.CheckInvariants);

        Assert.Contains(
            $"{_ftl.FreeBlocks - 1} blocks are free, the count says {_ftl.FreeBlocks}",
            error.Message,
            StringComparison.Ordinal
        );
    }

    /// <summary>A private field of the FTL's sector map, to damage it behind its back.</summary>
    private T Field<T>(string name) => Part<SectorMap, T>("_sectors", name);

    private TField Part<TPart, TField>(string part, string name)
    {
        object owner = typeof(FlashTranslationLayer)
            .GetField(part, BindingFlags.NonPublic | BindingFlags.Instance)!
            .GetValue(_ftl)!;
        return (TField)typeof(TPart).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(owner)!;
    }
}
