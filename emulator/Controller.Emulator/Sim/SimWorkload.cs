using Controller.Common;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>One host command a workload asks for; its data is stamped by the runner.</summary>
/// <param name="Opcode">What.</param>
/// <param name="Flags">FUA, NO_HOLE.</param>
/// <param name="Offset">First byte (a multiple of 512).</param>
/// <param name="Length">Bytes (a multiple of 512).</param>
public readonly record struct HostRequest(HostOpcode Opcode, HostCommandOptions Flags, long Offset, long Length)
{
    /// <summary>A flush.</summary>
    public static HostRequest Flush => new(HostOpcode.Flush, HostCommandOptions.None, 0, 0);
}

/// <summary>A workload's knobs; zero or negative values mean the workload's own default.</summary>
public sealed record WorkloadParameters
{
    /// <summary>Host commands in the measured phase (0: the workload's default).</summary>
    public long Ops { get; init; }

    /// <summary>Random writes before measuring (-1: twice the live sectors), for the random-write workloads.</summary>
    public long Warmup { get; init; } = -1;

    /// <summary>Fraction of the device trimmed after the fill and never written again.</summary>
    public double TrimFraction { get; init; }

    /// <summary>hot-cold: the fraction of the live space that is hot.</summary>
    public double HotFraction { get; init; } = 0.2;

    /// <summary>hot-cold: the fraction of writes that go to the hot space.</summary>
    public double HotTraffic { get; init; } = 0.8;

    /// <summary>zipf: the skew θ (0 is uniform; 0.99 is YCSB's default).</summary>
    public double ZipfTheta { get; init; } = 0.99;

    /// <summary>Fraction of commands that are reads (-1: the workload's default).</summary>
    public double ReadFraction { get; init; } = -1;

    /// <summary>sequential and mixed: the (largest) transfer in bytes (0: the workload's default).</summary>
    public long BlockBytes { get; init; }

    /// <summary>The working region in bytes from offset 0 (0: the workload's default).</summary>
    public long RegionBytes { get; init; }

    /// <summary>
    /// Mean host idle time between commands, microseconds of virtual time, when background work runs (-1: the
    /// workload's default).
    /// </summary>
    public double IdleMicroseconds { get; init; } = -1;

    /// <summary>
    /// Host commands kept in flight together (a closed loop: each completion lets the next command
    /// in); 1 runs one command at a time; 0 is 1, or the swarm's draw.
    /// </summary>
    public int QueueDepth { get; init; }

    /// <summary>
    /// Commands per second of virtual time arriving as a Poisson process (an open loop; 0: a closed
    /// loop at <see cref="QueueDepth"/>). Latencies then count from arrival.
    /// </summary>
    public double ArrivalRate { get; init; }

    /// <summary>sequential: a flush after every this many writes (0: none until the end of the run).</summary>
    public long FlushEvery { get; init; } = 64;

    /// <summary>trace: the block trace to replay.</summary>
    public TraceSource? Trace { get; init; }
}

/// <summary>
/// A host workload: a stream of commands over the device, in two phases (preparation, such as a
/// sequential fill and a warm-up, then the measured commands). Every choice comes from the PRNG
/// handed in, so one seed gives one stream.
/// </summary>
internal abstract class SimWorkload
{
    protected const long Kib = 1024;
    protected const long Mib = 1024 * Kib;

    protected SimWorkload(
        Prng prng,
        long deviceBytes,
        WorkloadParameters parameters,
        long defaultRegion,
        double defaultIdleMicroseconds
    )
    {
        Prng = prng;
        DeviceBytes = deviceBytes;
        Parameters = parameters;
        long region = parameters.RegionBytes > 0 ? Math.Min(parameters.RegionBytes, deviceBytes) : defaultRegion;
        RegionBytes = Math.Max(64 * Kib, region / (64 * Kib) * (64 * Kib));
        IdleNanoseconds =
            (parameters.IdleMicroseconds < 0 ? defaultIdleMicroseconds : parameters.IdleMicroseconds) * 1000;
    }

    /// <summary>The workloads known by name.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "uniform-randwrite",
        "uniform-randread",
        "zipf",
        "hot-cold",
        "sequential",
        "mixed",
        "fs",
        "db",
        "sequential-trim",
        "trace",
    ];

    /// <summary>Commands issued before the measured phase.</summary>
    public long PrepareOps { get; protected set; }

    /// <summary>
    /// Of <see cref="PrepareOps"/>, the warm-up's random writes after the fill (the rest fills the device).
    /// </summary>
    public long WarmupOps { get; protected set; }

    /// <summary>Commands in the measured phase.</summary>
    public long MeasuredOps { get; protected set; }

    /// <summary>All commands.</summary>
    public long TotalOps => PrepareOps + MeasuredOps;

    /// <summary>Sectors that hold live data in steady state (for the effective spare factor).</summary>
    public virtual long LiveBytes => DeviceBytes;

    /// <summary>Mean idle time between commands in virtual nanoseconds (0: the host never pauses).</summary>
    public double IdleNanoseconds { get; }

    /// <summary>The working region's size.</summary>
    public long RegionBytes { get; }

    protected Prng Prng { get; }

    protected long DeviceBytes { get; }

    protected WorkloadParameters Parameters { get; }

    public static SimWorkload Create(string name, Prng prng, long deviceBytes, WorkloadParameters parameters) =>
        name switch
        {
            "uniform-randwrite" or "uniform-randread" or "zipf" or "hot-cold" => new RandomWriteWorkload(
                name,
                prng,
                deviceBytes,
                parameters
            ),
            "sequential" => new SequentialWorkload(prng, deviceBytes, parameters),
            "mixed" => new MixedWorkload(prng, deviceBytes, parameters),
            "fs" => new FileSystemWorkload(prng, deviceBytes, parameters),
            "db" => new DatabaseWorkload(prng, deviceBytes, parameters),
            "sequential-trim" => new SequentialTrimWorkload(prng, deviceBytes, parameters),
            "trace" => new TraceWorkload(prng, deviceBytes, parameters),
            _ => throw new ArgumentException(
                $"unknown workload '{name}'; workloads are {string.Join(", ", Names)}",
                nameof(name)
            ),
        };

    /// <summary>The next command.</summary>
    public abstract HostRequest Next();

    /// <summary>
    /// When the command <see cref="Next"/> returned last arrives, in virtual nanoseconds from the
    /// start of the measured phase, for a workload with times of its own (a trace); -1: it arrives
    /// when there is room for it.
    /// </summary>
    public virtual long Arrival => -1;

    /// <summary>What the report should say about the workload (a trace's figures, a warning), if anything.</summary>
    public virtual IReadOnlyList<string> Notes => [];

    protected static long Aligned(long bytes, long alignment) => bytes / alignment * alignment;

    protected long RandomOffset(long end, long alignment) =>
        (long)Prng.NextUInt64((ulong)Math.Max(1, end / alignment)) * alignment;

    protected long Ops(long defaultOps) => Parameters.Ops > 0 ? Parameters.Ops : defaultOps;

    protected double ReadFraction(double defaultFraction) =>
        Parameters.ReadFraction < 0 ? defaultFraction : Parameters.ReadFraction;
}

/// <summary>
/// Random 4 KiB writes after a sequential fill, the write-amplification workloads:
/// <c>uniform-randwrite</c> (uniform over the live space), <c>hot-cold</c> (a hot fraction of the
/// space takes a fraction of the writes) and <c>zipf</c> (Zipf-distributed over the live space,
/// scattered, with some reads), and <c>uniform-randread</c> (uniform 4 KiB reads over the filled
/// space, no warm-up by default: the read-latency and IOPS workload). The device is filled, a fraction trimmed if
/// asked, flushed, then warmed up until garbage collection is steady; the measured phase follows.
/// </summary>
internal sealed class RandomWriteWorkload : SimWorkload
{
    private const long FillBytes = 256 * Kib;
    private const long SectorBytes = 4 * Kib;
    private readonly string _name;
    private readonly long _trimmedBytes;
    private readonly long _liveSectors;
    private readonly long _fillOps;
    private readonly double _readFraction;
    private readonly Zipf? _zipf;
    private readonly long _warmupOps;
    private long _issued;

    public RandomWriteWorkload(string name, Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, deviceBytes, 0)
    {
        _name = name;
        _trimmedBytes = Aligned((long)(RegionBytes * parameters.TrimFraction), SectorBytes);
        _liveSectors = Math.Max(1, (RegionBytes - _trimmedBytes) / SectorBytes);
        _fillOps = (RegionBytes + FillBytes - 1) / FillBytes;
        bool reads = name == "uniform-randread";
        long warmup = parameters.Warmup < 0 ? (reads ? 0 : 2 * _liveSectors) : parameters.Warmup;
        PrepareOps = _fillOps + (_trimmedBytes > 0 ? 1 : 0) + 1 + warmup;
        MeasuredOps = Ops(
            name switch
            {
                "zipf" => _liveSectors,
                "uniform-randread" => 20000,
                _ => 2 * _liveSectors,
            }
        );
        _readFraction = ReadFraction(
            name switch
            {
                "zipf" => 0.2,
                "uniform-randread" => 1,
                _ => 0,
            }
        );
        _warmupOps = warmup;
        WarmupOps = warmup;
        _zipf = name == "zipf" ? new Zipf(_liveSectors, parameters.ZipfTheta) : null;
    }

    public override long LiveBytes => RegionBytes - _trimmedBytes;

    public override HostRequest Next()
    {
        long i = _issued++;
        if (i < _fillOps)
        {
            long offset = i * FillBytes;
            return new(HostOpcode.Write, HostCommandOptions.None, offset, Math.Min(FillBytes, RegionBytes - offset));
        }

        i -= _fillOps;
        if (_trimmedBytes > 0 && i-- == 0)
        {
            return new(HostOpcode.Trim, HostCommandOptions.None, 0, _trimmedBytes);
        }

        if (i == 0)
        {
            return HostRequest.Flush;
        }

        long sector = _name switch
        {
            "zipf" => _zipf!.Next(Prng),
            "hot-cold" => HotCold(),
            _ => (long)Prng.NextUInt64((ulong)_liveSectors),
        };
        // uniform-randread's warm-up (if asked for) writes, so that the reads find garbage collection steady.
        bool warming = _name == "uniform-randread" && i <= _warmupOps;
        HostOpcode opcode =
            !warming && _readFraction > 0 && Prng.NextDouble() < _readFraction ? HostOpcode.Read : HostOpcode.Write;
        return new(opcode, HostCommandOptions.None, _trimmedBytes + (sector * SectorBytes), SectorBytes);
    }

    private long HotCold()
    {
        long hot = Math.Max(1, (long)(_liveSectors * Parameters.HotFraction));
        long cold = Math.Max(1, _liveSectors - hot);
        return Prng.NextDouble() < Parameters.HotTraffic
            ? (long)Prng.NextUInt64((ulong)hot)
            : Math.Min(_liveSectors - 1, hot + (long)Prng.NextUInt64((ulong)cold));
    }

    /// <summary>
    /// Zipf-distributed ranks (Gray et al., "Quickly generating billion-record synthetic
    /// databases", as YCSB draws them), scattered over the space by a multiplicative bijection so
    /// the hot sectors are not neighbours.
    /// </summary>
    private sealed class Zipf
    {
        private const ulong Scatter = 2654435761;
        private readonly long _items;
        private readonly double _theta;
        private readonly double _zetaN;
        private readonly double _alpha;
        private readonly double _eta;

        public Zipf(long items, double theta)
        {
            _items = items;
            _theta = Math.Clamp(theta, 0, 0.999);
            double zeta2 = 1 + Math.Pow(0.5, _theta);
            for (long i = 1; i <= items; i++)
            {
                _zetaN += 1 / Math.Pow(i, _theta);
            }

            _alpha = 1 / (1 - _theta);
            _eta = (1 - Math.Pow(2.0 / items, 1 - _theta)) / (1 - (zeta2 / _zetaN));
        }

        public long Next(Prng prng)
        {
            double u = prng.NextDouble();
            double uz = u * _zetaN;
            long rank =
                uz < 1 ? 0
                : uz < 1 + Math.Pow(0.5, _theta) ? 1
                : (long)(_items * Math.Pow((_eta * u) - _eta + 1, _alpha));
            rank = Math.Clamp(rank, 0, _items - 1);
            return (long)((ulong)rank * Scatter % (ulong)_items);
        }
    }
}

/// <summary>
/// Sequential transfers through the region, wrapping: writes of the block size, a flush every 64
/// writes (or as <see cref="WorkloadParameters.FlushEvery"/> says), and reads of blocks already written.
/// </summary>
internal sealed class SequentialWorkload : SimWorkload
{
    private readonly long _block;
    private readonly double _readFraction;
    private long _head;
    private long _writes;

    public SequentialWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, deviceBytes, 0)
    {
        _block = Math.Clamp(
            Aligned(parameters.BlockBytes > 0 ? parameters.BlockBytes : 128 * Kib, 512),
            512,
            RegionBytes
        );
        _readFraction = ReadFraction(0.25);
        MeasuredOps = Ops(20_000);
    }

    public override HostRequest Next()
    {
        if (_head > 0 && Prng.NextDouble() < _readFraction)
        {
            long written = Math.Min(_head, RegionBytes);
            long offset = RandomOffset(written - _block + 1, _block);
            return new(HostOpcode.Read, HostCommandOptions.None, offset, Math.Min(_block, RegionBytes - offset));
        }

        if (Parameters.FlushEvery > 0 && ++_writes % Parameters.FlushEvery == 0)
        {
            return HostRequest.Flush;
        }

        long at = _head % RegionBytes;
        long length = Math.Min(_block, RegionBytes - at);
        _head += length;
        return new(HostOpcode.Write, HostCommandOptions.None, at, length);
    }
}

/// <summary>
/// Every command the host has, with every flag the protocol allows on it, mixed: reads,
/// writes (4 KiB-aligned, and a quarter of them of odd 512-byte sizes at odd places, so partial
/// sectors are read, merged and written), trims and write-zeroes (with and without NO_HOLE, also
/// partial), and flushes, each with and without FUA (which NBD lets a client set on any command).
/// Four fifths of the commands fall in the first eighth of the region, so data is overwritten and
/// read back.
/// </summary>
internal sealed class MixedWorkload : SimWorkload
{
    private readonly long _block;
    private readonly double _readFraction;

    public MixedWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, deviceBytes, 50)
    {
        _block = Math.Clamp(
            Aligned(parameters.BlockBytes > 0 ? parameters.BlockBytes : 64 * Kib, 512),
            4 * Kib,
            RegionBytes / 4
        );
        _readFraction = ReadFraction(0.35);
        MeasuredOps = Ops(20_000);
    }

    public override HostRequest Next()
    {
        double roll = Prng.NextDouble();
        long span = Prng.NextInt(5) < 4 ? Math.Max(_block * 2, RegionBytes / 8) : RegionBytes;
        bool odd = Prng.NextInt(4) == 0;
        long alignment = odd ? 512 : 4 * Kib;
        if (roll < _readFraction)
        {
            return Range(HostOpcode.Read, Fua(16), span, alignment, _block);
        }

        double rest = (roll - _readFraction) / (1 - _readFraction);
        return rest switch
        {
            < 0.55 => Range(HostOpcode.Write, HostCommandOptions.None, span, alignment, _block),
            < 0.70 => Range(HostOpcode.Write, HostCommandOptions.ForceUnitAccess, span, alignment, _block),
            < 0.82 => Range(HostOpcode.Trim, Fua(4), span, alignment, 4 * _block),
            < 0.92 => Range(
                HostOpcode.WriteZeroes,
                Fua(4) | (Prng.NextInt(2) == 0 ? HostCommandOptions.NoHole : HostCommandOptions.None),
                span,
                alignment,
                2 * _block
            ),
            _ => HostRequest.Flush with { Flags = Fua(8) },
        };
    }

    /// <summary>FUA once in <paramref name="oneIn"/> draws.</summary>
    private HostCommandOptions Fua(int oneIn) =>
        Prng.NextInt(oneIn) == 0 ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None;

    private HostRequest Range(HostOpcode opcode, HostCommandOptions flags, long span, long alignment, long maxLength)
    {
        long length = alignment * (1 + (long)Prng.NextUInt64((ulong)Math.Max(1, maxLength / alignment)));
        length = Math.Min(length, span);
        long offset = RandomOffset(span - length + 1, alignment);
        return new(opcode, flags, offset, length);
    }
}

/// <summary>
/// A database: 8 KiB page reads and writes over a table (a hot tenth takes most of them), FUA
/// appends to a log, and periodic trims of freed extents of 16 to 64 KiB that seldom line up with
/// large pages.
/// </summary>
internal sealed class DatabaseWorkload : SimWorkload
{
    private readonly long _tableBytes;
    private long _logOffset;

    public DatabaseWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, Math.Min(256 * Mib, deviceBytes / 4), 0)
    {
        _tableBytes = RegionBytes * 7 / 8;
        MeasuredOps = Ops(20_000);
    }

    public override HostRequest Next()
    {
        int roll = Prng.NextInt(100);
        long tableSpan = Prng.NextInt(10) < 8 ? _tableBytes / 10 : _tableBytes;
        switch (roll)
        {
            case < 40:
                return new(
                    HostOpcode.Read,
                    HostCommandOptions.None,
                    RandomOffset(tableSpan - (8 * Kib), 8 * Kib),
                    8 * Kib
                );
            case < 70:
                return new(
                    HostOpcode.Write,
                    HostCommandOptions.None,
                    RandomOffset(tableSpan - (8 * Kib), 8 * Kib),
                    8 * Kib
                );
            case < 85:
                long log = _tableBytes + _logOffset;
                _logOffset = (_logOffset + (4 * Kib)) % (RegionBytes - _tableBytes);
                return new(HostOpcode.Write, HostCommandOptions.ForceUnitAccess, log, 4 * Kib);
            case < 97:
                long extent = (16 + (16 * Prng.NextInt(4))) * Kib;
                return new(
                    HostOpcode.Trim,
                    HostCommandOptions.None,
                    RandomOffset(_tableBytes - extent, 4 * Kib),
                    extent
                );
            default:
                return HostRequest.Flush;
        }
    }
}

/// <summary>
/// A file system: files of 8 to 512 KiB written whole at 4 KiB-aligned places, read back, and
/// deleted (a trim of the file's extent, so the cut falls inside large pages); an fsync is a flush.
/// </summary>
internal sealed class FileSystemWorkload : SimWorkload
{
    private readonly List<(long Offset, long Length)> _files = [];

    public FileSystemWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, Math.Min(256 * Mib, deviceBytes / 4), 0)
    {
        MeasuredOps = Ops(20_000);
    }

    public override HostRequest Next()
    {
        int roll = Prng.NextInt(100);
        if (_files.Count == 0 || roll < 35)
        {
            long length = Math.Min((8 + (8 * Prng.NextInt(64))) * Kib, RegionBytes / 2);
            long offset = RandomOffset(RegionBytes - length, 4 * Kib);
            _files.Add((offset, length));
            return new(HostOpcode.Write, HostCommandOptions.None, offset, length);
        }

        int index = Prng.NextInt(_files.Count);
        (long fileOffset, long fileLength) = _files[index];
        if (roll < 75)
        {
            return new(HostOpcode.Read, HostCommandOptions.None, fileOffset, Math.Min(fileLength, 64 * Kib));
        }

        if (roll < 95)
        {
            _files.RemoveAt(index);
            return new(HostOpcode.Trim, HostCommandOptions.None, fileOffset, fileLength);
        }

        return HostRequest.Flush;
    }
}

/// <summary>
/// A log-structured writer: sequential 256 KiB writes, reads of recent data, and large trims
/// (1 to 4 MiB) of the oldest data behind it, unaligned to large pages by a few sectors.
/// </summary>
internal sealed class SequentialTrimWorkload : SimWorkload
{
    private readonly long _keep;
    private long _head;
    private long _tail;

    public SequentialTrimWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, Math.Min(256 * Mib, deviceBytes / 4), 0)
    {
        _keep = Math.Min(8 * Mib, RegionBytes / 2);
        MeasuredOps = Ops(20_000);
    }

    public override HostRequest Next()
    {
        int roll = Prng.NextInt(100);
        long written = _head - _tail;
        if (roll < 50 || written < _keep)
        {
            long offset = _head % RegionBytes;
            long length = Math.Min(256 * Kib, RegionBytes - offset);
            _head += length;
            return new(HostOpcode.Write, HostCommandOptions.None, offset, length);
        }

        if (roll < 85)
        {
            long back = Math.Min(written, _keep / 2);
            long offset = (_head - 1 - (long)Prng.NextUInt64((ulong)back)) % RegionBytes / (4 * Kib) * (4 * Kib);
            return new(HostOpcode.Read, HostCommandOptions.None, offset, Math.Min(64 * Kib, RegionBytes - offset));
        }

        long extent = ((1 + Prng.NextInt(4)) * Mib) + (4 * Kib * Prng.NextInt(16));
        long start = _tail % RegionBytes;
        extent = Math.Min(extent, Math.Min(written - (_keep / 2), RegionBytes - start));
        _tail += extent;
        return extent <= 0 ? HostRequest.Flush : new(HostOpcode.Trim, HostCommandOptions.None, start, extent);
    }
}

/// <summary>A fixed list of commands (the crash test's prefix, sequence and tail), all measured.</summary>
internal sealed class ScriptedWorkload : SimWorkload
{
    private readonly IReadOnlyList<HostRequest> _script;
    private int _next;

    public ScriptedWorkload(IReadOnlyList<HostRequest> script)
        : base(new Prng(0), 0, new WorkloadParameters(), 64 * Kib, 0)
    {
        _script = script;
        MeasuredOps = script.Count;
    }

    public override HostRequest Next() => _script[_next++];
}
