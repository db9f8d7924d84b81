using System.Buffers.Binary;
using System.Globalization;
using Controller.Cli;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Cli;

/// <summary>
/// <c>ssd-emulator nandtest</c>: exercises the emulated NAND as mtd-utils' nandtest exercises a
/// chip. Every page is programmed with self-describing content (its own address, the pass, the
/// seed and a checksum), so <c>--check</c> can verify an image later, even one left by a process
/// that was killed in the middle of a program, without knowing what was written.
/// </summary>
internal static class NandTestCommand
{
    public static VerbSpec Verb(TextWriter output) =>
        new(
            "nandtest",
            "program, read back and verify every page of the emulated NAND (or --check an image)",
            "Erases each good block, programs every page with self-describing content, reads it back and compares. Factory-bad blocks (a non-FFh marker in the spare area of page 0) are skipped. With --check, only reads: every programmed page must be intact and carry its own address; exits 1 if any page is corrupt or unreadable.",
            [
                CommonOptions.Config(Profiles.BuiltInNames()),
                CommonOptions.Set,
                new("--image", "FILE", "the NAND image to use (created if missing); without it, memory"),
                new("--passes", "N", "how many times to rewrite the array (default 1)"),
                new("--blocks", "N", "only the first N blocks (default: all)"),
                new("--seed", "N", "seed of the page contents (default 1)"),
                new("--check", null, "verify what an image holds instead of writing"),
            ],
            (args, _) => Task.FromResult(Run(args, output))
        )
        {
            Epilogue = "Example:\n  ssd-emulator nandtest --config tiny --image /tmp/nand.img --passes 3",
        };

    private const int HeaderBytes = 32;
    private static readonly uint s_magic = BinaryPrimitives.ReadUInt32LittleEndian("NTST"u8);

    public static int Run(CommandArgs args, TextWriter output)
    {
        ResolvedConfig config = Profiles.Load(args.Single("--config"), args.All("--set"));
        string? image = args.Single("--image");
        var clock = new VirtualClock();
        bool check = args.Has("--check");
        if (check && image is null)
        {
            throw new UsageException("--check needs --image FILE: a memory array holds nothing to check");
        }

        using EmulatedNand nand =
            image is null ? EmulatedNand.InMemory(config, clock)
            : check ? EmulatedNand.OpenExistingImage(image, config, clock)
            : EmulatedNand.OpenImage(image, config, clock);
        int blocks = (int)args.Integer("--blocks", nand.Geometry.Blocks, 1, nand.Geometry.Blocks);
        if (check)
        {
            return Check(nand, clock, blocks, output);
        }

        DieInProgramIfAsked(nand);
        long passes = args.Integer("--passes", 1, 1, long.MaxValue);
        ulong seed = (ulong)args.Integer("--seed", 1, 0, long.MaxValue);
        return Exercise(nand, clock, blocks, passes, seed, output);
    }

    /// <summary>
    /// The test hook for image crash consistency: with <c>SSD_EMULATOR_CRASH_IN_PROGRAM=N</c> in
    /// the environment, the process dies (as a SIGKILL would kill it) in the middle of its Nth
    /// page program, after the page data is stored and before its spare area and state are.
    /// </summary>
    private static void DieInProgramIfAsked(EmulatedNand nand)
    {
        const string Variable = "SSD_EMULATOR_CRASH_IN_PROGRAM";
        if (
            long.TryParse(
                Environment.GetEnvironmentVariable(Variable),
                System.Globalization.CultureInfo.InvariantCulture,
                out long program
            )
        )
        {
            nand.InMiddleOfProgram = n =>
            {
                if (n == program)
                {
                    Environment.FailFast($"{Variable}={program}: dying in the middle of a page program");
                }
            };
        }
    }

    private static int Exercise(
        EmulatedNand nand,
        VirtualClock clock,
        int blocks,
        long passes,
        ulong seed,
        TextWriter output
    )
    {
        NandGeometry geometry = nand.Geometry;
        byte[] data = new byte[geometry.PageBytes];
        byte[] spare = new byte[geometry.SpareBytes];
        byte[] readData = new byte[geometry.PageBytes];
        byte[] readSpare = new byte[geometry.SpareBytes];
        long mismatches = 0;
        for (long pass = 1; pass <= passes; pass++)
        {
            int skipped = 0;
            int failed = 0;
            long pages = 0;
            for (int block = 0; block < blocks; block++)
            {
                if (IsMarkedBad(nand, clock, block, readSpare))
                {
                    skipped++;
                    continue;
                }

                if (!Wait(clock, nand.EraseBlock(block)).Succeeded)
                {
                    failed++;
                    continue;
                }

                for (int page = 0; page < geometry.PagesPerBlock; page++)
                {
                    var address = new PageAddress(block, page);
                    Fill(address, pass, seed, data, spare);
                    NandCompletion programmed = Wait(clock, nand.ProgramPage(address, data, spare));
                    NandCompletion read = Wait(clock, nand.ReadPage(address, readData, readSpare));
                    if (
                        !programmed.Succeeded
                        || !read.Succeeded
                        || !readData.AsSpan().SequenceEqual(data)
                        || !readSpare.AsSpan().SequenceEqual(spare)
                    )
                    {
                        mismatches++;
                        output.WriteLine(
                            $"  {address}: program {programmed.Status}, read {read.Status}, {(readData.AsSpan().SequenceEqual(data) ? "data matches" : "data differs")}"
                        );
                    }

                    pages++;
                }
            }

            output.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"pass {pass}/{passes}: {pages} pages programmed and read back, {mismatches} mismatches, {skipped} bad blocks skipped, {failed} erase failures; virtual time {Units.Duration(clock.NowNanoseconds)}"
                )
            );
            output.Flush();
        }

        nand.Flush();
        return mismatches == 0 ? 0 : 1;
    }

    private static int Check(EmulatedNand nand, VirtualClock clock, int blocks, TextWriter output)
    {
        NandGeometry geometry = nand.Geometry;
        byte[] data = new byte[geometry.PageBytes];
        byte[] spare = new byte[geometry.SpareBytes];
        long valid = 0;
        long erased = 0;
        long bad = 0;
        int badBlocks = 0;
        for (int block = 0; block < blocks; block++)
        {
            if (IsMarkedBad(nand, clock, block, spare))
            {
                badBlocks++;
                continue;
            }

            for (int page = 0; page < geometry.PagesPerBlock; page++)
            {
                var address = new PageAddress(block, page);
                NandCompletion read = Wait(clock, nand.ReadPage(address, data, spare));
                string? problem = !read.Succeeded ? $"read {read.Status}" : Verify(address, data, spare);
                if (problem is null)
                {
                    valid++;
                }
                else if (problem.Length == 0)
                {
                    erased++;
                }
                else
                {
                    if (bad++ < 10)
                    {
                        output.WriteLine($"  {address}: {problem}");
                    }
                }
            }
        }

        output.WriteLine(
            $"check: {valid} pages intact, {erased} erased, {bad} corrupt or unreadable, {badBlocks} factory-bad blocks skipped"
        );
        return bad == 0 ? 0 : 1;
    }

    /// <summary>Null when the page is intact, empty when it is erased, else what is wrong.</summary>
    private static string? Verify(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        if (!data.ContainsAnyExcept((byte)0xFF) && !spare.ContainsAnyExcept((byte)0xFF))
        {
            return string.Empty;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data) != s_magic)
        {
            return "no nandtest header";
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data[24..]) != Checksum(data, spare))
        {
            return "checksum mismatch (torn or corrupted page)";
        }

        var written = new PageAddress(
            BinaryPrimitives.ReadInt32LittleEndian(data[4..]),
            BinaryPrimitives.ReadInt32LittleEndian(data[8..])
        );
        return written == address ? null : $"holds the content of {written} (a misdirected write)";
    }

    private static void Fill(PageAddress address, long pass, ulong seed, Span<byte> data, Span<byte> spare)
    {
        var prng = new Prng(seed ^ ((ulong)address.Block << 40) ^ ((ulong)address.Page << 20) ^ (ulong)pass);
        FillRandom(prng, data[HeaderBytes..]);
        FillRandom(prng, spare);
        // Bytes 0 and 1 of the spare area are where bad-block markers live; a good block keeps them FFh.
        spare[..Math.Min(2, spare.Length)].Fill(0xFF);
        BinaryPrimitives.WriteUInt32LittleEndian(data, s_magic);
        BinaryPrimitives.WriteInt32LittleEndian(data[4..], address.Block);
        BinaryPrimitives.WriteInt32LittleEndian(data[8..], address.Page);
        BinaryPrimitives.WriteInt64LittleEndian(data[12..], pass);
        BinaryPrimitives.WriteUInt32LittleEndian(data[20..], (uint)seed);
        BinaryPrimitives.WriteUInt32LittleEndian(data[24..], Checksum(data, spare));
        data[28..HeaderBytes].Clear();
    }

    private static uint Checksum(ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) =>
        Crc32C.Append(Crc32C.Append(Crc32C.Compute(data[..24]), data[HeaderBytes..]), spare);

    private static void FillRandom(Prng prng, Span<byte> buffer)
    {
        while (buffer.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, prng.NextUInt64());
            buffer = buffer[8..];
        }

        foreach (ref byte b in buffer)
        {
            b = (byte)prng.NextUInt64();
        }
    }

    private static bool IsMarkedBad(EmulatedNand nand, VirtualClock clock, int block, byte[] spare)
    {
        NandCompletion read = Wait(clock, nand.ReadPage(new PageAddress(block, 0), [], spare));
        return read.Succeeded && spare.Length > 0 && spare[0] != 0xFF;
    }

    private static NandCompletion Wait(VirtualClock clock, NandCompletion completion)
    {
        clock.AdvanceTo(Math.Max(clock.NowNanoseconds, completion.CompletesAtNanoseconds));
        return completion;
    }
}
