using System.Globalization;
using Controller.Cli;
using Controller.Common;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Loop;
using Controller.Hosting;
using Controller.Hosting.Recording;

namespace Controller.Emulator.Cli;

/// <summary>
/// <c>sim --replay FILE</c>: a recorded <c>serve</c> session run again over the emulated NAND, on a
/// virtual clock set to the recorded instants, one input at a time on this thread. The same inputs
/// give the same execution: the same trace hash, the same final state, the same failure.
/// </summary>
internal static class SessionReplay
{
    /// <summary>
    /// A profile's JSON without the board's own section (a board's recording), which the emulated device does not use.
    /// </summary>
    private static string EmulatorKeys(string json)
    {
        System.Text.Json.Nodes.JsonNode? root = System.Text.Json.Nodes.JsonNode.Parse(json);
        if (root is System.Text.Json.Nodes.JsonObject profile && profile.Remove("board"))
        {
            return profile.ToJsonString();
        }

        return json;
    }

    public static int Run(string path, long until, string? tracePath, TextWriter output)
    {
        try
        {
            return Replay(path, until, tracePath, output);
        }
        catch (InvalidDataException e)
        {
            // The replay took another path than the session: a recording from another build, or damaged.
            output.WriteLine($"replay {Path.GetFileName(path)}: {e.Message}");
            return 1;
        }
    }

    private static int Replay(string path, long until, string? tracePath, TextWriter output)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"--replay: '{path}' does not exist");
        }

        SessionRecording recording;
        try
        {
            recording = SessionRecording.Open(path);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"--replay: {e.Message}");
        }

        using (recording)
        {
            ResolvedConfig config = ConfigLoader.Parse(
                EmulatorConfig.Schema,
                $"the recording {path}",
                EmulatorKeys(recording.ConfigJson),
                []
            );
            using TextWriter? trace = tracePath is null ? null : ExecutionTrace.OpenFile(tracePath);
            // A served session's virtual clock is set to each recorded instant; a board's clock
            // returns each recorded reading.
            IClock clock = recording.Clock == RecordedClock.Reads ? new ReplayClock(recording) : new VirtualClock();
            IServedDevice device =
                recording.Nand == RecordedNand.Outcomes
                    ? new ReplayDevice(
                        FirmwareConfig.Geometry(config),
                        recording,
                        clock,
                        (ulong)config.Get(EmulatorConfig.FaultSeed)
                    )
                    : EmulatedDevice.Open(config, "recorded", imagePath: null, clock);
            using ServedController controller = ServedController.ForReplay(device, config, "replay", trace);
            long records = 0,
                commands = 0,
                cuts = 0;
            ulong? recorded = null;
            bool stopped = false;
            foreach (SessionRecord record in recording.Records())
            {
                if (record.Kind == SessionRecordKind.Command && until > 0 && record.Id >= until)
                {
                    stopped = true;
                    break;
                }

                if (record.Kind == SessionRecordKind.End)
                {
                    recorded = record.Hash;
                    break;
                }

                try
                {
                    controller.Apply(record);
                }
                catch (InvalidDataException e)
                {
                    output.WriteLine($"replay {Path.GetFileName(path)}: {e.Message} (after {records} records)");
                    return 1;
                }

                records++;
                commands += record.Kind == SessionRecordKind.Command ? 1 : 0;
                cuts += record.Kind == SessionRecordKind.PowerCut ? 1 : 0;
            }

            string end =
                stopped ? $"stopped before command {until}"
                : recorded is not null ? "the session's end"
                : recording.Truncated
                    ? "the recording was cut short (the server was killed); replayed up to its last complete record"
                : "the recording ends without the session's end (the server did not stop cleanly)";
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"replay {Path.GetFileName(path)}: {records} records, {commands} commands, {cuts} power cuts; {end}"
                )
            );
            output.WriteLine(
                $"  device: {recording.Device}; data: {(recording.Data == RecordedData.Full ? "full" : "digest")}; NAND: {(recording.Nand == RecordedNand.Outcomes ? "its recorded outcomes" : "emulated")}"
            );
            if (controller.Failure is { } failure)
            {
                output.WriteLine(
                    $"  the firmware failed, as in the session: {failure.GetType().Name}: {failure.Message}"
                );
            }

            bool same = recorded is null || recorded == controller.TraceHash;
            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"trace-hash={controller.TraceHash:x16}{(recorded is { } hash ? same ? " (the session's)" : $" DIFFERS from the session's {hash:x16}" : string.Empty)}"
                )
            );
            return same && controller.Failure is null ? 0 : 1;
        }
    }
}
