using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Common;
using Controller.Host.Cli;
using Controller.Management;

namespace Controller.Host.Commands;

/// <summary>The verbs of the management endpoint: stats and power-cut.</summary>
internal static class ControlCommands
{
    private static readonly OptionSpec[] s_access = [CommonOptions.Control, CommonOptions.ControlToken];

    public static readonly Verb Stats = new(
        "stats",
        "the device's counters, once or live (--watch)",
        "Prints the device's stats from the management endpoint (tcp://HOST:PORT, tls://HOST:PORT or unix:PATH, as given to serve --control): host commands and bytes, cache occupancy, dirty and hole sectors, free and bad blocks, erase counts, write amplification, NAND counters, latency percentiles.",
        [
            .. s_access,
            new("--watch", null, "follow the telemetry channel: a line per interval with IOPS and MiB/s, until Ctrl-C"),
            new("--json", null, "JSON (one object; with --watch one object a line)"),
        ],
        RunStatsAsync
    )
    {
        Epilogue = "Example:\n  ssdhost stats --control unix:/tmp/ssd.ctl --watch",
    };

    public static readonly Verb PowerCut = new(
        "power-cut",
        "cut the emulated power; the device recovers and serves again",
        "Cuts the emulated SSD's power at this instant through the management endpoint: what the DRAM cache held unflushed is lost (unless power-loss protection saves it), NAND operations in flight are torn, every NBD connection ends. The firmware recovers from the NAND and serves again; clients reconnect.",
        [.. s_access, HostOptions.Json],
        RunPowerCutAsync
    )
    {
        Epilogue = "Example:\n  ssdhost power-cut --control unix:/tmp/ssd.ctl",
    };

    private static async Task<int> RunStatsAsync(CommandArgs args, HostConsole console, CancellationToken cancellation)
    {
        await using ManagementClient client = await Connection
            .OpenControlAsync(args, cancellation)
            .ConfigureAwait(false);
        bool json = args.Has("--json");
        if (!args.Has("--watch"))
        {
            DeviceStats stats = await client.Control.GetStatsAsync(cancellation).ConfigureAwait(false);
            await console
                .Out.WriteLineAsync(json ? JsonSerializer.Serialize(stats, ManagementJson.Options) : Describe(stats))
                .ConfigureAwait(false);
            return 0;
        }

        if (!json)
        {
            await console
                .Out.WriteLineAsync(
                    "time                      IOPS   read MiB/s  write MiB/s  dirty  holes  free blocks  WAF    write p99 us"
                )
                .ConfigureAwait(false);
        }

        try
        {
            await foreach (TelemetrySample sample in client.TelemetryAsync(cancellation).ConfigureAwait(false))
            {
                LatencySummary write = sample.Stats.LatencyMicroseconds.GetValueOrDefault("write")
                    ?? new LatencySummary();
                await console
                    .Out.WriteLineAsync(
                        json
                            ? JsonSerializer.Serialize(sample, ManagementJson.Options)
                            : string.Create(
                                CultureInfo.InvariantCulture,
                                $"{sample.Time, -24} {sample.Iops, 8:0} {sample.ReadMibPerSecond, 12:0.0} {sample.WriteMibPerSecond, 12:0.0} {sample.Stats.Cache.DirtySectors, 6} {sample.Stats.Cache.HoleSectors, 6} {sample.Stats.Ftl.FreeBlocks, 12} {sample.Stats.Waf, 6:0.00} {write.P99, 15:0}"
                            )
                    )
                    .ConfigureAwait(false);
                await console.Out.FlushAsync(cancellation).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            return 0;
        }

        return 0;
    }

    private static async Task<int> RunPowerCutAsync(
        CommandArgs args,
        HostConsole console,
        CancellationToken cancellation
    )
    {
        await using ManagementClient client = await Connection
            .OpenControlAsync(args, cancellation)
            .ConfigureAwait(false);
        PowerCutResult cut = await client.Control.PowerCutAsync(cancellation).ConfigureAwait(false);
        await console
            .Out.WriteLineAsync(
                args.Has("--json")
                    ? JsonSerializer.Serialize(cut, ManagementJson.Options)
                    : string.Create(
                        CultureInfo.InvariantCulture,
                        $"power cut: {cut.ConnectionsEnded} NBD connections ended, {cut.TornOperations} NAND operations torn, {cut.DirtySectorsLost} dirty sectors lost, {cut.PagesSavedOnHoldUp} pages saved on hold-up; recovered with {cut.RecoveryPageReads} page reads, {cut.RecoveryUnitsReplayed} units replayed; serving again"
                    )
            )
            .ConfigureAwait(false);
        return 0;
    }

    public static readonly Verb PowerFail = new(
        "power-fail",
        "raise the power-fail signal: the cache is saved on hold-up energy",
        "Raises the power-fail signal, as a board's power-fail pin (board.powerFailPin) does when its supercapacitor monitor sees the supply go: power-loss protection (power.plp) writes back every dirty sector and flushes on hold-up energy. On the emulator (serve, or ssd-board with the emulated chip) the power then goes: every NBD connection ends, the firmware recovers and serves again, with nothing acknowledged lost. On a board with a real chip the firmware stops after the save (the server exits 1) and the next boot recovers. Refused when power-loss protection is off.",
        [.. s_access, HostOptions.Json],
        RunPowerFailAsync
    )
    {
        Epilogue = "Example:\n  ssdhost power-fail --control unix:/tmp/ssd.ctl",
    };

    private static async Task<int> RunPowerFailAsync(
        CommandArgs args,
        HostConsole console,
        CancellationToken cancellation
    )
    {
        await using ManagementClient client = await Connection
            .OpenControlAsync(args, cancellation)
            .ConfigureAwait(false);
        PowerFailResult result = await client.Control.PowerFailAsync(cancellation).ConfigureAwait(false);
        string text =
            string.Create(
                CultureInfo.InvariantCulture,
                $"power fail: {result.DirtySectorsSaved} dirty sectors saved in {result.PagesSavedOnHoldUp} page programs on hold-up energy (budget {result.HoldUpBudgetPages})"
            )
            + (
                result.Cut is { } cut
                    ? string.Create(
                        CultureInfo.InvariantCulture,
                        $"; the power went: {cut.ConnectionsEnded} NBD connections ended, {cut.TornOperations} NAND operations torn; recovered with {cut.RecoveryPageReads} page reads, {cut.RecoveryUnitsReplayed} units replayed; serving again"
                    )
                    : "; the firmware stopped, the next boot recovers"
            );
        await console
            .Out.WriteLineAsync(args.Has("--json") ? JsonSerializer.Serialize(result, ManagementJson.Options) : text)
            .ConfigureAwait(false);
        return 0;
    }

    private static string Describe(DeviceStats s)
    {
        var text = new System.Text.StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(
            c,
            $"device:     {s.Device}, {s.CapacityBytes} bytes ({ByteUnits.Binary(s.CapacityBytes)}), up {s.UptimeSeconds:0.0} s, {s.PowerCuts} power cuts"
        );
        text.AppendLine(
            c,
            $"host:       {s.Host.Reads} reads ({ByteUnits.Binary(s.Host.BytesRead)}), {s.Host.Writes} writes ({ByteUnits.Binary(s.Host.BytesWritten)}), {s.Host.Trims} trims, {s.Host.WriteZeroes} write-zeroes ({ByteUnits.Binary(s.Host.BytesTrimmed)}), {s.Host.Flushes} flushes, {s.Host.Errors} errors"
        );
        text.AppendLine(
            c,
            $"cache:      {s.Cache.SectorsHeld} of {s.Cache.CapacitySectors} sectors held, {s.Cache.DirtySectors} dirty, {s.Cache.HoleSectors} holes, {s.Cache.PagesCached} large pages; {s.Cache.SectorHits} hits, {s.Cache.SectorMisses} misses, {s.Cache.Evictions} evictions"
        );
        text.AppendLine(
            c,
            $"trim:       {s.Cache.PartialPagePunches} partial punches, fallbacks {s.Cache.SplitFallbacks} split / {s.Cache.MigrateFallbacks} migrate, {s.Cache.CleanPagesReclaimed} clean pages reclaimed, {s.Cache.BytesMigrated} bytes migrated, {s.Cache.BytesZeroed} zeroed (since the server started)"
        );
        text.AppendLine(
            c,
            $"ftl:        {s.Ftl.MappedSectors} of {s.Ftl.LogicalSectors} sectors mapped, {s.Ftl.FreeBlocks} free blocks, {s.Ftl.BadBlocks} bad; erase counts {s.Ftl.EraseCountMin}..{s.Ftl.EraseCountMax} (mean {s.Ftl.EraseCountMean:0.00}); {s.Ftl.GcVictims} GC victims, {s.Ftl.SectorsRelocated} sectors relocated, {s.Ftl.Checkpoints} checkpoints"
        );
        text.AppendLine(
            c,
            $"nand:       {s.Nand.PagesRead} pages read, {s.Nand.PagesProgrammed} programmed, {s.Nand.BlocksErased} blocks erased; {s.Nand.CorrectedReads} corrected, {s.Nand.UncorrectableReads} uncorrectable; {s.Nand.ProgramFailures} program and {s.Nand.EraseFailures} erase failures"
        );
        text.AppendLine(c, $"WAF:        {s.Waf:0.000}");
        text.Append("latency us: ");
        text.AppendJoin(
            "; ",
            s.LatencyMicroseconds.Where(p => p.Value.Count > 0)
                .Select(p =>
                    string.Create(
                        c,
                        $"{p.Key} p50 {p.Value.P50:0} p99 {p.Value.P99:0} p99.9 {p.Value.P999:0} ({p.Value.Count})"
                    )
                )
        );
        return text.ToString();
    }
}
