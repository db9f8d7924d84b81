using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;

namespace Controller.Tests.Support;

/// <summary>
/// Self-describing 4 KiB sectors for the FTL tests: the sim's block stamps of one operation
/// (here a generation) through the sector's eight blocks. Generation 0 is zeros: a hole.
/// </summary>
internal static class SectorContent
{
    public const int Bytes = 4096;

    private const int BlocksPerSector = Bytes / BlockStamp.Bytes;

    public static void Fill(Span<byte> buffer, long sector, int generation)
    {
        if (generation == 0)
        {
            buffer[..Bytes].Clear();
            return;
        }

        BlockStamp.FillRange(buffer[..Bytes], sector * BlocksPerSector, (uint)generation);
    }

    /// <summary>
    /// What a sector holds: zeros (generation 0), an intact generation of some sector, or damage (Intact false).
    /// </summary>
    public static (bool Intact, long Sector, int Generation) Decode(ReadOnlySpan<byte> buffer)
    {
        buffer = buffer[..Bytes];
        if (!buffer.ContainsAnyExcept((byte)0))
        {
            return (true, -1, 0);
        }

        BlockStamp.Decoded first = BlockStamp.Decode(buffer[..BlockStamp.Bytes]);
        bool intact = first.What == BlockStamp.Kind.Stamp && first.Address % BlocksPerSector == 0;
        for (int block = 1; intact && block < BlocksPerSector; block++)
        {
            intact = BlockStamp.Matches(
                buffer.Slice(block * BlockStamp.Bytes, BlockStamp.Bytes),
                first.Address + block,
                first.Operation
            );
        }

        return intact ? (true, first.Address / BlocksPerSector, (int)first.Operation) : (false, -1, 0);
    }
}

/// <summary>
/// The oracle of DESIGN.md section 3 at sector level: per sector the durable value and every value
/// written since, which may or may not have survived a power cut.
/// </summary>
internal sealed class ReferenceDevice
{
    private readonly List<int>[] _versions;
    private int _nextGeneration = 1;

    public ReferenceDevice(long sectors)
    {
        _versions = new List<int>[sectors];
        for (long i = 0; i < sectors; i++)
        {
            _versions[i] = [0];
        }
    }

    public long Sectors => _versions.Length;

    public int Latest(long sector) => _versions[sector][^1];

    public int Write(long sector)
    {
        int generation = _nextGeneration++;
        _versions[sector].Add(generation);
        return generation;
    }

    public void Trim(long sector, long count)
    {
        for (long i = sector; i < sector + count; i++)
        {
            if (_versions[i][^1] != 0)
            {
                _versions[i].Add(0);
            }
        }
    }

    public void Flush()
    {
        for (long i = 0; i < _versions.Length; i++)
        {
            List<int> versions = _versions[i];
            if (versions.Count > 1)
            {
                versions.RemoveRange(0, versions.Count - 1);
            }
        }
    }

    /// <summary>
    /// After a power cut: null if <paramref name="read"/> is allowed for <paramref name="sector"/>, else the class of
    /// violation.
    /// </summary>
    public string? Check(long sector, ReadOnlySpan<byte> read)
    {
        (bool intact, long owner, int generation) = SectorContent.Decode(read);
        List<int> versions = _versions[sector];
        if (!intact)
        {
            return $"bit corruption or shorn write (history {string.Join(",", versions)})";
        }

        if (generation != 0 && owner != sector)
        {
            return $"flying write: holds generation {generation} of sector {owner} (history {string.Join(",", versions)})";
        }

        if (versions.Contains(generation))
        {
            return null;
        }

        return generation == 0
                ? $"lost durable write: reads zeros, durable generation {versions[0]} (history {string.Join(",", versions)})"
            : versions[0] == 0 && versions.Count == 1
                ? $"resurrected trim or lost write: holds generation {generation}, durable value is zeros"
            : $"lost durable write: holds generation {generation}, allowed {string.Join(",", versions)}";
    }

    /// <summary>After a power cut and a check: what the sector now holds is its durable value.</summary>
    public void Settle(long sector, ReadOnlySpan<byte> read)
    {
        _versions[sector].Clear();
        _versions[sector].Add(SectorContent.Decode(read).Generation);
    }
}

/// <summary>
/// The random operations the FTL tests drive: writes, trims, flushes, background work and exact reads.
/// </summary>
internal static class FtlWorkload
{
    /// <summary>
    /// Performs one random operation on <paramref name="ftl"/> and <paramref name="reference"/>;
    /// a read must return exactly what the reference says (no power was cut since the last check).
    /// <paramref name="context"/> names the seed and step in a failure.
    /// </summary>
    public static void Step(
        FlashTranslationLayer ftl,
        ReferenceDevice reference,
        Prng prng,
        byte[] buffer,
        string context
    )
    {
        long sector = (long)prng.NextUInt64((ulong)reference.Sectors);
        switch (prng.NextInt(100))
        {
            case < 58:
                SectorContent.Fill(buffer, sector, reference.Write(sector));
                ftl.Write(sector, buffer);
                break;
            case < 68:
                long count = Math.Min(1 + prng.NextInt(32), reference.Sectors - sector);
                reference.Trim(sector, count);
                ftl.Trim(sector, count);
                break;
            case < 75:
                ftl.Flush();
                reference.Flush();
                break;
            case < 78:
                ftl.DoBackgroundWork();
                break;
            default:
                ExpectLatest(ftl, reference, sector, buffer, context);
                break;
        }
    }

    /// <summary>Reads <paramref name="sector"/> and asserts it holds the reference's latest value.</summary>
    public static void ExpectLatest(
        FlashTranslationLayer ftl,
        ReferenceDevice reference,
        long sector,
        byte[] buffer,
        string context
    )
    {
        FtlReadResult read = ftl.Read(sector, buffer);
        Assert.True(read.Ok, $"{context}: sector {sector} unreadable");
        (bool intact, long owner, int generation) = SectorContent.Decode(buffer);
        int latest = reference.Latest(sector);
        Assert.True(
            intact && generation == latest && (generation == 0 || owner == sector),
            $"{context}: sector {sector} reads generation {generation} of sector {owner} (intact: {intact}), expected generation {latest}"
        );
    }
}

/// <summary>FTL options the tests share.</summary>
internal static class FtlTestOptions
{
    /// <summary>
    /// No checkpoint but those a test takes (and each mount's): recovery then has the journal and the scans to replay.
    /// </summary>
    public static FtlOptions NoTimedCheckpoints { get; } = new() { CheckpointIntervalPages = 1 << 20 };
}

/// <summary>A power cut inside a recovery, for tests that walk it through every NAND operation of one.</summary>
internal static class RecoveryCuts
{
    /// <summary>
    /// Mounts with the power cut during NAND operation <paramref name="operation"/> of the mount,
    /// then mounts again with no cut (the firmware's seeds are fixed, so each operation is one
    /// execution). Finished is true when the first mount completed before the cut could strike.
    /// </summary>
    public static (bool Finished, FlashTranslationLayer Ftl) MountCutAt(
        EmulatedNand inner,
        FaultingNand nand,
        VirtualClock clock,
        FtlOptions options,
        int operation
    )
    {
        bool finished = false;
        nand.CutDuring(operation);
        try
        {
            FlashTranslationLayer.Mount(nand, clock, new Prng(3), options);
            finished = true;
        }
        catch (PowerCutException)
        {
            inner.PowerOn();
        }

        nand.CutDuring(0);
        return (finished, FlashTranslationLayer.Mount(nand, clock, new Prng(4), options));
    }
}
