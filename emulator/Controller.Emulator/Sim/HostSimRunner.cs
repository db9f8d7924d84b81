using System.Diagnostics;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>
/// A run of a host workload through the controller loop and the cache, one command at a time,
/// every read compared with a byte-exact reference of the workload's region. The cache checks its
/// invariants as it runs.
/// </summary>
internal static class HostSimRunner
{
    /// <summary>The working region: a quarter of the device, at most 256 MiB.</summary>
    private const long MaxRegionBytes = 256L << 20;

    public static SimResult Run(ResolvedConfig config, SimOptions options)
    {
        var seeds = new Prng(options.Seed);
        var clock = new VirtualClock();
        using EmulatedNand nand = EmulatedNand.InMemory(config, clock);
        var tracing = new TracingNand(nand);
        FlashTranslationLayer ftl = FlashTranslationLayer.Mount(tracing, clock, seeds.Fork(), FtlConfig.Options(config));
        CacheOptions cacheOptions = CacheConfig.Options(config) with { CheckInvariants = true };
        var cache = new LargePageCache(new FtlSectorStore(ftl), cacheOptions, clock);
        var loop = new ControllerLoop(cache, ftl, clock, queueDepth: 1);
        long region = Math.Min(MaxRegionBytes, cache.DeviceBytes / 4);
        HostWorkload workload = HostWorkload.Create(options.Workload, seeds.Fork(), region);
        Prng data = seeds.Fork();
        var reference = new byte[region];
        var buffer = new byte[8 << 20];
        long commands = options.MeasuredWrites > 0 ? options.MeasuredWrites : 20_000;
        var violations = new List<string>();
        (long read, long programmed, long erased) before = (nand.Statistics.PagesRead, nand.Statistics.PagesProgrammed, nand.Statistics.BlocksErased);
        long dataPagesBefore = ftl.Statistics.DataPagesProgrammed;
        double heldSum = 0;
        long bytesWritten = 0;
        var wall = Stopwatch.StartNew();
        for (long i = 0; i < commands; i++)
        {
            (HostOpcode opcode, HostCommandOptions flags, long offset, long length) = workload.Next();
            Memory<byte> memory = buffer.AsMemory(0, (int)length);
            if (opcode == HostOpcode.Write)
            {
                Fill(data, memory.Span);
                memory.Span.CopyTo(reference.AsSpan((int)offset));
                bytesWritten += length;
            }
            else if (opcode is HostOpcode.Trim or HostOpcode.WriteZeroes)
            {
                reference.AsSpan((int)offset, (int)length).Clear();
            }

            HostCompletion completion = Execute(loop, new HostCommand { Id = i, Opcode = opcode, Flags = flags, Offset = offset, Length = length, Buffer = memory });
            if (completion.Status != HostStatus.Ok)
            {
                violations.Add($"command {i} ({opcode} {offset}+{length}) failed: {completion.Status}");
            }
            else if (opcode == HostOpcode.Read && !memory.Span.SequenceEqual(reference.AsSpan((int)offset, (int)length)) && violations.Count < 100)
            {
                violations.Add($"command {i}: read of {offset}+{length} differs from what was written");
            }

            heldSum += cache.SectorsHeld;
        }

        Execute(loop, new HostCommand { Id = commands, Opcode = HostOpcode.Flush });
        wall.Stop();
        CacheStatistics stats = cache.Statistics;
        LatencyHistogram trims = loop.Latency(HostOpcode.Trim);
        var metrics = new CacheMetrics(
            config.Get(CacheConfig.TrimPolicyKey),
            heldSum / commands * FirmwareConfig.SectorBytes,
            stats.BytesMigrated,
            stats.BytesZeroed,
            stats.SectorHits + stats.SectorMisses == 0 ? 0 : (double)stats.SectorHits / (stats.SectorHits + stats.SectorMisses),
            (trims.Percentile(0.5) / 1e3, trims.Percentile(0.99) / 1e3),
            stats);
        LatencyHistogram all = loop.Latency(HostOpcode.Write);
        return new SimResult(
            options,
            config,
            commands,
            bytesWritten,
            nand.Statistics.PagesRead - before.read,
            nand.Statistics.PagesProgrammed - before.programmed,
            nand.Statistics.BlocksErased - before.erased,
            nand.Geometry.PageBytes,
            ftl.Statistics.DataPagesProgrammed - dataPagesBefore,
            ftl.Capacity.SpareFactor,
            ftl.Capacity.SpareFactor,
            tracing.Hash,
            wall.Elapsed.TotalSeconds,
            clock.NowNanoseconds / 1e9,
            (all.Percentile(0.5) / 1e3, all.Percentile(0.99) / 1e3, all.Percentile(0.999) / 1e3),
            ftl.Wear(),
            ftl.Statistics,
            violations,
            metrics);
    }

    private static HostCompletion Execute(ControllerLoop loop, HostCommand command)
    {
        if (!loop.TrySubmit(command))
        {
            throw new InvalidOperationException("the loop's queue is full with one command in flight");
        }

        while (true)
        {
            loop.Step();
            if (loop.TryTakeCompletion(out HostCompletion completion))
            {
                return completion;
            }
        }
    }

    private static void Fill(Prng prng, Span<byte> span)
    {
        while (span.Length >= 8)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(span, prng.NextUInt64());
            span = span[8..];
        }
    }
}
