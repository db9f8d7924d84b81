using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Host.Cli;
using Controller.Hosting;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Host;

/// <summary><c>ssdhost</c> against the emulator: the verbs, their refusals, and verify across power cuts.</summary>
[Trait("Category", "Process")]
public sealed class SsdHostTests
{
    [Fact]
    public async Task WriteReadTrimZeroFlushAndMapDoWhatTheySay()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        string uri = server.Uri;

        Assert.Equal(
            0,
            (await HostRun.RunAsync("write", uri, "0", "--length", "256k", "--pattern", "0xab", "--fua")).ExitCode
        );
        Assert.Equal(0, (await HostRun.RunAsync("read", uri, "0", "256k", "--expect-pattern", "0xab")).ExitCode);
        Assert.Equal(0, (await HostRun.RunAsync("trim", uri, "64k", "64k")).ExitCode);
        Assert.Equal(0, (await HostRun.RunAsync("zero", uri, "128k", "8k", "--no-hole")).ExitCode);
        Assert.Equal(0, (await HostRun.RunAsync("flush", uri)).ExitCode);
        var mismatch = await HostRun.RunAsync("read", uri, "0", "128k", "--expect-pattern", "0xab");
        var zeros = await HostRun.RunAsync("read", uri, "64k", "64k", "--expect-pattern", "0");
        var map = await HostRun.RunAsync("map", uri, "0", "256k");

        Assert.Equal(1, mismatch.ExitCode);
        Assert.Contains("byte 65536 is 0x00, not the expected 0xab", mismatch.Error, StringComparison.Ordinal);
        Assert.Equal(0, zeros.ExitCode);
        Assert.Equal(
            [
                "         0       65536    0  data",
                "     65536       65536    3  hole,zero",
                "    131072      131072    0  data",
            ],
            map.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        );
    }

    [Fact]
    public async Task WriteTakesAFileAndReadWritesOneBack()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        byte[] data = [.. Enumerable.Range(0, 3 << 20).Select(i => (byte)(i * 7 + (i >> 12)))];
        await File.WriteAllBytesAsync(temp.File("in.bin"), data);

        var write = await HostRun.RunAsync("write", server.Uri, "1M", "--file", temp.File("in.bin"), "--json");
        var read = await HostRun.RunAsync("read", server.Uri, "1M", "3M", "--output", temp.File("out.bin"));

        Assert.Equal(0, write.ExitCode);
        Assert.Contains("\"bytes\":3145728", write.Output, StringComparison.Ordinal);
        Assert.Equal(0, read.ExitCode);
        Assert.Equal(data, await File.ReadAllBytesAsync(temp.File("out.bin")));
    }

    [Fact]
    public async Task BenchRunsTheCountItIsGivenAndReportsLatencies()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, control: true);

        var write = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "write",
            "--bs",
            "64k",
            "--size",
            "1M",
            "--count",
            "32",
            "--iodepth",
            "4",
            "--json"
        );
        var mixed = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "randrw",
            "--bs",
            "4k",
            "--size",
            "1M",
            "--count",
            "300",
            "--iodepth",
            "8"
        );
        var trim = await HostRun.RunAsync(
            "bench",
            server.Uri,
            "--rw",
            "trim",
            "--bs",
            "64k",
            "--size",
            "512k",
            "--count",
            "8",
            "--json"
        );
        var stats = await HostRun.RunAsync("stats", "--control", server.Control, "--json");
        var map = await HostRun.RunAsync("map", server.Uri, "0", "1M");

        Assert.Equal(0, write.ExitCode);
        Assert.Contains("\"ops\":32,\"bytes\":2097152", write.Output, StringComparison.Ordinal);
        Assert.Contains("\"p99\":", write.Output, StringComparison.Ordinal);
        Assert.Contains("\"histogram\":[{", write.Output, StringComparison.Ordinal);
        Assert.Equal(0, mixed.ExitCode);
        Assert.Contains("300 ops in", mixed.Output, StringComparison.Ordinal);
        Assert.Contains("latency us: min", mixed.Output, StringComparison.Ordinal);
        Assert.Equal(0, trim.ExitCode);
        using (var json = System.Text.Json.JsonDocument.Parse(stats.Output))
        {
            System.Text.Json.JsonElement host = json.RootElement.GetProperty("host");
            Assert.Equal(332, host.GetProperty("reads").GetInt64() + host.GetProperty("writes").GetInt64());
        }

        Assert.Contains("\"trims\":8", stats.Output, StringComparison.Ordinal);
        Assert.Equal(
            ["         0      524288    3  hole,zero", "    524288      524288    0  data"],
            map.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        );
    }

    [Fact]
    public async Task StatsWatchPrintsATelemetryLinePerIntervalUntilStopped()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, control: true, extra: ["--telemetry-interval", "0.2"]);

        // Ctrl-C after the third telemetry line (the first line is the header), whenever it comes.
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        int seen = 0;
        using var output = new LineWriter(_ =>
        {
            if (++seen == 4)
            {
                stop.Cancel();
            }
        });
        var console = new HostConsole(
            output,
            TextWriter.Null,
            () => Stream.Null,
            () => Stream.Null,
            OutputIsTerminal: false
        );

        int exitCode = await HostCli.RunAsync(["stats", "--control", server.Control, "--watch"], console, stop.Token);

        Assert.Equal(0, exitCode);
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("time ", lines[0], StringComparison.Ordinal);
        Assert.True(lines.Length >= 4, $"{lines.Length - 1} telemetry lines in a minute");
    }

    [Theory]
    [InlineData("info|nbd://127.0.0.1:1/ssd", "ssdhost info: no NBD server at nbd://127.0.0.1:1/ssd")]
    [InlineData("info|http://x", "ssdhost info: 'http://x' is not an NBD URI")]
    [InlineData("info|nbd+unix:///ssd", "names no socket")]
    [InlineData(
        "write|URI|0|--length|1000|--pattern|1",
        "offset 0 and length 1000 must be multiples of the block size, 512 bytes"
    )]
    [InlineData("read|URI|7G|4k", "offset 7516192768 + length 4096 is past the end of the device")]
    [InlineData("trim|URI|0|12q", "LENGTH '12q' is not a size")]
    [InlineData("write|URI|0|--length|4k|--pattern|300", "--pattern '300' is not a byte")]
    [InlineData(
        "stats|--control|unix:/nonexistent/ctl",
        "ssdhost stats: no management endpoint at unix:/nonexistent/ctl: the directory of /nonexistent/ctl does not exist"
    )]
    [InlineData(
        "stats|--control|unix:/tmp/no-such-server.ctl",
        "ssdhost stats: no management endpoint at unix:/tmp/no-such-server.ctl: no socket /tmp/no-such-server.ctl (is a server running"
    )]
    [InlineData("frobnicate", "unknown verb 'frobnicate'")]
    public async Task BadInputIsOneLineOnStandardErrorAndExitCode2(string line, string expected)
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        var (exitCode, _, error) = await HostRun.RunAsync([
            .. line.Split('|').Select(a => a == "URI" ? server.Uri : a),
        ]);

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AManagementClientThatHangsUpAfterItsAnswerLeavesNoComplaintInTheServersLog()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, control: true);

        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var stats = await HostRun.RunAsync("stats", "--control", server.Control);
        (int exitCode, _) = await server.StopAsync("TERM");
        string log = await server.ErrorsAsync();

        Assert.Equal((0, 0, 0), (cut.ExitCode, stats.ExitCode, exitCode));
        Assert.Contains("power cut", log, StringComparison.Ordinal);
        Assert.DoesNotContain("management connection ended", log, StringComparison.Ordinal);
        Assert.DoesNotContain("reset by peer", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InfoNamesTheTransmissionFlagsAsTheProtocolDoes()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        var (exitCode, output, error) = await HostRun.RunAsync("info", server.Uri);

        Assert.True(exitCode == 0, error);
        foreach (
            string flag in new[]
            {
                "NBD_FLAG_HAS_FLAGS",
                "NBD_FLAG_SEND_FLUSH",
                "NBD_FLAG_SEND_FUA",
                "NBD_FLAG_SEND_TRIM",
                "NBD_FLAG_SEND_WRITE_ZEROES",
            }
        )
        {
            Assert.Contains($" {flag}", output, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("SendFlush", output, StringComparison.Ordinal);
        Assert.Equal("NBD_FLAG_SEND_DF", Controller.Host.Commands.BasicCommands.ProtocolName("SendDontFragment"));
    }

    [Fact]
    public async Task EveryVerbHasHelpWithAnExample()
    {
        foreach (
            string verb in new[]
            {
                "info",
                "write",
                "read",
                "trim",
                "zero",
                "flush",
                "map",
                "verify",
                "bench",
                "replay",
                "stats",
                "power-cut",
                "power-fail",
            }
        )
        {
            var (exitCode, output, _) = await HostRun.RunAsync(verb, "--help");

            Assert.Equal(0, exitCode);
            Assert.Contains($"Usage:\n  ssdhost {verb}", output, StringComparison.Ordinal);
            Assert.Contains("Example", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task VerifyThenAPowerCutOverTheEndpointThenCheckFindsNoViolation()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, temp.File("ssd.img"), control: true);
        string ledger = temp.File("run.ledger");

        var run = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--ops", "4000", "--seed", "3");
        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control, "--json");
        var check = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--check", "--json");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(0, cut.ExitCode);
        Assert.Contains("\"recoveryPageReads\":", cut.Output, StringComparison.Ordinal);
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains("\"violations\":0", check.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OverTheSpiPathVerifyThenAPowerCutThenCheckFindsNoViolation()
    {
        // serve on the emulated W25N01GV through the SPI NAND driver and the emulated chip.
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, config: "w25n01gv-spi", control: true);
        string ledger = temp.File("spi.ledger");

        var run = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--ops", "1500", "--size", "16M");
        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var check = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--check");

        Assert.Contains("w25n01gv-spi", server.Banner, StringComparison.Ordinal);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(0, cut.ExitCode);
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains(" 0 violate the invariant", check.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APowerCutInTheMiddleOfVerifyLeavesNoViolation()
    {
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, temp.File("ssd.img"), control: true);
        string ledger = temp.File("run.ledger");

        // A run with no end of its own: only the cut ends it, however slow the machine.
        Task<(int ExitCode, string Output, string Error)> running = HostRun.RunAsync(
            "verify",
            server.Uri,
            "--ledger",
            ledger,
            "--ops",
            "1000000000"
        );
        while (!File.Exists(ledger) || File.ReadLines(ledger).Count(l => l.StartsWith('A')) < 100)
        {
            Assert.False(running.IsCompleted, "verify ended before the cut");
            await Task.Delay(50);
        }

        var cut = await HostRun.RunAsync("power-cut", "--control", server.Control);
        var run = await running;
        var check = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--check");

        Assert.Equal(0, cut.ExitCode);
        Assert.Contains("1 NBD connections ended", cut.Output, StringComparison.Ordinal);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("the connection ended", run.Error, StringComparison.Ordinal);
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains(" 0 violate the invariant", check.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyThenSigkillAndRestartFromTheImageThenCheckFindsNoViolation()
    {
        using var temp = new TempDirectory();
        string image = temp.File("ssd.img");
        string ledger = temp.File("run.ledger");
        using (var server = await ServerProcess.StartAsync(temp, image))
        {
            Assert.Equal(
                0,
                (
                    await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--ops", "3000", "--seed", "4")
                ).ExitCode
            );
            server.Kill();
        }

        using var restarted = await ServerProcess.StartAsync(temp, image);
        var check = await HostRun.RunAsync("verify", restarted.Uri, "--ledger", ledger, "--check");
        var more = await HostRun.RunAsync("verify", restarted.Uri, "--ledger", ledger, "--ops", "500");
        var again = await HostRun.RunAsync("verify", restarted.Uri, "--ledger", ledger, "--check");

        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains("0 violate the invariant", check.Output, StringComparison.Ordinal);
        Assert.Equal(0, more.ExitCode);
        Assert.True(again.ExitCode == 0, again.Output + again.Error);
    }

    [Fact]
    public async Task TheCheckCatchesACacheWhosePunchForgetsTheDataAroundTheHole()
    {
        // The canary of the cache tests, hosted here: the data around a hole punched inside a page
        // never reaches the FTL, so a flush does not make it durable, and the power cut loses a
        // durable write.
        using var temp = new TempDirectory();
        ResolvedConfig config = Profiles.Load("tiny", ["cache.trimPolicy=zero-fill"]);
        using ServedController export = EmulatedDevice.Boot(config, "tiny", null, "ssd", store =>
            Sabotage.PunchForgettingStore(store, config)
        );
        await using var server = new InProcessServer(temp, export);
        string ledger = temp.File("canary.ledger");

        var run = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--ops", "3000", "--seed", "5");
        await ((IManagementService)export).PowerCutAsync(CancellationToken.None);
        var check = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--check");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(1, check.ExitCode);
        Assert.Matches(@"lost-durable-write +[1-9]", check.Output);
    }

    /// <summary>A writer that tells a callback of each line written, and keeps them.</summary>
    private sealed class LineWriter(Action<string> onLine) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            onLine(value ?? string.Empty);
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }
    }
}
