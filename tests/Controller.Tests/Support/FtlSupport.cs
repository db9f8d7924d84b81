using Controller.Emulator.Nand;
using Controller.Emulator.Sim;
using Controller.Emulator.Time;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Loop;

namespace Controller.Tests.Support;

/// <summary>The emulator's self-describing sector contents, under the name the tests use.</summary>
internal static class SectorContent
{
    public const int Bytes = SectorStamp.Bytes;

    public static void Fill(Span<byte> buffer, long sector, int generation) => SectorStamp.Fill(buffer, sector, generation);

    public static (bool Intact, long Sector, int Generation) Decode(ReadOnlySpan<byte> buffer) => SectorStamp.Decode(buffer);
}

/// <summary>Thrown by <see cref="PowerCuttingNand"/> when it has cut the power: the firmware's state is gone.</summary>
internal sealed class PowerCutException : Exception
{
    public PowerCutException()
        : base("the power was cut")
    {
    }

    public PowerCutException(string message)
        : base(message)
    {
    }

    public PowerCutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A NAND that cuts its own power during its Nth operation, at an instant drawn between the
/// operation's issue and its completion, then throws so the firmware above stops as it would.
/// </summary>
internal sealed class PowerCuttingNand : INandDevice
{
    private readonly EmulatedNand _inner;
    private readonly VirtualClock _clock;
    private readonly Prng _prng;
    private long _countdown = -1;

    public PowerCuttingNand(EmulatedNand inner, VirtualClock clock, Prng prng)
    {
        _inner = inner;
        _clock = clock;
        _prng = prng;
    }

    public NandGeometry Geometry => _inner.Geometry;

    public EmulatedNand Inner => _inner;

    public long Operations { get; private set; }

    /// <summary>Cut the power during the <paramref name="operations"/>th operation from now (1 = the next); 0 disarms.</summary>
    public void CutDuring(long operations) => _countdown = operations <= 0 ? -1 : operations;

    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare) => Cut(_inner.ReadPage(address, data, spare));

    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) => Cut(_inner.ProgramPage(address, data, spare));

    public NandCompletion EraseBlock(int block) => Cut(_inner.EraseBlock(block));

    public NandDieStatus GetDieStatus(int die) => _inner.GetDieStatus(die);

    private NandCompletion Cut(NandCompletion completion)
    {
        Operations++;
        if (_countdown > 0 && --_countdown == 0)
        {
            _countdown = -1;
            long span = Math.Max(0, completion.CompletesAtNanoseconds - _clock.NowNanoseconds);
            _clock.AdvanceTo(_clock.NowNanoseconds + (long)_prng.NextUInt64((ulong)span + 1));
            _inner.PowerCut();
            throw new PowerCutException();
        }

        return completion;
    }
}

/// <summary>
/// The oracle of DESIGN.md section 3 at sector level: per sector the durable value and every value
/// written since, which may or may not have survived a power cut.
/// </summary>
internal sealed class ReferenceDevice
{
    private readonly List<int>[] _versions;
    private readonly int[] _durable;
    private int _nextGeneration = 1;

    public ReferenceDevice(long sectors)
    {
        _versions = new List<int>[sectors];
        _durable = new int[sectors];
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

    /// <summary>After a power cut: null if <paramref name="read"/> is allowed for <paramref name="sector"/>, else the class of violation.</summary>
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

/// <summary>The random operations the FTL tests drive: writes, trims, flushes, background work and exact reads.</summary>
internal static class FtlWorkload
{
    /// <summary>
    /// Performs one random operation on <paramref name="ftl"/> and <paramref name="reference"/>;
    /// a read must return exactly what the reference says (no power was cut since the last check).
    /// <paramref name="context"/> names the seed and step in a failure.
    /// </summary>
    public static void Step(FlashTranslationLayer ftl, ReferenceDevice reference, Prng prng, byte[] buffer, string context)
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
    public static void ExpectLatest(FlashTranslationLayer ftl, ReferenceDevice reference, long sector, byte[] buffer, string context)
    {
        FtlReadResult read = ftl.Read(sector, buffer);
        Assert.True(read.Ok, $"{context}: sector {sector} unreadable");
        (bool intact, long owner, int generation) = SectorContent.Decode(buffer);
        int latest = reference.Latest(sector);
        Assert.True(intact && generation == latest && (generation == 0 || owner == sector), $"{context}: sector {sector} reads generation {generation} of sector {owner} (intact: {intact}), expected generation {latest}");
    }
}
