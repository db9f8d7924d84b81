using System.Diagnostics;
using System.Globalization;
using Controller.Common;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Hosting.Recording;
using Controller.Management;

namespace Controller.Hosting;

/// <summary>
/// The SSD's side of the management endpoint: every request runs on the loop's thread, between commands.
/// </summary>
public sealed partial class ServedController : IManagementService
{
    private static readonly string[] s_opcodeNames = ["read", "write", "trim", "write-zeroes", "flush"];
    private readonly long[] _commands = new long[s_opcodeNames.Length];
    private readonly LatencyHistogram[] _latencies = [.. s_opcodeNames.Select(_ => new LatencyHistogram())];
    private readonly long _startedTimestamp = Stopwatch.GetTimestamp();
    private long _errors;
    private long _bytesRead;
    private long _bytesWritten;
    private long _bytesTrimmed;
    private long _powerCuts;

    /// <summary>
    /// Ends every NBD connection (a power cut takes the device away from its clients); returns how many there were.
    /// </summary>
    public Func<int>? EndConnections { get; set; }

    /// <summary>Where the power cuts and faults made through the endpoint are logged.</summary>
    public ManagementLog? Log { get; set; }

    /// <inheritdoc />
    public Task<DeviceStats> GetStatsAsync(CancellationToken cancellationToken) => OnLoopAsync(Snapshot);

    /// <inheritdoc />
    public async Task<PowerCutResult> PowerCutAsync(CancellationToken cancellationToken)
    {
        if (Failure is { } failure)
        {
            throw new InvalidOperationException($"the device failed ({failure.Message}); restart the server");
        }

        if (!_device.CanCutPower)
        {
            throw new NotSupportedException(
                $"{Description}: the power of real hardware is not the server's to cut; unplug the board (the firmware recovers at the next boot)"
            );
        }

        int connections = EndConnections?.Invoke() ?? 0;
        PowerCutResult result = await OnLoopAsync(() => CutPowerOnLoop() with { ConnectionsEnded = connections })
            .ConfigureAwait(false);
        Log?.Write(
            $"power cut: {result.ConnectionsEnded} connections ended, {result.TornOperations} NAND operations torn, {result.DirtySectorsLost} dirty sectors lost, {result.PagesSavedOnHoldUp} pages saved on hold-up; recovered ({result.RecoveryPageReads} page reads, {result.RecoveryUnitsReplayed} units replayed); serving again"
        );
        return result;
    }

    /// <inheritdoc />
    public async Task<PowerFailResult> PowerFailAsync(CancellationToken cancellationToken)
    {
        // An emulated device's power goes after the save: every NBD connection ends with it.
        int connections = _device.CanCutPower && _loop.PowerLossProtection ? EndConnections?.Invoke() ?? 0 : 0;
        PowerFailResult result = await OnLoopAsync(PowerFailOnLoop).ConfigureAwait(false);
        if (result.Cut is { } cut)
        {
            result = result with { Cut = cut with { ConnectionsEnded = connections } };
            Log?.Write(
                $"power fail: {result.DirtySectorsSaved} dirty sectors saved in {result.PagesSavedOnHoldUp} page programs on hold-up energy (budget {result.HoldUpBudgetPages}); the power went, {cut.TornOperations} NAND operations torn; recovered ({cut.RecoveryPageReads} page reads, {cut.RecoveryUnitsReplayed} units replayed); serving again"
            );
        }

        return result;
    }

    /// <summary>
    /// The power-fail signal on the loop's thread: refused without hold-up energy; on an emulated
    /// device, the power cut with its save; on a board, the save, after which the firmware stops
    /// (nothing more is written; the process exits and the next boot recovers).
    /// </summary>
    private PowerFailResult PowerFailOnLoop()
    {
        if (_failure is { } failure)
        {
            throw new InvalidOperationException($"the device has stopped ({failure.Message})");
        }

        if (!_loop.PowerLossProtection)
        {
            throw new InvalidOperationException(
                "power-loss protection is off (power.plp): there is no hold-up energy to save the cache on; set power.plp=true and power.plpBudgetPages, or use powerCut"
            );
        }

        long budget = _config.Get(CacheConfig.PlpBudgetPages);
        long dirty = _loop.Cache.DirtySectors;
        if (_device.CanCutPower)
        {
            PowerCutResult cut = CutPowerOnLoop();
            return new PowerFailResult
            {
                DirtySectorsSaved = dirty,
                PagesSavedOnHoldUp = cut.PagesSavedOnHoldUp,
                HoldUpBudgetPages = budget,
                Cut = cut,
            };
        }

        long saved;
        using (InFirmware())
        {
            RecordClock();
            _recorder?.Management(SessionRecordKind.PowerFail);
            _trace.Event(_device.Clock.NowNanoseconds, "power fail");
            saved = _loop.SaveOnPowerFail();
        }

        Log?.Write(
            $"power fail: {dirty} dirty sectors saved in {saved} page programs on hold-up energy (budget {budget}); stopping, the next boot recovers"
        );
        Fail(
            new PowerFailedException(
                $"the power-fail signal came; the cache was saved on hold-up energy ({saved} page programs)"
            )
        );
        return new PowerFailResult
        {
            DirtySectorsSaved = dirty,
            PagesSavedOnHoldUp = saved,
            HoldUpBudgetPages = budget,
        };
    }

    /// <inheritdoc />
    public async Task<CheckpointResult> CheckpointAsync(CancellationToken cancellationToken)
    {
        CheckpointResult result = await OnLoopAsync(() =>
            {
                if (_failure is { } failure)
                {
                    throw new InvalidOperationException(
                        $"the device failed ({failure.Message}); nothing more is written to it"
                    );
                }

                if (_readOnly)
                {
                    throw new InvalidOperationException(
                        "the export is read-only (--read-only); nothing is written to the NAND, a checkpoint included"
                    );
                }

                return CheckpointOnLoop();
            })
            .ConfigureAwait(false);
        Log?.Write(
            $"checkpoint: {result.SectorsWrittenBack} dirty sectors written back, checkpoint {result.Checkpoints} taken"
        );
        return result;
    }

    /// <inheritdoc />
    public async Task<FaultSettings> SetFaultsAsync(FaultRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        FaultSettings settings = await OnLoopAsync(() =>
            {
                FaultSettings set;
                using (InFirmware())
                {
                    set = _device.SetFaults(request);
                }

                RecordClock();
                _recorder?.Faults(System.Text.Json.JsonSerializer.Serialize(request, ManagementJson.Options));
                return set;
            })
            .ConfigureAwait(false);
        Log?.Write(
            $"faults: raw bit error rate {settings.RawBitErrorRate}, program fail {settings.ProgramFailProbability}, erase fail {settings.EraseFailProbability}, next {request.FailNextPrograms ?? 0} programs and {request.FailNextErases ?? 0} erases fail"
        );
        return settings;
    }

    /// <summary>
    /// Replays one recorded input, on the caller's thread (a controller made by
    /// <see cref="ForReplay"/>, which has no thread of its own). A write's data comes from the
    /// record. Returns the command's number for a command, else 0.
    /// </summary>
    /// <exception cref="InvalidDataException">The replay took another path than the session (a command got another
    /// number).</exception>
    public long Apply(SessionRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (_thread is not null)
        {
            throw new InvalidOperationException(
                "a served controller takes its inputs from its clients; replay on one made by ForReplay"
            );
        }

        switch (record.Kind)
        {
            case SessionRecordKind.Clock:
                _device.JumpTo(record.Nanoseconds);
                return 0;
            case SessionRecordKind.Command:
                if (_shutDown || _failure is not null)
                {
                    return 0;
                }

                byte[] buffer = new byte[record.Opcode is HostOpcode.Read or HostOpcode.Write ? record.Length : 0];
                if (record.Opcode == HostOpcode.Write)
                {
                    record.FillData(buffer);
                }

                long id = Enter(
                    record.Opcode,
                    record.Flags,
                    record.Offset,
                    record.Length,
                    buffer,
                    new Replayed(),
                    Stopwatch.GetTimestamp()
                );
                return id == record.Id
                    ? id
                    : throw new InvalidDataException(
                        $"the replay diverged: the session's command {record.Id} is command {id} here"
                    );
            case SessionRecordKind.Step:
                if (_failure is null)
                {
                    try
                    {
                        StepLoop(record.Background);
                    }
                    catch (Exception e) when (Fail(e)) { }
                }

                return 0;
            case SessionRecordKind.PowerCut:
                CutPowerOnLoop();
                return 0;
            case SessionRecordKind.Checkpoint:
                CheckpointOnLoop();
                return 0;
            case SessionRecordKind.PowerFail:
                _trace.Event(_device.Clock.NowNanoseconds, "power fail");
                _loop.SaveOnPowerFail();
                _shutDown = true;
                return 0;
            case SessionRecordKind.ClockRead:
                throw new InvalidDataException(
                    "the replay diverged: the session read its clock here and the replay did not"
                );
            case SessionRecordKind.Faults:
                _device.SetFaults(
                    System.Text.Json.JsonSerializer.Deserialize<FaultRequest>(
                        record.Text ?? "{}",
                        ManagementJson.Options
                    ) ?? new FaultRequest()
                );
                return 0;
            case SessionRecordKind.Shutdown:
                ShutdownLoop();
                _shutDown = true;
                return 0;
            default:
                return 0;
        }
    }

    /// <summary>
    /// The power cut's work on the loop's thread: commands in flight fail, the hold-up save (with PLP), the cut, the
    /// mount.
    /// </summary>
    private PowerCutResult CutPowerOnLoop()
    {
        using FirmwareScope firmware = InFirmware();
        RecordClock();
        _recorder?.Management(SessionRecordKind.PowerCut);
        _trace.Event(_device.Clock.NowNanoseconds, "power cut");
        Interlocked.Increment(ref _generation);
        FailPending();
        long dirty = _loop.Cache.DirtySectors;
        long saved = _loop.PowerLossProtection && !_readOnly ? _loop.SaveOnPowerFail() : 0;
        int torn = _device.CutPower();
        _earlierCaches = _earlierCaches.Plus(_loop.Cache.Statistics);
        (_ftl, _loop) = MountFirmware();
        _powerCuts++;
        return new PowerCutResult
        {
            TornOperations = torn,
            DirtySectorsLost = _loop.PowerLossProtection ? 0 : dirty,
            PagesSavedOnHoldUp = saved,
            RecoveryPageReads = _ftl.LastMount.RecoveryPageReads,
            RecoveryUnitsReplayed = _ftl.LastMount.ReplayedUnits,
        };
    }

    /// <summary>The checkpoint's work on the loop's thread: the cache written back, flushed, checkpointed.</summary>
    private CheckpointResult CheckpointOnLoop()
    {
        using FirmwareScope firmware = InFirmware();
        RecordClock();
        _recorder?.Management(SessionRecordKind.Checkpoint);
        long dirty = _loop.Cache.DirtySectors;
        _loop.Shutdown();
        return new CheckpointResult { Checkpoints = _ftl.Statistics.Checkpoints, SectorsWrittenBack = dirty };
    }

    /// <summary>A replayed command's end: nobody waits for it.</summary>
    private sealed class Replayed : Nbd.INbdCompletion
    {
        public void Complete(HostStatus status) { }

        public void Fail(Exception exception) { }
    }

    /// <summary>Counts a completed command (on the loop's thread).</summary>
    private void Count(HostOpcode opcode, long length, HostStatus status, TimeSpan latency)
    {
        int index = (int)opcode;
        _commands[index]++;
        _latencies[index].Record(latency.Ticks * 100);
        if (status != HostStatus.Ok)
        {
            _errors++;
            return;
        }

        switch (opcode)
        {
            case HostOpcode.Read:
                _bytesRead += length;
                break;
            case HostOpcode.Write:
                _bytesWritten += length;
                break;
            case HostOpcode.Trim or HostOpcode.WriteZeroes:
                _bytesTrimmed += length;
                break;
        }
    }

    private DeviceStats Snapshot()
    {
        (uint min, uint max, double mean) = _ftl.EraseCountSpread();
        var cache = _loop.Cache;
        var latency = new Dictionary<string, LatencySummary>();
        for (int i = 0; i < s_opcodeNames.Length; i++)
        {
            LatencyHistogram histogram = _latencies[i];
            latency[s_opcodeNames[i]] = new LatencySummary
            {
                Count = histogram.Count,
                P50 = histogram.Percentile(0.5) / 1000.0,
                P99 = histogram.Percentile(0.99) / 1000.0,
                P999 = histogram.Percentile(0.999) / 1000.0,
            };
        }

        long nandBytesProgrammed = _nand.Counters.PagesProgrammed * _nand.Geometry.PageBytes;
        // Counted since the server started: each power cut's recovery starts a new cache.
        CacheStatistics counts = _earlierCaches.Plus(cache.Statistics);
        return new DeviceStats
        {
            Device = Description,
            CapacityBytes = SizeBytes,
            UptimeSeconds = Math.Round(Stopwatch.GetElapsedTime(_startedTimestamp).TotalSeconds, 3),
            Host = new HostCounters
            {
                Reads = _commands[(int)HostOpcode.Read],
                Writes = _commands[(int)HostOpcode.Write],
                Trims = _commands[(int)HostOpcode.Trim],
                WriteZeroes = _commands[(int)HostOpcode.WriteZeroes],
                Flushes = _commands[(int)HostOpcode.Flush],
                Errors = _errors,
                BytesRead = _bytesRead,
                BytesWritten = _bytesWritten,
                BytesTrimmed = _bytesTrimmed,
            },
            Cache = new CacheGauges
            {
                CapacitySectors = cache.Capacity.Sectors,
                SectorsHeld = cache.SectorsHeld,
                DirtySectors = cache.DirtySectors,
                HoleSectors = cache.HoleSectors,
                PagesCached = cache.PagesCached,
                SectorHits = counts.SectorHits,
                SectorMisses = counts.SectorMisses,
                Evictions = counts.Evictions,
                SectorsWrittenBack = counts.SectorsWrittenBack,
                PartialPagePunches = counts.PartialPagePunches,
                SplitFallbacks = counts.SplitFallbacks,
                MigrateFallbacks = counts.MigrateFallbacks,
                CleanPagesReclaimed = counts.CleanPagesReclaimed,
                BytesMigrated = counts.BytesMigrated,
                BytesZeroed = counts.BytesZeroed,
                ReadsPastTheCache = counts.ReadsPastTheCache,
            },
            Ftl = new FtlGauges
            {
                LogicalSectors = _ftl.LogicalSectors,
                MappedSectors = _ftl.MappedSectors,
                FreeBlocks = _ftl.FreeBlocks,
                BadBlocks = _ftl.BadBlocks,
                EraseCountMin = min,
                EraseCountMax = max,
                EraseCountMean = Math.Round(mean, 2),
                GcVictims = _ftl.Statistics.GcVictims,
                SectorsRelocated = _ftl.Statistics.SectorsRelocated,
                Checkpoints = _ftl.Statistics.Checkpoints,
            },
            Nand = new NandCounters
            {
                PagesRead = _nand.Counters.PagesRead,
                PagesProgrammed = _nand.Counters.PagesProgrammed,
                BlocksErased = _nand.Counters.BlocksErased,
                CorrectedReads = _nand.Counters.CorrectedReads,
                UncorrectableReads = _nand.Counters.UncorrectableReads,
                ProgramFailures = _nand.Counters.ProgramFailures,
                EraseFailures = _nand.Counters.EraseFailures,
            },
            Waf = _bytesWritten == 0 ? 0 : Math.Round((double)nandBytesProgrammed / _bytesWritten, 3),
            LatencyMicroseconds = latency,
            PowerCuts = _powerCuts,
        };
    }
}
