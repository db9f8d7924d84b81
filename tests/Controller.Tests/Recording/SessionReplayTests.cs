using System.Text.RegularExpressions;
using Controller.Emulator.Cli;
using Controller.Hosting.Recording;
using Controller.Tests.Support;

namespace Controller.Tests.Recording;

/// <summary>
/// A recorded serve session replayed in the sim: the standard clients and a power cut over the
/// management endpoint, digest data, a killed server, a bisecting stop; and a tampered recording,
/// which the replay must find differs.
/// </summary>
[Trait("Category", "Interop")]
public sealed partial class SessionReplayTests
{
    [SkippableFact]
    public async Task ASessionOfQemuIoFioAndAPowerCutReplaysToItsTraceHash()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        string fio = ExternalTool.Require("fio", "fio");
        using var temp = new TempDirectory();
        string recording = temp.File("session.rec");
        using var server = await ServerProcess.StartAsync(temp, control: true, extra: ["--record", recording]);

        var write = ExternalTool.Run(
            qemuIo,
            "-f",
            "raw",
            server.Uri,
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "write -z 256k 64k",
            "-c",
            "discard 512k 128k",
            "-c",
            "flush"
        );
        var load = ExternalTool.Run(
            fio,
            "--name=mix",
            "--ioengine=nbd",
            $"--uri={server.Uri}",
            "--rw=randrw",
            "--bs=4k",
            "--iodepth=8",
            "--size=2M",
            "--number_ios=600",
            "--randseed=5"
        );
        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var read = ExternalTool.Run(
            qemuIo,
            "-f",
            "raw",
            server.Uri,
            "-c",
            "read -P 0xab 768k 64k",
            "-c",
            "write -P 0x11 0 4k"
        );
        (int exitCode, string stopped) = await server.StopAsync("TERM");
        var (replayed, output) = Replay(recording);

        Assert.True(write.ExitCode == 0, write.Error);
        Assert.True(load.ExitCode == 0, load.Error);
        Assert.Equal(0, cut.ExitCode);
        Assert.True(read.ExitCode == 0, read.Error);
        Assert.Equal(0, exitCode);
        string hash = TraceHash().Match(stopped).Groups[1].Value;
        Assert.Matches("^[0-9a-f]{16}$", hash);
        Assert.True(replayed == 0, output);
        Assert.Contains($"trace-hash={hash} (the session's)", output, StringComparison.Ordinal);
        Assert.Contains(" 1 power cuts; the session's end", output, StringComparison.Ordinal);
    }

    /// <summary>
    /// A board's clock moves by itself and its chip is BUSY in real time: every reading is recorded, and the replay
    /// returns them.
    /// </summary>
    [Fact]
    public async Task AnEmulatedBoardSessionWithAPowerCutReplaysToItsTraceHash()
    {
        using var temp = new TempDirectory();
        string recording = temp.File("board.rec");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                Path.Combine(AppContext.BaseDirectory, "ssd-board.dll"),
                "--board",
                Repository.PathOf("hw-config", "boards", "emulated.json"),
                "--record",
                recording,
            },
        };
        using var board = await ServerProcess.StartCommandAsync(temp, start, control: true, TimeSpan.FromMinutes(1));

        var before = await HostRun.RunAsync(
            "bench",
            board.Uri,
            "--rw",
            "randrw",
            "--bs",
            "16k",
            "--size",
            "2M",
            "--count",
            "200",
            "--iodepth",
            "4"
        );
        var cut = await HostRun.RunAsync("power-cut", "--control", board.Control);
        var after = await HostRun.RunAsync("write", board.Uri, "0", "--length", "128k", "--pattern", "7", "--fua");
        (int exitCode, string stopped) = await board.StopAsync("TERM");
        var (replayed, output) = Replay(recording);

        Assert.Equal(0, before.ExitCode);
        Assert.Equal(0, cut.ExitCode);
        Assert.Equal(0, after.ExitCode);
        Assert.Equal(0, exitCode);
        Assert.True(replayed == 0, output);
        Assert.Contains(
            $"trace-hash={TraceHash().Match(stopped).Groups[1].Value} (the session's)",
            output,
            StringComparison.Ordinal
        );
        Assert.Contains(" 1 power cuts; the session's end", output, StringComparison.Ordinal);
    }

    /// <summary>
    /// A session that starts from an image holding data: the recording keeps every NAND outcome
    /// (as on a real chip), and the replay, which has no image, answers from them.
    /// </summary>
    [Fact]
    public async Task ASessionOnAnImageThatHoldsDataReplaysFromItsNandOutcomes()
    {
        using var temp = new TempDirectory();
        string image = temp.File("ssd.img");
        using (var first = await ServerProcess.StartAsync(temp, image))
        {
            Assert.Equal(
                0,
                (await HostRun.RunAsync("write", first.Uri, "0", "--length", "2M", "--pattern", "0x3c")).ExitCode
            );
            await first.StopAsync("TERM");
        }

        string recording = temp.File("image.rec");
        using var server = await ServerProcess.StartAsync(temp, image, control: true, extra: ["--record", recording]);
        var read = await HostRun.RunAsync("read", server.Uri, "0", "1M", "--expect-pattern", "0x3c");
        var bench = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "randrw",
            "--bs",
            "8k",
            "--size",
            "4M",
            "--count",
            "300",
            "--iodepth",
            "4"
        );
        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var again = await HostRun.RunAsync("read", server.Uri, "1536k", "256k", "--expect-pattern", "0x3c");
        (_, string stopped) = await server.StopAsync("TERM");
        var (replayed, output) = Replay(recording);

        Assert.Equal(0, read.ExitCode);
        Assert.Equal(0, bench.ExitCode);
        Assert.Equal(0, cut.ExitCode);
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.True(replayed == 0, output);
        Assert.Contains("NAND: its recorded outcomes", output, StringComparison.Ordinal);
        Assert.Contains(
            $"trace-hash={TraceHash().Match(stopped).Groups[1].Value} (the session's)",
            output,
            StringComparison.Ordinal
        );
    }

    /// <summary>
    /// Every management request that changes the device is an input: faults (failed programs and erases, bit errors), a
    /// checkpoint and a power cut replay to the same execution.
    /// </summary>
    [Fact]
    public async Task FaultsACheckpointAndAPowerCutOverTheEndpointReplay()
    {
        using var temp = new TempDirectory();
        string path = temp.File("faults.rec");
        Controller.Firmware.Config.ResolvedConfig config = Profiles.Load(
            "tiny",
            ["cache.bytes=128k", "cache.largePageBytes=16k"]
        );
        var recorder = new SessionRecorder(path, RecordingOptions.ConfigJson(config), "tiny", RecordedData.Full);
        ulong hash;
        Controller.Management.NandCounters nand;
        using (
            var controller = Controller.Emulator.EmulatedDevice.Boot(config, "tiny", null, "ssd", recorder: recorder)
        )
        {
            byte[] buffer = new byte[16384];
            await controller.SetFaultsAsync(
                new Controller.Management.FaultRequest
                {
                    FailNextPrograms = 3,
                    RawBitErrorRate = 2e-5,
                    EraseFailProbability = 0.02,
                },
                CancellationToken.None
            );
            for (int i = 0; i < 300; i++)
            {
                var opcode = (i % 4) switch
                {
                    0 or 1 => Controller.Firmware.Host.HostOpcode.Write,
                    2 => Controller.Firmware.Host.HostOpcode.Read,
                    _ => Controller.Firmware.Host.HostOpcode.Trim,
                };
                await controller.ExecuteAsync(
                    opcode,
                    Controller.Firmware.Host.HostCommandOptions.None,
                    (i * 24576L) % (3 << 20),
                    buffer.Length,
                    buffer,
                    CancellationToken.None
                );
                if (i == 100)
                {
                    await controller.CheckpointAsync(CancellationToken.None);
                }

                if (i == 200)
                {
                    await controller.PowerCutAsync(CancellationToken.None);
                }
            }

            nand = (await controller.GetStatsAsync(CancellationToken.None)).Nand;
            controller.Shutdown();
            hash = controller.TraceHash;
        }

        var (replayed, output) = Replay(path);

        Assert.True(replayed == 0, output);
        Assert.Contains($"trace-hash={hash:x16} (the session's)", output, StringComparison.Ordinal);
        Assert.Contains(", 300 commands, 1 power cuts;", output, StringComparison.Ordinal);
        Assert.True(
            nand.ProgramFailures >= 3 && nand.CorrectedReads > 0,
            $"the faults did not act ({nand.ProgramFailures} failed programs, {nand.CorrectedReads} corrected reads): the test does not exercise them"
        );
    }

    [Fact]
    public async Task DigestDataGivesTheSameExecution()
    {
        using var temp = new TempDirectory();
        string recording = temp.File("digest.rec");
        using var server = await ServerProcess.StartAsync(
            temp,
            extra: ["--record", recording, "--record-data", "digest"]
        );

        var bench = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "randrw",
            "--bs",
            "16k",
            "--size",
            "4M",
            "--count",
            "400",
            "--iodepth",
            "4"
        );
        (_, string stopped) = await server.StopAsync("TERM");
        var (replayed, output) = Replay(recording);

        Assert.Equal(0, bench.ExitCode);
        Assert.True(replayed == 0, output);
        Assert.Contains(
            $"trace-hash={TraceHash().Match(stopped).Groups[1].Value} (the session's)",
            output,
            StringComparison.Ordinal
        );
        Assert.Contains("data: digest", output, StringComparison.Ordinal);
        Assert.True(
            new FileInfo(recording).Length < 200_000,
            $"{new FileInfo(recording).Length} bytes for 400 commands without their data"
        );
    }

    [Fact]
    public async Task AKilledSessionReplaysUpToItsLastRecord()
    {
        using var temp = new TempDirectory();
        string recording = temp.File("killed.rec");
        using var server = await ServerProcess.StartAsync(temp, extra: ["--record", recording]);

        var bench = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "randwrite",
            "--bs",
            "4k",
            "--size",
            "1M",
            "--count",
            "50"
        );
        // The loop went idle after the bench, which flushes the recording; a SIGKILL then loses nothing.
        server.Kill();
        var (replayed, output) = Replay(recording);

        Assert.Equal(0, bench.ExitCode);
        Assert.True(replayed == 0, output);
        Assert.Contains(", 50 commands, 0 power cuts;", output, StringComparison.Ordinal);
        Assert.DoesNotContain("the session's end", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UntilStopsBeforeTheCommandItNamesAndTraceWritesTheEvents()
    {
        using var temp = new TempDirectory();
        string recording = temp.File("until.rec");
        using (var server = await ServerProcess.StartAsync(temp, extra: ["--record", recording]))
        {
            Assert.Equal(
                0,
                (
                    await HostRun.RunAsync(
                        "bench",
                        server.Uri,
                        "--rw",
                        "randwrite",
                        "--bs",
                        "4k",
                        "--size",
                        "1M",
                        "--count",
                        "30"
                    )
                ).ExitCode
            );
            await server.StopAsync("TERM");
        }

        using var text = new StringWriter();
        int exitCode = SessionReplay.Run(recording, until: 11, tracePath: temp.File("events.txt"), text);
        string[] events = [.. File.ReadAllLines(temp.File("events.txt")).Where(l => !l.StartsWith('#'))];

        Assert.Equal(0, exitCode);
        Assert.Contains(
            ", 10 commands, 0 power cuts; stopped before command 11",
            text.ToString(),
            StringComparison.Ordinal
        );
        Assert.Equal(10, events.Count(e => e.Contains(" host submit op ", StringComparison.Ordinal)));
        Assert.Contains(events, e => e.Contains(" host submit op 10 Write ", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Contains(" nand ", StringComparison.Ordinal));
    }

    /// <summary>
    /// The canary: a recording whose one command was moved replays to another execution, and the replay says the hash
    /// differs.
    /// </summary>
    [Fact]
    public async Task ATamperedRecordingIsFoundToDiffer()
    {
        using var temp = new TempDirectory();
        string recording = temp.File("true.rec");
        using (var server = await ServerProcess.StartAsync(temp, extra: ["--record", recording]))
        {
            Assert.Equal(
                0,
                (
                    await HostRun.RunAsync(
                        "bench",
                        server.Uri,
                        "--rw",
                        "randwrite",
                        "--bs",
                        "4k",
                        "--size",
                        "1M",
                        "--count",
                        "20"
                    )
                ).ExitCode
            );
            await server.StopAsync("TERM");
        }

        string tampered = temp.File("tampered.rec");
        using (SessionRecording source = SessionRecording.Open(recording))
        using (var copy = new SessionRecorder(tampered, source.ConfigJson, source.Device, source.Data))
        {
            foreach (SessionRecord r in source.Records())
            {
                switch (r.Kind)
                {
                    case SessionRecordKind.Command:
                        copy.Command(
                            r.Id,
                            r.Connection,
                            r.Opcode,
                            r.Flags,
                            r.Id == 7 ? r.Offset + (512 * 1024) : r.Offset,
                            r.Length,
                            r.Data
                        );
                        break;
                    case SessionRecordKind.Clock:
                        copy.Clock(r.Nanoseconds);
                        break;
                    case SessionRecordKind.Step:
                        copy.Step(r.Background);
                        break;
                    case SessionRecordKind.End:
                        copy.Finish(r.Hash);
                        break;
                    default:
                        copy.Management(r.Kind);
                        break;
                }
            }
        }

        var (honest, honestOutput) = Replay(recording);
        var (exitCode, output) = Replay(tampered);

        Assert.True(honest == 0, honestOutput);
        Assert.Equal(1, exitCode);
        Assert.Contains("DIFFERS from the session's", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sim|--replay|nowhere.rec", "--replay: 'nowhere.rec' does not exist")]
    [InlineData(
        "sim|--replay|RECORDING|--workload|mixed",
        "--replay runs a recorded session as it was; --workload does not apply to it"
    )]
    [InlineData("sim|--until|4", "--until applies to --replay FILE")]
    [InlineData("sim|--replay|NOT", "is not a session recording")]
    [InlineData("serve|--record|RECORDING", "--record: 'RECORDING' exists; a recording starts a new file")]
    [InlineData("serve|--record-data|digest", "--record-data applies to --record FILE")]
    [InlineData("serve|--record|new.rec|--record-data|some", "--record-data: 'some' is neither full nor digest")]
    public void BadInputIsRefusedWithTheValueNamed(string line, string expected)
    {
        using var temp = new TempDirectory();
        string existing = temp.File("exists.rec");
        File.WriteAllText(existing, "x");
        string not = temp.File("not.rec");
        File.WriteAllText(not, "not a recording");

        var (exitCode, _, error) = EmulatorProcess.Run([
            .. line.Split('|')
                .Select(a =>
                    a switch
                    {
                        "RECORDING" => existing,
                        "NOT" => not,
                        "new.rec" => temp.File("new.rec"),
                        _ => a,
                    }
                ),
        ]);

        Assert.Equal(2, exitCode);
        Assert.Contains(
            expected.Replace("RECORDING", existing, StringComparison.Ordinal),
            error,
            StringComparison.Ordinal
        );
    }

    private static (int ExitCode, string Output) Replay(string recording)
    {
        using var output = new StringWriter();
        int exitCode = SessionReplay.Run(recording, until: 0, tracePath: null, output);
        return (exitCode, output.ToString());
    }

    [GeneratedRegex("trace-hash=([0-9a-f]{16})")]
    private static partial Regex TraceHash();
}
