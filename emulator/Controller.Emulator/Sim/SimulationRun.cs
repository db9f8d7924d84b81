using System.Diagnostics;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Hosting;

namespace Controller.Emulator.Sim;

/// <summary>
/// One deterministic run of a whole SSD: the host workload, the controller loop, the cache, the
/// FTL and the emulated NAND on one virtual clock in one thread, every random choice drawn from
/// one seed. Power cuts strike at drawn instants (inside a program or an erase, inside GC, a
/// checkpoint, or recovery itself); after each, the firmware boots again, and the whole device is
/// read and checked against the <see cref="Oracle"/>. Reads between cuts must match exactly. The
/// run stops at the first check that finds a violation.
/// </summary>
internal sealed class SimulationRun : IDisposable
{
    private const int SectorBytes = FirmwareConfig.SectorBytes;
    private const int CheckSectors = 64;
    private const int MaxViolationsPerCheck = 20;

    /// <summary>The commands an open loop (<c>--arrival-rate</c>) keeps in flight at most, unless told.</summary>
    private const int OpenLoopQueueDepth = 64;

    private readonly ResolvedConfig _config;
    private readonly SimOptions _options;
    private readonly VirtualClock _clock = new();
    private readonly CommandClock _firmwareClock;
    private readonly ExecutionTrace _trace;
    private readonly EmulatedNand _nand;
    private readonly FaultingNand _device;
    private readonly Spi.EmulatedSpiPath? _spi;
    private readonly Prng _firmwarePrng;
    private readonly Prng _cutPrng;
    private readonly Prng _idlePrng;
    private readonly Prng _arrivalPrng;
    private readonly SimWorkload _workload;
    private readonly Oracle _oracle;
    private readonly FtlOptions _ftlOptions;

    /// <summary>The NAND the FTL mounts: the SPI driver or the faulting array, or a test's decorator of it.</summary>
    private readonly INandDevice _firmwareNand;
    private readonly CacheOptions _cacheOptions;
    private readonly long _plpBudgetPages;
    private readonly List<Violation> _violations = [];
    private readonly PowerCutReport _cuts = new();
    private readonly LatencyHistogram[] _opLatency =
    [
        .. Enum.GetValues<HostOpcode>().Select(_ => new LatencyHistogram()),
    ];
    private readonly List<InFlightCommand> _inFlight = [];
    private readonly int _queueDepth;
    private readonly bool _arrivalsByClock;
    private readonly Stack<byte[]> _freeBuffers = t_hostBuffers ?? new();

    /// <summary>
    /// Each thread's host buffer, kept between runs: a crash test makes hundreds of thousands of short runs.
    /// </summary>
    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>Each thread's free host buffers, kept between runs for the same reason.</summary>
    [ThreadStatic]
    private static Stack<byte[]>? t_hostBuffers;

    private byte[] _buffer = t_buffer ?? new byte[1 << 20];
    private FlashTranslationLayer? _ftl;
    private LargePageCache? _cache;
    private ControllerLoop? _loop;
    private bool _mounting;
    private long _recoveryOperations = 200;
    private (long DataPages, long Relocated) _earlierMounts;
    private CacheStatistics _earlierCaches = new();
    private bool _measuring;
    private readonly List<SimSample>? _timeline;
    private readonly List<double> _cutSeconds = [];
    private long _allHostBytesWritten;
    private long _measuredFrom;
    private long _nextArrival;
    private long _overlappedReads;
    private long _overlappedWrites;
    private long _lastMeasuredCompletion;
    private long _hostBytesWritten;
    private long _hostBytesRead;
    private double _heldSum;
    private long _heldSamples;

    public SimulationRun(ResolvedConfig config, SimOptions options, TextWriter? trace)
    {
        _config = config;
        _options = options;
        _timeline = options.KeepTimeline ? [] : null;
        _trace = new ExecutionTrace(trace);
        var seeds = new Prng(options.Seed);
        NandFaultOptions faults = NandFaultOptions.FromConfig(config);
        faults = faults with { Seed = (faults.Seed * 0x9E3779B97F4A7C15) ^ options.Seed };
        _nand = EmulatedNand.InMemory(
            FirmwareConfig.Geometry(config),
            NandTiming.FromConfig(config),
            EccModel.FromConfig(config),
            (int)config.Get(FirmwareConfig.EnduranceCycles),
            faults,
            _clock
        );
        _firmwareClock = new CommandClock(_clock);
        _arrivalsByClock = options.Parameters.ArrivalRate > 0 || options.Parameters.Trace is { Timed: true };
        _queueDepth =
            options.Parameters.QueueDepth > 0 ? options.Parameters.QueueDepth
            : _arrivalsByClock ? OpenLoopQueueDepth
            : 1;
        _device = new FaultingNand(_nand, _clock, seeds.Fork(), _trace)
        {
            Activity = () => _mounting ? FtlActivity.Recovery : _ftl?.Activity ?? FtlActivity.Host,
        };
        // emulator.spi: the FTL reaches the array through the SPI NAND driver and the emulated chip,
        // above the faulting array, so a cut strikes inside the chip's BUSY window while the driver
        // polls its status, as on a board.
        _spi = Spi.EmulatedSpiPath.FromConfig(config, _device, _clock);
        if (_spi is null)
        {
            // Commands overlap on the array's dies; through the SPI driver, which polls the chip on
            // the device's clock, one operation runs at a time, as on a board.
            _nand.IssueClock = _firmwareClock;
        }

        _firmwarePrng = seeds.Fork();
        _cutPrng = seeds.Fork();
        _idlePrng = seeds.Fork();
        Prng workloadPrng = seeds.Fork();
        _arrivalPrng = seeds.Fork();
        _ftlOptions = FtlConfig.Options(config);
        _cacheOptions = CacheConfig.Options(config);
        _firmwareNand = _spi?.Driver ?? (INandDevice)_device;
        if (options.Hooks.Nand is { } nandHook)
        {
            _firmwareNand = nandHook(_firmwareNand, _device.Activity);
        }

        _plpBudgetPages = config.Get(CacheConfig.Plp)
            ? Math.Max(config.Get(CacheConfig.PlpBudgetPages), CacheConfig.PlpPagesNeeded(config))
            : 0;
        _device.HoldUp = _plpBudgetPages > 0;
        if (!Boot(recovering: false))
        {
            throw new FtlMountException(_violations[0].Detail);
        }

        _workload = options.Script is { } script
            ? new ScriptedWorkload(script)
            : SimWorkload.Create(options.Workload, workloadPrng, _cache!.DeviceBytes, options.Parameters);
        _oracle = new Oracle(
            _ftl!.LogicalSectors,
            tracksDurability: options.PowerCuts > 0,
            everyCompletionDurable: _plpBudgetPages > 0
        );
    }

    /// <summary>
    /// Commands arrive by the clock, whatever the device does (<c>--arrival-rate</c>, a timed trace), in the measured
    /// phase.
    /// </summary>
    private bool OpenLoop => _arrivalsByClock && _measuring;

    /// <summary>
    /// Why the run stopped early at the device's end of life (grown bad blocks used up the spare), or null.
    /// </summary>
    public string? EndOfLife { get; private set; }

    public void Dispose()
    {
        _nand.Dispose();
        t_buffer = _buffer;
        ForgetInFlight();
        t_hostBuffers = _freeBuffers;
    }

    public SimResult Execute()
    {
        long[] cutAt = _options.Crash is null ? PlanCuts() : [];
        int nextCut = 0;
        var wall = new Stopwatch();
        (long Read, long Programmed, long Erased, long DataPages, long Relocated) before = default;
        long measuredOps = 0;
        long crashOperations = 0;
        var preparation = Stopwatch.StartNew();
        long fillOps = _workload.PrepareOps - _workload.WarmupOps;
        double fillSeconds = 0;
        for (
            long i = 0;
            i < _workload.TotalOps
                && _violations.Count == 0
                && EndOfLife is null
                && (_options.Crash is null || _cuts.Total == 0);
            i++
        )
        {
            if (_options.Crash is { } plan && i == plan.FirstCommand)
            {
                crashOperations = -_device.Operations;
                _device.CutDuring(plan.DuringNandOperation);
            }

            Report(i, fillOps);
            if (_timeline is not null && i % Math.Max(1, _workload.TotalOps / 256) == 0)
            {
                Sample();
            }

            if (i == fillOps && _workload.WarmupOps > 0)
            {
                fillSeconds = preparation.Elapsed.TotalSeconds;
            }

            if (i == _workload.PrepareOps)
            {
                preparation.Stop();
                fillSeconds = _workload.WarmupOps > 0 ? fillSeconds : preparation.Elapsed.TotalSeconds;
                // The measured phase starts on a device that has finished its preparation (the
                // fill's flush above all), whatever the queue depth.
                Drain();
                _measuring = true;
                _measuredFrom = _clock.NowNanoseconds;
                _nextArrival = _measuredFrom;
                before = Counts();
                wall.Start();
            }

            if (nextCut < cutAt.Length && cutAt[nextCut] == i)
            {
                // What a cut at this instant would take with it, whenever the armed cut strikes.
                _cuts.Armed++;
                _cuts.DirtySectorsWhenArmed += _loop!.Cache.DirtySectors;
                _device.CutDuring(1 + _cutPrng.NextInt(64));
                while (nextCut < cutAt.Length && cutAt[nextCut] == i)
                {
                    nextCut++;
                }
            }

            HostRequest request = _workload.Next();
            if (OpenLoop)
            {
                // Open loop (the measured phase; the preparation runs closed): the next command
                // arrives a drawn time after the last one, or at its time in the trace, whatever the
                // device is doing; until then the loop goes on with what it has.
                _nextArrival =
                    _workload.Arrival >= 0
                        ? Math.Max(_nextArrival, _measuredFrom + _workload.Arrival)
                        : _nextArrival
                            + (long)(-Math.Log(1 - _arrivalPrng.NextDouble()) * 1e9 / _options.Parameters.ArrivalRate);
                while (_clock.NowNanoseconds < _nextArrival && Progress(_nextArrival)) { }
            }

            Submit(request);
            measuredOps += _measuring ? 1 : 0;
            if (_queueDepth == 1 && !OpenLoop)
            {
                Drain();
            }

            if (_options.Crash?.AfterCommand == i && _cuts.Total == 0)
            {
                CutBetweenCommands(i);
            }

            Idle();
        }

        crashOperations += _device.Operations;
        if (_options.Crash is not null)
        {
            _device.CutDuring(0);
        }

        Drain();
        if (_violations.Count == 0 && EndOfLife is null && (_options.Crash is null || _cuts.Total == 0))
        {
            Submit(HostRequest.Flush);
            Drain();
        }

        _device.CutDuring(0);
        wall.Stop();
        if (!_measuring)
        {
            before = Counts();
        }

        (long Read, long Programmed, long Erased, long DataPages, long Relocated) after = Counts();
        (long read, long programmed, long erased, long dataPages, long relocated) = (
            after.Read - before.Read,
            after.Programmed - before.Programmed,
            after.Erased - before.Erased,
            after.DataPages - before.DataPages,
            after.Relocated - before.Relocated
        );
        if (_violations.Count == 0)
        {
            CheckWholeDevice(afterCut: false);
        }

        FlashTranslationLayer ftl = _ftl!;
        if (_timeline is not null)
        {
            Sample();
        }

        int pageBytes = _nand.Geometry.PageBytes;
        long copied =
            (2 * (_hostBytesWritten + _hostBytesRead)) + ((read + programmed) * pageBytes) + (relocated * SectorBytes);
        double physical = ftl.Capacity.PhysicalSectors;
        var latency = new LatencyHistogram();
        foreach (LatencyHistogram operation in _opLatency)
        {
            latency.Add(operation);
        }

        _cuts.UnflushedSectors = _oracle.UnflushedAtCuts;
        _cuts.UnflushedSectorsLost = _oracle.UnflushedLost;
        return new SimResult(
            _options,
            _config,
            measuredOps,
            _hostBytesWritten,
            read,
            programmed,
            erased,
            pageBytes,
            dataPages,
            ftl.Capacity.SpareFactor,
            physical <= 0 ? 0 : (physical - (_workload.LiveBytes / SectorBytes)) / physical,
            _trace.Hash,
            wall.Elapsed.TotalSeconds,
            _clock.NowNanoseconds / 1e9,
            (latency.Percentile(0.5) / 1e3, latency.Percentile(0.99) / 1e3, latency.Percentile(0.999) / 1e3),
            ftl.Wear(),
            ftl.Statistics,
            _violations,
            _cuts,
            copied,
            CacheMetrics()
        )
        {
            Timeline = _timeline ?? [],
            CutSeconds = _timeline is null ? [] : _cutSeconds,
            EraseCounts = _timeline is null ? [] : ftl.EraseCounts(),
            LatencyBuckets = _timeline is null
                ? []
                :
                [
                    .. Enum.GetValues<HostOpcode>()
                        .Where(o => _opLatency[(int)o].Count > 0)
                        .Select(o =>
                            (
                                OperationLatencyOf(o, _opLatency[(int)o]).Operation,
                                (IReadOnlyList<(long, long)>)[.. _opLatency[(int)o].Buckets()]
                            )
                        ),
                ],
            FillWallSeconds = fillSeconds,
            WarmupWallSeconds = Math.Max(0, preparation.Elapsed.TotalSeconds - fillSeconds),
            EndOfLife = EndOfLife,
            CrashNandOperations = crashOperations,
            Operations =
            [
                .. Enum.GetValues<HostOpcode>()
                    .Where(o => _opLatency[(int)o].Count > 0)
                    .Select(o => OperationLatencyOf(o, _opLatency[(int)o])),
            ],
            MeasuredVirtualSeconds = Math.Max(0, _lastMeasuredCompletion - _measuredFrom) / 1e9,
            HostBytesRead = _hostBytesRead,
            QueueDepth = _queueDepth,
            ReadsOverlappingWrites = _overlappedReads,
            WritesOverlappingWrites = _overlappedWrites,
            Notes = _workload.Notes,
        };
    }

    /// <summary>Adds the run's counters now to the timeline.</summary>
    private void Sample()
    {
        CacheStatistics cache = _cache is null ? _earlierCaches : _earlierCaches.Plus(_cache.Statistics);
        _timeline!.Add(
            new SimSample(
                _clock.NowNanoseconds / 1e9,
                _measuring,
                _allHostBytesWritten,
                _nand.Statistics.PagesProgrammed * _nand.Geometry.PageBytes,
                Relocated() * SectorBytes,
                cache.SectorHits,
                cache.SectorMisses,
                (_cache?.SectorsHeld ?? 0) * SectorBytes
            )
        );
    }

    /// <summary>
    /// Tells <see cref="SimOptions.Progress"/> where command <paramref name="i"/> is: at each phase's start and every
    /// 1% of it.
    /// </summary>
    private void Report(long i, long fillOps)
    {
        if (_options.Progress is not { } progress)
        {
            return;
        }

        (string phase, long start, long total) =
            i < fillOps ? ("fill", 0, fillOps)
            : i < _workload.PrepareOps ? ("warm-up", fillOps, _workload.WarmupOps)
            : ("measure", _workload.PrepareOps, _workload.MeasuredOps);
        long done = i - start;
        if (done == 0 || done % Math.Max(1, total / 100) == 0)
        {
            progress(new SimProgress(phase, done, total));
        }
    }

    /// <summary>
    /// The crash test's cut between commands: right after command <paramref name="index"/> completed (on hold-up energy
    /// with PLP).
    /// </summary>
    private void CutBetweenCommands(long index)
    {
        _device.CutBetweenCommands();
        try
        {
            if (_device.PowerFailPending)
            {
                SaveOnHoldUp();
            }
        }
        catch (PowerCutException) { }
        catch (Exception e) when (IsFirmwareFailure(e))
        {
            Fail($"the firmware failed saving on hold-up energy after op {index + 1}: {e.GetType().Name}: {e.Message}");
            return;
        }

        _oracle.PowerCut([], $"after op {index + 1} completed");
        Recover();
    }

    /// <summary>The host commands at which a cut is armed: drawn uniformly over the whole run.</summary>
    private long[] PlanCuts()
    {
        var cuts = new long[_options.PowerCuts];
        for (int i = 0; i < cuts.Length; i++)
        {
            cuts[i] = (long)_cutPrng.NextUInt64((ulong)Math.Max(1, _workload.TotalOps));
        }

        Array.Sort(cuts);
        return cuts;
    }

    /// <summary>
    /// Hands one command to the loop once there is room for it (fewer than the queue depth in
    /// flight) and fewer than <see cref="MaxOverlappingWrites"/> commands in flight write a sector it
    /// writes: reads may overlap writes in flight, writes may overlap writes, flushes may be in
    /// flight with writes and with each other, and the oracle accepts what NBD allows of them. The
    /// loop steps on meanwhile.
    /// </summary>
    private void Submit(HostRequest request)
    {
        // An open loop's command arrived now, and the time it waits for room counts; a closed loop's
        // arrives when there is room for it.
        long arrived = _clock.NowNanoseconds;
        while (_inFlight.Count >= _queueDepth || Conflicts(request))
        {
            if (!Progress())
            {
                return;
            }
        }

        if (!OpenLoop)
        {
            arrived = _clock.NowNanoseconds;
        }

        uint id = _oracle.Submit(request.Opcode, request.Flags, request.Offset, request.Length);
        if (
            _inFlight.Exists(c =>
                Overlaps(c.Request, request)
                && (c.Request.Opcode == HostOpcode.Read) != (request.Opcode == HostOpcode.Read)
            )
        )
        {
            _overlappedReads++;
        }

        if (
            request.Opcode is not (HostOpcode.Read or HostOpcode.Flush)
            && _inFlight.Exists(c =>
                c.Request.Opcode is not (HostOpcode.Read or HostOpcode.Flush) && Overlaps(c.Request, request)
            )
        )
        {
            _overlappedWrites++;
        }

        byte[] buffer = TakeBuffer(request.Length);
        Memory<byte> memory = Memory<byte>.Empty;
        if (request.Opcode is HostOpcode.Read or HostOpcode.Write)
        {
            memory = buffer.AsMemory(0, (int)request.Length);
            if (request.Opcode == HostOpcode.Write)
            {
                BlockStamp.FillRange(memory.Span, request.Offset / BlockStamp.Bytes, id);
            }
        }

        HostRequest sent = _options.Hooks.Command?.Invoke(request) ?? request;
        var command = new HostCommand
        {
            Id = id,
            Opcode = sent.Opcode,
            Flags = sent.Flags,
            Offset = sent.Offset,
            Length = sent.Length,
            Buffer = memory,
        };
        _trace.Submit(_clock.NowNanoseconds, id, request.Opcode, request.Flags, request.Offset, request.Length);
        if (!_loop!.TrySubmit(command))
        {
            throw new InvalidOperationException("the loop's queue is full below the queue depth");
        }

        _inFlight.Add(new InFlightCommand(id, request, buffer, _measuring, arrived));
    }

    /// <summary>Steps until every command in flight has completed (or the run stops).</summary>
    private void Drain()
    {
        while (_inFlight.Count > 0 && Progress()) { }
    }

    /// <summary>
    /// One step of the loop, or, when it has nothing to do now, the clock moved to its next event
    /// (with <paramref name="until"/>, the end of the host's idle time: background work's next
    /// step too, and no further than that); then every completion is taken. A power cut or a
    /// failure of the firmware ends every command in flight. Returns false when the run must stop.
    /// </summary>
    private bool Progress(long until = long.MaxValue)
    {
        ControllerLoop loop = _loop!;
        try
        {
            StepOrAdvance(until);
        }
        catch (PowerCutException)
        {
            _oracle.PowerCut(InFlightIds(), Describe(_device.LastCut!));
            ForgetInFlight();
            Recover();
            return _violations.Count == 0;
        }
        catch (Exception e) when (IsFirmwareFailure(e))
        {
            InFlightCommand first = _inFlight.Count > 0 ? _inFlight[0] : default;
            HostRequest r = first.Request;
            Fail(
                _inFlight.Count > 0
                    ? $"the firmware failed with op {first.Id} ({r.Opcode} {r.Offset}+{r.Length}){(_inFlight.Count > 1 ? $" and {_inFlight.Count - 1} more" : string.Empty)} in flight: {e.GetType().Name}: {e.Message}"
                    : $"the firmware failed: {e.GetType().Name}: {e.Message}"
            );
            ForgetInFlight();
            return false;
        }

        while (loop.TryTakeCompletion(out HostCompletion completion))
        {
            _trace.Complete(completion);
            int index = _inFlight.FindIndex(c => c.Id == completion.Id);
            InFlightCommand done = _inFlight[index];
            _inFlight.RemoveAt(index);
            OnCompletion(done, completion);
            _freeBuffers.Push(done.Buffer);
        }

        return _violations.Count == 0;
    }

    private void OnCompletion(InFlightCommand done, HostCompletion completion)
    {
        (uint id, HostRequest request) = (done.Id, done.Request);
        bool ok = completion.Status == HostStatus.Ok;
        _oracle.Complete(id, ok);
        _allHostBytesWritten += ok && request.Opcode == HostOpcode.Write ? request.Length : 0;
        if (done.Measured)
        {
            // From the command's arrival: in an open loop, the time it waited for room counts.
            _opLatency[(int)request.Opcode].Record(completion.CompletedAtNanoseconds - done.ArrivedAtNanoseconds);
            _hostBytesWritten += request.Opcode == HostOpcode.Write ? request.Length : 0;
            _hostBytesRead += request.Opcode == HostOpcode.Read ? request.Length : 0;
            _heldSum += _cache!.SectorsHeld;
            _heldSamples++;
            _lastMeasuredCompletion = Math.Max(_lastMeasuredCompletion, completion.CompletedAtNanoseconds);
        }

        if (!ok && request.Opcode == HostOpcode.Read && completion.Status == HostStatus.IoError)
        {
            long sector = request.Offset / SectorBytes;
            _violations.Add(
                new Violation(
                    ViolationClass.BitCorruption,
                    sector,
                    $"op {id} (read {request.Offset}+{request.Length}) got a media error: the NAND could not return the data intact",
                    _oracle.History(sector)
                )
            );
        }
        else if (!ok && completion.Status == HostStatus.NoSpace && _ftl!.WornOut() is { } wornOut)
        {
            // Not a violation: the device is at the end of its life. The run stops writing, and
            // what was written before must still read back.
            EndOfLife = $"op {id} ({request.Opcode} {request.Offset}+{request.Length}) failed with no space: {wornOut}";
            _trace.Event(_clock.NowNanoseconds, $"end of life: {EndOfLife}");
        }
        else if (!ok)
        {
            string why =
                completion.Status == HostStatus.NoSpace && _loop!.LastFailure is { } reason
                    ? $": {reason}"
                    : string.Empty;
            Fail($"op {id} ({request.Opcode} {request.Offset}+{request.Length}) failed with {completion.Status}{why}");
        }
        else if (
            request.Opcode == HostOpcode.Read
            && _oracle.CheckExact(request.Offset, done.Buffer.AsSpan(0, (int)request.Length), id) is { } violation
        )
        {
            _violations.Add(violation);
        }
    }

    /// <summary>
    /// The most commands that write a common sector the host keeps in flight together: enough for
    /// every order of two and three writes to land, few enough that the oracle's states of a sector
    /// (at most 2 to the power of this) stay small.
    /// </summary>
    private const int MaxOverlappingWrites = 3;

    /// <summary>True when <paramref name="request"/> may not be in flight with the commands that are.</summary>
    private bool Conflicts(HostRequest request)
    {
        if (request.Opcode is HostOpcode.Read or HostOpcode.Flush)
        {
            return false;
        }

        int overlapping = 0;
        foreach (InFlightCommand other in _inFlight)
        {
            HostRequest r = other.Request;
            if (
                r.Opcode is not (HostOpcode.Read or HostOpcode.Flush)
                && Overlaps(request, r)
                && ++overlapping >= MaxOverlappingWrites
            )
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when the two touch a common 4 KiB sector (the device's unit of atomicity, and the oracle's).
    /// </summary>
    private static bool Overlaps(HostRequest a, HostRequest b)
    {
        const long sector = FirmwareConfig.SectorBytes;
        return a.Offset / sector * sector < b.Offset + b.Length && b.Offset / sector * sector < a.Offset + a.Length;
    }

    private uint[] InFlightIds() => [.. _inFlight.Select(c => c.Id)];

    private void ForgetInFlight()
    {
        foreach (InFlightCommand command in _inFlight)
        {
            _freeBuffers.Push(command.Buffer);
        }

        _inFlight.Clear();
    }

    /// <summary>
    /// A host buffer of at least <paramref name="bytes"/> bytes, from those no command in flight holds.
    /// </summary>
    private byte[] TakeBuffer(long bytes)
    {
        byte[] buffer = _freeBuffers.Count > 0 ? _freeBuffers.Pop() : new byte[Math.Max(bytes, 64 * 1024)];
        return buffer.Length >= bytes ? buffer : new byte[bytes];
    }

    /// <summary>
    /// One step of the loop, or, when it has nothing to do now, the clock moved to its next event
    /// (before <paramref name="until"/>, the end of the host's idle time, also to background work's
    /// next step, and no further than that); then a power fail on hold-up energy is saved.
    /// </summary>
    private void StepOrAdvance(long until)
    {
        ControllerLoop loop = _loop!;
        if (!loop.Step())
        {
            // While the host is idle, background work goes on until the host comes back.
            long? next = loop.NextEventNanoseconds
                ?? (
                    until < long.MaxValue
                        ? Earliest(loop.BackgroundReadyAtNanoseconds, loop.DirtyExpiresAtNanoseconds)
                        : null
                );
            if (until < long.MaxValue && (next is null || next > until))
            {
                next = until;
            }

            _clock.AdvanceTo(
                next
                    ?? throw new InvalidOperationException(
                        $"the loop has {_inFlight.Count} host commands in flight and nothing to do"
                    )
            );
        }

        if (_device.PowerFailPending)
        {
            SaveOnHoldUp();
        }
    }

    private static long? Earliest(long? a, long? b) =>
        a is null ? b
        : b is null ? a
        : Math.Min(a.Value, b.Value);

    /// <summary>Runs one command alone: submits it and steps until it completes (the device checks).</summary>
    private HostCompletion Execute(HostCommand command)
    {
        ControllerLoop loop = _loop!;
        if (!loop.TrySubmit(command))
        {
            throw new InvalidOperationException("the loop's queue is full with no command in flight");
        }

        while (true)
        {
            StepOrAdvance(long.MaxValue);
            if (loop.TryTakeCompletion(out HostCompletion completion))
            {
                _trace.Complete(completion);
                return completion;
            }
        }
    }

    /// <summary>
    /// A command between its arrival and its completion (it reached the loop when there was room for it).
    /// </summary>
    private readonly record struct InFlightCommand(
        uint Id,
        HostRequest Request,
        byte[] Buffer,
        bool Measured,
        long ArrivedAtNanoseconds
    );

    /// <summary>
    /// Host idle time: the loop does background work (GC, wear levelling, checkpoints) until the next command arrives.
    /// </summary>
    private void Idle()
    {
        if (_workload.IdleNanoseconds <= 0 || _violations.Count > 0 || _arrivalsByClock)
        {
            return;
        }

        long until = _clock.NowNanoseconds + (long)(-Math.Log(1 - _idlePrng.NextDouble()) * _workload.IdleNanoseconds);
        while (_clock.NowNanoseconds < until && Progress(until)) { }
    }

    /// <summary>Power-loss protection: the hold-up energy powers a save of the cache, then the power goes.</summary>
    private void SaveOnHoldUp()
    {
        long pages = _loop!.SaveOnPowerFail();
        long ready = _clock.NowNanoseconds;
        for (int die = 0; die < _nand.Geometry.Dies; die++)
        {
            ready = Math.Max(ready, _nand.GetDieStatus(die).ReadyAtNanoseconds);
        }

        _device.CutNow(ready);
        _cuts.HoldUpSaves++;
        _trace.Event(_clock.NowNanoseconds, $"power fail on hold-up energy: saved the cache in {pages} page programs");
        throw new PowerCutException();
    }

    /// <summary>After a cut: boot again (perhaps cut again inside recovery), then check every sector.</summary>
    private void Recover()
    {
        PowerCutPoint cut = _device.LastCut!;
        _cuts.Add(cut, inRecovery: false);
        _cutSeconds.Add(cut.AtNanoseconds / 1e9);
        _trace.Event(_clock.NowNanoseconds, $"power cut: {Describe(cut)}");
        if (Boot(recovering: true))
        {
            CheckWholeDevice(afterCut: true);
        }
    }

    /// <summary>
    /// Powers on and mounts; when recovering, a third of the time the power is cut again inside
    /// recovery first. Returns false (with a dead-device violation) when the firmware does not come up.
    /// </summary>
    private bool Boot(bool recovering)
    {
        bool holdUp = _device.HoldUp;
        _device.HoldUp = false;
        try
        {
            while (true)
            {
                if (!_nand.IsPowered)
                {
                    _nand.PowerOn();
                    _spi?.PowerOn();
                }

                bool cutInRecovery = recovering && _options.Crash is null && _cutPrng.NextInt(3) == 0;
                _device.CutDuring(
                    cutInRecovery ? 1 + (long)_cutPrng.NextUInt64((ulong)Math.Max(1, _recoveryOperations)) : 0
                );
                long before =
                    _nand.Statistics.PagesRead + _nand.Statistics.PagesProgrammed + _nand.Statistics.BlocksErased;
                _mounting = true;
                MountedFirmware mounted;
                try
                {
                    mounted = MountedFirmware.Mount(
                        _firmwareNand,
                        _firmwareClock,
                        _firmwarePrng.Fork(),
                        _ftlOptions,
                        _cacheOptions,
                        _queueDepth,
                        _plpBudgetPages,
                        _options.Hooks.Store
                    );
                }
                catch (PowerCutException)
                {
                    _cuts.Add(_device.LastCut!, inRecovery: true);
                    _oracle?.PowerCut([], $"inside recovery: {Describe(_device.LastCut!)}");
                    _trace.Event(_clock.NowNanoseconds, $"power cut inside recovery: {Describe(_device.LastCut!)}");
                    continue;
                }
                catch (Exception e) when (IsFirmwareFailure(e))
                {
                    Fail(
                        $"the firmware did not come up {(recovering ? "after the power cut" : "on a fresh array")}: {e.GetType().Name}: {e.Message}"
                    );
                    return false;
                }
                finally
                {
                    _mounting = false;
                }

                _device.CutDuring(0);
                if (_ftl is { } old)
                {
                    _earlierMounts = (
                        _earlierMounts.DataPages + old.Statistics.DataPagesProgrammed,
                        _earlierMounts.Relocated + old.Statistics.SectorsRelocated
                    );
                }

                _ftl = mounted.Ftl;
                _recoveryOperations =
                    _nand.Statistics.PagesRead
                    + _nand.Statistics.PagesProgrammed
                    + _nand.Statistics.BlocksErased
                    - before;
                MountReport report = _ftl.LastMount;
                _trace.Event(
                    _clock.NowNanoseconds,
                    $"mounted: formatted {report.Formatted}, from checkpoint {report.FromCheckpoint}, {report.RecoveryPageReads} page reads, {report.ReplayedUnits} units replayed"
                );
                _earlierCaches = _cache is null ? _earlierCaches : _earlierCaches.Plus(_cache.Statistics);
                _cache = mounted.Cache;
                _loop = mounted.Loop;
                return true;
            }
        }
        finally
        {
            _device.HoldUp = holdUp;
        }
    }

    /// <summary>
    /// Reads the whole device through the loop, 256 KiB at a time, and checks every sector: exactly
    /// (no cut since the last check) or against what a cut may leave.
    /// </summary>
    private void CheckWholeDevice(bool afterCut)
    {
        long sectors = _ftl!.LogicalSectors;
        int found = 0;
        try
        {
            for (long first = 0; first < sectors && found < MaxViolationsPerCheck; first += CheckSectors)
            {
                int count = (int)Math.Min(CheckSectors, sectors - first);
                if (ReadForCheck(first, count) == HostStatus.Ok)
                {
                    for (int i = 0; i < count; i++)
                    {
                        found += Check(first + i, _buffer.AsSpan(i * SectorBytes, SectorBytes), afterCut) ? 1 : 0;
                    }

                    continue;
                }

                for (long sector = first; sector < first + count; sector++)
                {
                    HostStatus status = ReadForCheck(sector, 1);
                    if (status != HostStatus.Ok)
                    {
                        _violations.Add(
                            afterCut
                                ? _oracle.Unreadable(sector, status.ToString())
                                : new Violation(
                                    ViolationClass.BitCorruption,
                                    sector,
                                    $"the sector cannot be read ({status})",
                                    _oracle.History(sector)
                                )
                        );
                        found++;
                    }
                    else
                    {
                        found += Check(sector, _buffer.AsSpan(0, SectorBytes), afterCut) ? 1 : 0;
                    }
                }
            }
        }
        catch (Exception e) when (IsFirmwareFailure(e))
        {
            Fail($"the firmware failed while the device was read back: {e.GetType().Name}: {e.Message}");
        }
    }

    private bool Check(long sector, ReadOnlySpan<byte> data, bool afterCut)
    {
        Violation? violation = afterCut
            ? _oracle.CheckAfterCut(sector, data)
            : _oracle.CheckExact(sector * SectorBytes, data);
        if (violation is null)
        {
            return false;
        }

        _violations.Add(violation);
        return true;
    }

    private HostStatus ReadForCheck(long sector, int count)
    {
        var command = new HostCommand
        {
            Id = 0,
            Opcode = HostOpcode.Read,
            Offset = sector * SectorBytes,
            Length = (long)count * SectorBytes,
            Buffer = _buffer.AsMemory(0, count * SectorBytes),
        };
        _trace.Submit(
            _clock.NowNanoseconds,
            0,
            HostOpcode.Read,
            HostCommandOptions.None,
            command.Offset,
            command.Length
        );
        return Execute(command).Status;
    }

    private void Fail(string detail)
    {
        _violations.Add(new Violation(ViolationClass.DeadDevice, -1, detail, string.Empty));
        _trace.Event(_clock.NowNanoseconds, $"dead device: {detail}");
    }

    private static OperationLatency OperationLatencyOf(HostOpcode opcode, LatencyHistogram latencies) =>
        new(
            opcode switch
            {
                HostOpcode.Read => "read",
                HostOpcode.Write => "write",
                HostOpcode.Trim => "trim",
                HostOpcode.WriteZeroes => "write-zeroes",
                _ => "flush",
            },
            latencies.Count,
            latencies.Mean / 1e3,
            latencies.Percentile(0.5) / 1e3,
            latencies.Percentile(0.99) / 1e3,
            latencies.Percentile(0.999) / 1e3,
            latencies.Max / 1e3
        );

    private static bool IsFirmwareFailure(Exception e) =>
        e is not PowerCutException and not OutOfMemoryException and not InsufficientExecutionStackException;

    private static string Describe(PowerCutPoint cut) =>
        cut.Operation is { } operation
            ? $"during a NAND {operation.ToString().ToLowerInvariant()} in {PowerCutReport.Activity(cut.Activity)} at {cut.AtNanoseconds} ns, {cut.Torn.Count} operations torn"
            : $"between host commands at {cut.AtNanoseconds} ns, {cut.Torn.Count} operations torn";

    /// <summary>The NAND's and the FTL's counts the measured phase is the difference of.</summary>
    private (long Read, long Programmed, long Erased, long DataPages, long Relocated) Counts() =>
        (
            _nand.Statistics.PagesRead,
            _nand.Statistics.PagesProgrammed,
            _nand.Statistics.BlocksErased,
            DataPages(),
            Relocated()
        );

    private long DataPages() => _earlierMounts.DataPages + (_ftl?.Statistics.DataPagesProgrammed ?? 0);

    private long Relocated() => _earlierMounts.Relocated + (_ftl?.Statistics.SectorsRelocated ?? 0);

    private CacheMetrics CacheMetrics()
    {
        // Counted over the whole run: each boot's cache starts from zero.
        CacheStatistics stats = _earlierCaches.Plus(_cache!.Statistics);
        return new CacheMetrics(
            _config.Get(CacheConfig.TrimPolicyKey),
            _heldSamples == 0 ? 0 : _heldSum / _heldSamples * SectorBytes,
            stats.BytesMigrated,
            stats.BytesZeroed,
            stats.SectorHits + stats.SectorMisses == 0
                ? 0
                : (double)stats.SectorHits / (stats.SectorHits + stats.SectorMisses),
            (
                _opLatency[(int)HostOpcode.Trim].Percentile(0.5) / 1e3,
                _opLatency[(int)HostOpcode.Trim].Percentile(0.99) / 1e3
            ),
            stats
        );
    }
}
