using System.Text.Json;
using Controller.Common;
using Controller.Tests.Support;

namespace Controller.Tests.Nbd;

/// <summary>The standard NBD clients against <c>ssd-emulator serve</c>, as real processes.</summary>
[Trait("Category", "Interop")]
public sealed class InteropTests
{
    [SkippableFact]
    public async Task QemuIoWritesReadsDiscardsZeroesAndFlushes()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        var (exitCode, output, error) = ExternalTool.Run(
            qemuIo,
            "-f",
            "raw",
            server.Uri,
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "write -f -P 0xcd 1M 64k",
            "-c",
            "flush",
            "-c",
            "read -P 0xab 0 1M",
            "-c",
            "read -P 0xcd 1M 64k",
            "-c",
            "discard 256k 128k",
            "-c",
            "read -P 0 256k 128k",
            "-c",
            "read -P 0xab 0 256k",
            "-c",
            "write -z 512k 64k",
            "-c",
            "read -P 0 512k 64k",
            "-c",
            "read -P 0xab 576k 64k"
        );

        Assert.True(exitCode == 0, output + error);
        Assert.DoesNotContain("Pattern verification failed", output, StringComparison.Ordinal);
        Assert.Equal(6, output.Split('\n').Count(l => l.StartsWith("read ", StringComparison.Ordinal)));
    }

    [SkippableFact]
    public async Task QemuImgMapShowsTheHoleADiscardLeaves()
    {
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        string qemuImg = ExternalTool.Require("qemu-img", "qemu-utils");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        Assert.Equal(
            0,
            ExternalTool
                .Run(qemuIo, "-f", "raw", server.Uri, "-c", "write -P 0x11 0 1M", "-c", "discard 256k 256k")
                .ExitCode
        );

        var (exitCode, output, error) = ExternalTool.Run(qemuImg, "map", "-f", "raw", "--output=json", server.Uri);

        Assert.True(exitCode == 0, output + error);
        using JsonDocument map = JsonDocument.Parse(output);
        (long Start, long Length, bool Data)[] extents =
        [
            .. map
                .RootElement.EnumerateArray()
                .Select(e =>
                    (
                        e.GetProperty("start").GetInt64(),
                        e.GetProperty("length").GetInt64(),
                        e.GetProperty("data").GetBoolean()
                    )
                ),
        ];
        Assert.Equal((0L, 262144L, true), extents[0]);
        Assert.Equal((262144L, 262144L, false), extents[1]);
        Assert.Equal((524288L, 524288L, true), extents[2]);
        Assert.False(extents[3].Data);
    }

    [SkippableFact]
    public async Task NbdinfoListsTheExportAndMapsDataAndHoles()
    {
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");
        string qemuIo = ExternalTool.Require("qemu-io", "qemu-utils");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        Assert.Equal(
            0,
            ExternalTool
                .Run(qemuIo, "-f", "raw", server.Uri, "-c", "write -P 0x22 0 128k", "-c", "discard 64k 64k")
                .ExitCode
        );

        var list = ExternalTool.Run(nbdinfo, "--list", server.Uri);
        var map = ExternalTool.Run(nbdinfo, "--map", server.Uri);

        Assert.True(list.ExitCode == 0, list.Output + list.Error);
        Assert.Contains("export=\"ssd\"", list.Output, StringComparison.Ordinal);
        Assert.Contains("can_multi_conn: true", list.Output, StringComparison.Ordinal);
        Assert.Contains("block_size_maximum: 33554432", list.Output, StringComparison.Ordinal);
        Assert.True(map.ExitCode == 0, map.Output + map.Error);
        string[] lines =
        [
            .. map
                .Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))),
        ];
        Assert.Equal("0 65536 0 data", lines[0]);
        Assert.StartsWith("65536 ", lines[1], StringComparison.Ordinal);
        Assert.EndsWith("3 hole,zero", lines[1], StringComparison.Ordinal);
        Assert.Single(lines.Skip(1));
    }

    [SkippableFact]
    public void NbdinfoStartsTheServerBySocketActivation()
    {
        // nbdinfo -- [ CMD ] starts CMD with a listening socket on fd 3 (LISTEN_FDS), connects,
        // and stops it with SIGTERM when done.
        string nbdinfo = ExternalTool.Require("nbdinfo", "libnbd-bin");

        var (exitCode, output, error) = ExternalTool.Run(
            nbdinfo,
            "--size",
            "--",
            "[",
            "dotnet",
            EmulatorProcess.AssemblyPath,
            "serve",
            "--config",
            "tiny",
            "]"
        );

        Assert.True(exitCode == 0, output + error);
        Assert.Contains(
            "listening on the socket handed over by socket activation",
            output + error,
            StringComparison.Ordinal
        );
        Assert.Contains("7192576", output, StringComparison.Ordinal);
        Assert.Contains("flushed and checkpointed; stopped", output + error, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task NbdshWritesReadsTrimsZeroesFlushesAndQueriesBlockStatus()
    {
        string nbdsh = ExternalTool.Require("nbdsh", "python3-libnbd");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        const string Script = """
            h.pwrite(b'\xab' * 65536, 0)
            assert h.pread(65536, 0) == b'\xab' * 65536
            h.trim(16384, 16384)
            assert h.pread(16384, 16384) == bytes(16384)
            h.zero(8192, 32768)
            assert h.pread(8192, 32768) == bytes(8192)
            assert h.pread(24576, 40960) == b'\xab' * 24576
            h.flush()
            entries = []
            def extents(context, offset, found, error):
                entries.extend(found)
            h.block_status(65536, 0, extents)
            print('extents', entries)
            """;

        var (exitCode, output, error) = ExternalTool.Run(nbdsh, "--base-allocation", "-u", server.Uri, "-c", Script);

        Assert.True(exitCode == 0, output + error);
        Assert.Contains("extents [16384, 0, 24576, 3, 24576, 0]", output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task NbdcopyCopies256MiBInAndOutByteForByte()
    {
        string nbdcopy = ExternalTool.Require("nbdcopy", "libnbd-bin");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp, config: "default");
        string input = temp.File("in.bin");
        string output = temp.File("out.bin");
        const int Bytes = 256 << 20;
        var prng = new Controller.Common.Prng(256);
        using (FileStream file = File.Create(input))
        {
            byte[] chunk = new byte[1 << 20];
            for (int i = 0; i < Bytes / chunk.Length; i++)
            {
                for (int j = 0; j < chunk.Length; j += 8)
                {
                    BitConverter.TryWriteBytes(chunk.AsSpan(j), prng.NextUInt64(ulong.MaxValue));
                }

                file.Write(chunk);
            }
        }

        var copyIn = ExternalTool.Run(nbdcopy, input, server.Uri);
        var copyOut = ExternalTool.Run(nbdcopy, server.Uri, output);

        Assert.True(copyIn.ExitCode == 0, copyIn.Output + copyIn.Error);
        Assert.True(copyOut.ExitCode == 0, copyOut.Output + copyOut.Error);
        using FileStream expected = File.OpenRead(input);
        using FileStream actual = File.OpenRead(output);
        byte[] a = new byte[1 << 20];
        byte[] b = new byte[1 << 20];
        for (long position = 0; position < Bytes; position += a.Length)
        {
            expected.ReadExactly(a);
            actual.ReadExactly(b);
            Assert.True(a.AsSpan().SequenceEqual(b), $"the copy differs in the MiB at {position}");
        }

        Assert.True(actual.Length >= Bytes);
        for (int read; (read = actual.Read(b)) > 0; )
        {
            Assert.False(b.AsSpan(0, read).ContainsAnyExcept((byte)0), "the rest of the device reads as zeros");
        }
    }

    [SkippableFact]
    public async Task FioWritesAndVerifiesTrimsReadsZerosAndFindsTheRestUnchanged()
    {
        string fio = ExternalTool.Require("fio", "fio");
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);

        // Phases, each after the last (stonewall): write 6 MiB with checksummed blocks and verify;
        // trim the middle 2 MiB; read it as zeros; check the checksums of the rest. fio's own
        // trim_verify_zero is not used (it crashes in 3.33).
        string Job(string phases) => $"[global]\nioengine=nbd\nuri={server.Uri}\nbs=64k\nverify_fatal=1\n{phases}";
        const string Phases = """
            [write]
            rw=write
            offset=0
            size=6M
            verify=crc32c
            do_verify=1
            [trim]
            stonewall
            rw=trim
            offset=2M
            size=2M
            [zeros]
            stonewall
            rw=read
            offset=2M
            size=2M
            verify=pattern
            verify_pattern=0x00
            do_verify=1
            [before]
            stonewall
            rw=read
            offset=0
            size=2M
            verify=crc32c
            verify_only=1
            [after]
            stonewall
            rw=read
            offset=4M
            size=2M
            verify=crc32c
            verify_only=1
            """;
        File.WriteAllText(temp.File("phases.fio"), Job(Phases));
        var phases = ExternalTool.Run(fio, temp.File("phases.fio"));

        // The canaries of the two checks: zeros expected where data is, and checksums expected where the trim left
        // zeros.
        File.WriteAllText(
            temp.File("zeros-canary.fio"),
            Job("[z]\nrw=read\noffset=0\nsize=1M\nverify=pattern\nverify_pattern=0x00\ndo_verify=1\n")
        );
        File.WriteAllText(
            temp.File("data-canary.fio"),
            Job("[d]\nrw=read\noffset=2M\nsize=1M\nverify=crc32c\nverify_only=1\n")
        );
        var zerosCanary = ExternalTool.Run(fio, temp.File("zeros-canary.fio"));
        var dataCanary = ExternalTool.Run(fio, temp.File("data-canary.fio"));

        Assert.True(phases.ExitCode == 0, phases.Output + phases.Error);
        Assert.Equal(
            5,
            phases
                .Output.Split('\n')
                .Count(l =>
                    l.Contains(": (groupid=", StringComparison.Ordinal)
                    && l.Contains("err= 0", StringComparison.Ordinal)
                )
        );
        Assert.NotEqual(0, zerosCanary.ExitCode);
        Assert.Contains("verify failed", zerosCanary.Output + zerosCanary.Error, StringComparison.Ordinal);
        Assert.NotEqual(0, dataCanary.ExitCode);
        Assert.Contains("bad magic header", dataCanary.Output + dataCanary.Error, StringComparison.Ordinal);
    }
}
