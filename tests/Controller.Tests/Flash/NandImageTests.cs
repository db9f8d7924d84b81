using System.Buffers.Binary;
using System.Diagnostics;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Tests.Support;

namespace Controller.Tests.Flash;

[Trait("Category", "Process")]
public sealed class NandImageTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly VirtualClock _clock = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void AnImageKeepsPagesStatesAndEraseCountsAcrossReopening()
    {
        string path = _temp.File("nand.img");
        ResolvedConfig config = Nands.TinyConfig();
        byte[] data = Nands.Pattern(FirmwareConfig.Geometry(config), 1);
        byte[] spare = Nands.Spare(FirmwareConfig.Geometry(config), 0x42);
        using (EmulatedNand nand = EmulatedNand.OpenImage(path, config, _clock))
        {
            _clock.Await(nand.EraseBlock(12));
            _clock.Await(nand.EraseBlock(12));
            _clock.Await(nand.ProgramPage(new PageAddress(12, 0), data, spare));
        }

        using (EmulatedNand reopened = EmulatedNand.OpenImage(path, config, _clock))
        {
            var readData = new byte[data.Length];
            var readSpare = new byte[spare.Length];
            Assert.Equal(NandStatus.Ok, reopened.ReadPage(new PageAddress(12, 0), readData, readSpare).Status);
            Assert.Equal(data, readData);
            Assert.Equal(spare, readSpare);
            Assert.Equal(2u, reopened.EraseCount(12));
            Assert.Equal(
                NandRule.ProgramErasedPageOnly,
                Assert
                    .Throws<NandRuleViolationException>(() => reopened.ProgramPage(new PageAddress(12, 0), data, spare))
                    .Rule
            );
            Assert.Equal(NandStatus.Ok, reopened.ProgramPage(new PageAddress(12, 1), data, spare).Status);
        }
    }

    [Fact]
    public void AnImageIsSparseOnDisk()
    {
        string path = _temp.File("nand.img");
        using (EmulatedNand nand = EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock))
        {
            nand.ProgramPage(new PageAddress(0, 0), Nands.Pattern(nand.Geometry, 1), Nands.Spare(nand.Geometry));
        }

        var info = new FileInfo(path);
        Assert.True(info.Length > 8L << 20);
        Assert.True(AllocatedBytes(path) < 1L << 20, $"{AllocatedBytes(path)} bytes allocated for one programmed page");
    }

    [Fact]
    public void AFileThatIsNotAnImageIsRefusedAndLeftAlone()
    {
        string path = _temp.File("notes.txt");
        File.WriteAllText(path, "precious data that is not a NAND image");

        var error = Assert.Throws<NandImageException>(() => EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock));

        Assert.Contains("is not an ssd-emulator NAND image", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious data that is not a NAND image", File.ReadAllText(path));
    }

    [Fact]
    public void AnImageOfAnotherGeometryIsRefused()
    {
        string path = _temp.File("nand.img");
        EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock).Dispose();
        long length = new FileInfo(path).Length;

        var error = Assert.Throws<NandImageException>(() =>
            EmulatedNand.OpenImage(path, Nands.TinyConfig("nand.blocksPerDie=32", "ftl.spareFactor=0.25"), _clock)
        );

        Assert.Contains("holds a NAND of 2 ch x 1 dies x 64 blocks", error.Message, StringComparison.Ordinal);
        Assert.Contains(
            "the configuration describes 2 ch x 1 dies x 32 blocks",
            error.Message,
            StringComparison.Ordinal
        );
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Fact]
    public void AnImageWithACorruptHeaderIsRefused()
    {
        string path = _temp.File("nand.img");
        EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock).Dispose();
        PatchHeader(path, header => header[12] ^= 0x01, fixChecksum: false);

        var error = Assert.Throws<NandImageException>(() => EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock));

        Assert.Contains("corrupt header", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnImageOfAnotherLayoutVersionIsRefused()
    {
        string path = _temp.File("nand.img");
        EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock).Dispose();
        PatchHeader(path, header => BinaryPrimitives.WriteUInt32LittleEndian(header[8..], 99), fixChecksum: true);

        var error = Assert.Throws<NandImageException>(() => EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock));

        Assert.Contains("layout version 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedImageIsRefused()
    {
        string path = _temp.File("nand.img");
        EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock).Dispose();
        using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(file.Length - 4096);
        }

        var error = Assert.Throws<NandImageException>(() => EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock));

        Assert.Contains("truncated or extended", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnImageInUseCannotBeOpenedTwice()
    {
        string path = _temp.File("nand.img");
        using EmulatedNand first = EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock);

        var error = Assert.Throws<NandImageException>(() => EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock));

        Assert.Contains("cannot be opened", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnImageWrittenByOneProcessIsReadIntactByTheNext()
    {
        string path = _temp.File("nand.img");

        var write = EmulatorProcess.Run(
            "nandtest",
            "--config",
            Nands.TinyProfile,
            "--image",
            path,
            "--passes",
            "2",
            "--seed",
            "9"
        );
        var check = EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path, "--check");

        Assert.True(write.ExitCode == 0, write.Output + write.Error);
        Assert.Contains(
            "pass 2/2: 2048 pages programmed and read back, 0 mismatches",
            write.Output,
            StringComparison.Ordinal
        );
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains(
            "check: 2048 pages intact, 0 erased, 0 corrupt or unreadable",
            check.Output,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void TheImageHeaderRecordsLayoutVersionTwo()
    {
        string path = _temp.File("nand.img");
        EmulatedNand.OpenImage(path, Nands.TinyConfig(), _clock).Dispose();
        byte[] header = new byte[16];
        using (var file = File.OpenRead(path))
        {
            file.ReadExactly(header);
        }

        Assert.Equal("SSDNAND\x1A"u8.ToArray(), header[..8]);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)));
    }

    [Fact]
    public void CheckingAnImageThatDoesNotExistFailsAndCreatesNothing()
    {
        string path = _temp.File("typo.img");

        var check = EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path, "--check");

        Assert.Equal(2, check.ExitCode);
        Assert.Contains("typo.img: no such image", check.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.EnumerateFiles(_temp.Path));
    }

    [Fact]
    public void AnImageIsCreatedUnderItsNameOnlyOnceCompleteAndALeftoverIsReplaced()
    {
        string path = _temp.File("nand.img");
        File.WriteAllText(path + ".creating", "left behind by a creation that died");

        using (
            EmulatedNand nand = EmulatedNand.OpenImage(
                path,
                Nands.TinyConfig("faults.factoryBadBlockFraction=0.2"),
                _clock
            )
        )
        {
            Assert.True(File.Exists(path));
            Assert.False(File.Exists(path + ".creating"));
        }

        // The factory marks were made before the image took its name, so reopening finds them.
        using EmulatedNand reopened = EmulatedNand.OpenImage(
            path,
            Nands.TinyConfig("faults.factoryBadBlockFraction=0.2"),
            _clock
        );
        var spare = new byte[reopened.Geometry.SpareBytes];
        int marked = Enumerable
            .Range(0, reopened.Geometry.Blocks)
            .Count(block =>
            {
                reopened.ReadPage(new PageAddress(block, 0), [], spare);
                return spare[0] != 0xFF;
            });
        Assert.InRange(marked, 10, 40);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(2100)]
    public void AProcessDyingInsideItsNthProgramLeavesThatPageErasedAndEveryOtherPageIntact(int program)
    {
        // nandtest programs block 0 page 0, 1, ... in order, reading each back; the second pass
        // starts again at block 0 after erasing it. Program N is page (N-1) of the pass.
        string path = _temp.File("nand.img");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (
            string arg in new[]
            {
                EmulatorProcess.AssemblyPath,
                "nandtest",
                "--config",
                Nands.TinyProfile,
                "--image",
                path,
                "--passes",
                "3",
            }
        )
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["SSD_EMULATOR_CRASH_IN_PROGRAM"] = program.ToString(
            System.Globalization.CultureInfo.InvariantCulture
        );
        using (Process writer = Process.Start(start)!)
        {
            writer.StandardOutput.ReadToEnd();
            Assert.Contains(
                "dying in the middle of a page program",
                writer.StandardError.ReadToEnd(),
                StringComparison.Ordinal
            );
            writer.WaitForExit();
            Assert.NotEqual(0, writer.ExitCode);
        }

        var check = EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path, "--check");

        int pagesPerPass = 2048;
        int inPass = (program - 1) % pagesPerPass;
        int intactExpected = program > pagesPerPass ? pagesPerPass - 16 + (inPass % 16) : inPass;
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains(
            $"check: {intactExpected} pages intact, {2048 - intactExpected} erased, 0 corrupt or unreadable",
            check.Output,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void TheImageCheckCatchesAPageWhoseContentWasDamaged()
    {
        // Canary for the check the SIGKILL test relies on: it must fail when a page is damaged.
        string path = _temp.File("nand.img");
        Assert.Equal(0, EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path).ExitCode);
        NandGeometry geometry = FirmwareConfig.Geometry(Nands.TinyConfig());
        long pageOffset = DataOffset(path, geometry) + (5L * geometry.PageBytes) + 100;
        using (var file = new FileStream(path, FileMode.Open))
        {
            file.Position = pageOffset;
            int value = file.ReadByte();
            file.Position = pageOffset;
            file.WriteByte((byte)(value ^ 0x10));
        }

        var check = EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path, "--check");

        Assert.Equal(1, check.ExitCode);
        Assert.Contains("block 0 page 5: checksum mismatch", check.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void AProcessKilledInTheMiddleOfProgramsLeavesEveryOtherPageIntact(int passes)
    {
        string path = _temp.File("nand.img");
        using (
            Process writer = EmulatorProcess.Start(
                "nandtest",
                "--config",
                Nands.TinyProfile,
                "--image",
                path,
                "--passes",
                "1000000"
            )
        )
        {
            // Killed as the given pass is reported: the next one is already programming.
            for (int pass = 1; pass <= passes; pass++)
            {
                string? line = writer.StandardOutput.ReadLine();
                Assert.StartsWith($"pass {pass}/1000000:", line, StringComparison.Ordinal);
            }

            writer.Kill(); // SIGKILL on Unix: no handler runs, nothing is flushed.
            writer.WaitForExit();
            Assert.NotEqual(0, writer.ExitCode);
        }

        var check = EmulatorProcess.Run("nandtest", "--config", Nands.TinyProfile, "--image", path, "--check");

        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        Assert.Contains(", 0 corrupt or unreadable", check.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("check: 0 pages intact", check.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// Where page data starts in an image of the tiny profile, written out rather than computed:
    /// the layout is a file format, so changing it must change <c>ImageNandStore.Version</c>,
    /// and this test with it.
    /// </summary>
    private static long DataOffset(string path, NandGeometry geometry)
    {
        Assert.Equal(
            (2048, 128, 4096, 128),
            (geometry.Pages, geometry.Blocks, geometry.PageBytes, geometry.SpareBytes)
        );
        const long TinyDataOffset = 4096 + 4096 + 4096 + 4096 + (2048 * 128);
        Assert.Equal(TinyDataOffset + (2048L * 4096), new FileInfo(path).Length);
        return TinyDataOffset;
    }

    private static void PatchHeader(string path, SpanAction patch, bool fixChecksum)
    {
        byte[] header = new byte[4096];
        using var file = new FileStream(path, FileMode.Open);
        file.ReadExactly(header);
        patch(header);
        if (fixChecksum)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(48), Crc32C.Compute(header.AsSpan(0, 48)));
        }

        file.Position = 0;
        file.Write(header);
    }

    private static long AllocatedBytes(string path)
    {
        using Process stat = Process.Start(
            new ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true }
        )!;
        string[] parts = stat.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.TrimEntries);
        stat.WaitForExit();
        return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture)
            * long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private delegate void SpanAction(Span<byte> header);
}
