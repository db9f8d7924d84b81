using Controller.Cli;
using Controller.Emulator;
using Controller.Emulator.Cli;
using Controller.Firmware.Host;
using Controller.Host.Verify;
using Controller.Hosting;
using Controller.Hosting.Nbd;
using Controller.Management;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Host;

/// <summary>
/// <c>ssdhost verify</c>'s ledger and check for every flag that makes a command durable: FUA on
/// writes, trims and zeroes (with and without NO_HOLE), on hand-made ledgers and against a device
/// that ignores FUA on trims and zeroes.
/// </summary>
[Trait("Category", "Unit")]
public sealed class VerifyLedgerTests
{
    private const int Block = Ledger.BlockBytes;

    /// <summary>
    /// Block 1 written and flushed, then a trim or zeroing of it acknowledged, then a cut: with FUA
    /// the old data back is a resurrected trim; without FUA (and no flush) the cut may undo it.
    /// </summary>
    [Theory]
    [InlineData('T', false)]
    [InlineData('Z', false)]
    [InlineData('Z', true)]
    public void AnAcknowledgedFuaTrimOrZeroingIsDurableWithoutAFlush(char kind, bool noHole)
    {
        foreach (bool fua in new[] { true, false })
        {
            using var temp = new TempDirectory();
            string path = temp.File("hand.ledger");
            using (Ledger ledger = Ledger.Create(path, seed: 9, blocks: 4, deviceBytes: 4 * Block))
            {
                Record(ledger, new LedgerOp(1, 'Z', 0, 4, 0));
                Record(ledger, new LedgerOp(2, 'S', 0, 0, 0));
                Record(ledger, new LedgerOp(3, 'W', 1, 1, 0));
                Record(ledger, new LedgerOp(4, 'S', 0, 0, 0));
                Record(ledger, new LedgerOp(5, kind, 1, 1, 0, fua, noHole));
            }

            LedgerContents contents = Ledger.Read(path, "test");
            var check = new VerifyCheck(contents);
            byte[] old = new byte[Block];
            for (int unit = 0; unit < Block / VerifyStamp.UnitBytes; unit++)
            {
                VerifyStamp.Fill(
                    old.AsSpan(unit * VerifyStamp.UnitBytes, VerifyStamp.UnitBytes),
                    Block + (unit * VerifyStamp.UnitBytes),
                    3,
                    9
                );
            }

            Assert.Equal(fua, contents.Ops[^1].Fua);
            Assert.Equal(noHole, contents.Ops[^1].NoHole);
            Assert.Equal(fua ? "resurrected-trim" : null, check.Judge(1, old)?.Class);
            Assert.Null(check.Judge(1, new byte[Block]));
        }
    }

    [Fact]
    public void ALayoutOneLedgerStillReadsItsFuaWrites()
    {
        using var temp = new TempDirectory();
        string path = temp.File("old.ledger");
        File.WriteAllLines(
            path,
            ["ssdhost-verify 1 seed=3 block=4096 blocks=4 device=16384", "B 1", "I 1 Z 0 4", "A 1", "I 2 U 2 1", "A 2"]
        );

        LedgerOp fuaWrite = Ledger.Read(path, "test").Ops[1];

        Assert.Equal(('W', true), (fuaWrite.Kind, fuaWrite.Fua));
    }

    [Theory]
    [InlineData("I 2 Wn 0 1")]
    [InlineData("I 2 Tn 0 1")]
    [InlineData("I 2 Zx 0 1")]
    [InlineData("I 2 R 0 1")]
    public void AKindWithAFlagItCannotTakeIsADamagedLine(string line)
    {
        using var temp = new TempDirectory();
        string path = temp.File("bad.ledger");
        File.WriteAllLines(path, ["ssdhost-verify 2 seed=3 block=4096 blocks=4 device=16384", "B 1", line, "A 2"]);

        var error = Assert.Throws<Controller.Cli.UsageException>(() => Ledger.Read(path, "verify"));

        Assert.Contains("line 3 of the ledger", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The same check end to end: verify against a device that drops FUA from trims and zeroes
    /// (the flag is ignored on its way to the loop), then a power cut; within a few seeds the
    /// check finds a trim come back. Seeds are tried until one catches it.
    /// </summary>
    [Fact]
    public async Task TheCheckCatchesADeviceThatIgnoresFuaOnTrimsAndZeroes()
    {
        using var temp = new TempDirectory();
        using ServedController device = EmulatedDevice.Boot(Profiles.Load("tiny", []), "tiny", null, "ssd");
        await using var server = new InProcessServer(temp, new FuaDroppingExport(device));
        for (int seed = 1; seed <= 20; seed++)
        {
            string ledger = temp.File($"seed{seed}.ledger");
            var run = await HostRun.RunAsync(
                "verify",
                server.Uri,
                "--ledger",
                ledger,
                "--ops",
                "120",
                "--size",
                "256k",
                "--seed",
                $"{seed}"
            );
            Assert.True(run.ExitCode == 0, run.Error);
            await ((IManagementService)device).PowerCutAsync(CancellationToken.None);
            var check = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--check");
            if (check.ExitCode != 0)
            {
                Assert.Matches(@"resurrected-trim +[1-9]", check.Output);

                // The same seed on the device as it is passes: it was the canary that was caught.
                using var soundTemp = new TempDirectory();
                await using var sound = new InProcessServer(soundTemp, device);
                string soundLedger = soundTemp.File("sound.ledger");
                Assert.Equal(
                    0,
                    (
                        await HostRun.RunAsync(
                            "verify",
                            sound.Uri,
                            "--ledger",
                            soundLedger,
                            "--ops",
                            "120",
                            "--size",
                            "256k",
                            "--seed",
                            $"{seed}"
                        )
                    ).ExitCode
                );
                await ((IManagementService)device).PowerCutAsync(CancellationToken.None);
                var soundCheck = await HostRun.RunAsync("verify", sound.Uri, "--ledger", soundLedger, "--check");
                Assert.True(soundCheck.ExitCode == 0, $"seed {seed}: {soundCheck.Output}");
                return;
            }
        }

        Assert.Fail("a device that ignores FUA on trims and zeroes passed 20 seeds of verify and a power cut");
    }

    private static void Record(Ledger ledger, LedgerOp op)
    {
        ledger.Issued(op);
        ledger.Acked(op.Generation);
    }

    /// <summary>A device that ignores FUA on TRIM and WRITE ZEROES: the canary of the ledger's rule.</summary>
    private sealed class FuaDroppingExport(INbdExport inner) : INbdExport
    {
        public string Name => inner.Name;

        public string Description => inner.Description;

        public long SizeBytes => inner.SizeBytes;

        public bool IsReadOnly => inner.IsReadOnly;

        public ValueTask<HostStatus> ExecuteAsync(
            HostOpcode opcode,
            HostCommandOptions flags,
            long offset,
            long length,
            Memory<byte> buffer,
            CancellationToken cancellation
        ) =>
            inner.ExecuteAsync(
                opcode,
                opcode is HostOpcode.Trim or HostOpcode.WriteZeroes
                    ? flags & ~HostCommandOptions.ForceUnitAccess
                    : flags,
                offset,
                length,
                buffer,
                cancellation
            );

        public ValueTask BlockStatusAsync(
            long offset,
            long length,
            List<NbdExtent> extents,
            CancellationToken cancellation
        ) => inner.BlockStatusAsync(offset, length, extents, cancellation);
    }
}
