using System.Globalization;
using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Board;

/// <summary>
/// <c>ssd-board probe</c>: checks a freshly wired chip against its description. It reads the ID,
/// the ONFI parameter page where the chip has one, scans the factory bad-block markers and the
/// blocks' first pages, and runs a program/read/erase self-test on one good block, which it
/// leaves erased. A chip holding data is refused the self-test unless the user says --yes.
/// </summary>
internal sealed class ProbeCommand
{
    private const string Ok = "ok";
    private const string Fail = "FAIL";

    private readonly SpiNandDevice _driver;
    private readonly SpiNandChip _chip;
    private readonly IClock _clock;
    private readonly TextWriter _output;
    private bool _failed;

    // The most bad blocks the parameter page allows, or -1 without one.
    private int _maximumBad = -1;

    private ProbeCommand(SpiNandDevice driver, SpiNandChip chip, IClock clock, TextWriter output)
    {
        _driver = driver;
        _chip = chip;
        _clock = clock;
        _output = output;
    }

    /// <summary>
    /// Probes the chip behind <paramref name="driver"/>; 0 when everything matched and passed, 1 otherwise.
    /// </summary>
    public static int Run(
        SpiNandDevice driver,
        SpiNandChip chip,
        IClock clock,
        string where,
        bool selfTestOnData,
        TextWriter output
    )
    {
        ArgumentNullException.ThrowIfNull(driver);
        ArgumentNullException.ThrowIfNull(chip);
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine($"ssd-board probe: the {chip.Name} the profile describes, on {where}");
        var probe = new ProbeCommand(driver, chip, clock, output);
        return probe.Probe(selfTestOnData) ? 0 : 1;
    }

    private bool Probe(bool selfTestOnData)
    {
        _driver.ResetChip();
        if (!CheckId())
        {
            _output.WriteLine(
                "ssd-board probe: the chip is not the one described; check the wiring (CS, SCLK, MOSI, MISO, 3.3 V, GND) and the profile's chip description. Nothing was written."
            );
            return false;
        }

        _driver.Initialize();
        CheckParameterPage();
        (List<int> bad, List<int> holdingData) = Scan();
        if (_failed)
        {
            _output.WriteLine(
                "ssd-board probe: the chip does not match its description; the self-test was not run. Nothing was written."
            );
            return false;
        }

        SelfTest(bad, holdingData, selfTestOnData);
        _output.WriteLine(
            _failed
                ? "ssd-board probe: FAILED (the lines marked FAIL say what)"
                : $"ssd-board probe: the {_chip.Name} matches its description and passed the self-test"
        );
        return !_failed;
    }

    private void Line(string what, string value, string verdict)
    {
        _failed |= verdict.StartsWith(Fail, StringComparison.Ordinal);
        _output.WriteLine($"  {what, -15} {value, -44} {verdict}");
    }

    private bool CheckId()
    {
        Span<byte> id = stackalloc byte[_chip.JedecId.Length];
        _driver.ReadJedecId(id);
        string read = Convert.ToHexString(id);
        bool blank = !id.ContainsAnyExcept((byte)0xFF) || !id.ContainsAnyExcept((byte)0x00);
        bool matches = id.SequenceEqual(_chip.JedecId);
        Line(
            "id",
            string.Join(' ', read.Chunk(2).Select(c => new string(c))),
            matches ? Ok
                : blank ? $"{Fail}: no answer (all {id[0]:X2}); expected {Convert.ToHexString(_chip.JedecId)}"
                : $"{Fail}: expected {Convert.ToHexString(_chip.JedecId)} ({_chip.Name})"
        );
        return matches;
    }

    private void CheckParameterPage()
    {
        if (!_chip.HasParameterPage)
        {
            Line("parameter page", "none described (chip.parameterPage false)", "skipped");
            return;
        }

        byte[] copies = new byte[OnfiParameterPage.Bytes * OnfiParameterPage.Copies];
        _driver.ReadParameterPage(copies);
        (OnfiParameterPage? page, int copy) = OnfiParameterPage.Parse(copies);
        if (page is null)
        {
            Line(
                "parameter page",
                "no copy with the ONFI signature and a valid CRC",
                $"{Fail}: the description says the chip has one"
            );
            return;
        }

        NandGeometry g = _chip.Geometry;
        Line(
            "parameter page",
            $"{page.Manufacturer} {page.Model}, copy {copy + 1} of 3",
            page.Model.Contains(_chip.Name, StringComparison.OrdinalIgnoreCase)
                ? Ok
                : $"ok (the description names {_chip.Name})"
        );
        Line(
            "  maker",
            $"{page.JedecManufacturer:X2}",
            page.JedecManufacturer == _chip.JedecId[0] ? Ok : $"{Fail}: the ID's maker is {_chip.JedecId[0]:X2}"
        );
        Line(
            "  page",
            $"{page.PageBytes} + {page.SpareBytes} bytes",
            page.PageBytes == g.PageBytes && page.SpareBytes == g.SpareBytes
                ? Ok
                : $"{Fail}: described {g.PageBytes} + {g.SpareBytes}"
        );
        Line(
            "  block",
            $"{page.PagesPerBlock} pages",
            page.PagesPerBlock == g.PagesPerBlock ? Ok : $"{Fail}: described {g.PagesPerBlock}"
        );
        Line(
            "  blocks",
            $"{page.BlocksPerLun * page.Luns} ({page.Luns} LUN)",
            page.BlocksPerLun * page.Luns == g.Blocks ? Ok : $"{Fail}: described {g.Blocks}"
        );
        _maximumBad = page.MaximumBadBlocksPerLun * page.Luns;
    }

    /// <summary>
    /// Page 0 of every block: the factory's bad-block marker (spare bytes 0-1) and whether it holds data.
    /// </summary>
    private (List<int> Bad, List<int> HoldingData) Scan()
    {
        NandGeometry g = _chip.Geometry;
        byte[] data = new byte[g.PageBytes];
        byte[] spare = new byte[g.SpareBytes];
        var bad = new List<int>();
        var holding = new List<int>();
        for (int block = 0; block < g.Blocks; block++)
        {
            _driver.ReadPage(new PageAddress(block, 0), data, spare);
            if (SpiNandDevice.IsBadBlockMarker(spare))
            {
                bad.Add(block);
            }
            else if (data.AsSpan().ContainsAnyExcept((byte)0xFF) || spare.AsSpan().ContainsAnyExcept((byte)0xFF))
            {
                holding.Add(block);
            }
        }

        // ONFI allows up to the parameter page's maximum over the chip's life; without one, 2% (what makers commonly
        // give).
        int allowed = _maximumBad >= 0 ? _maximumBad : Math.Max(1, g.Blocks / 50);
        string listed =
            bad.Count == 0
                ? string.Empty
                : $" ({string.Join(", ", bad.Take(8))}{(bad.Count > 8 ? ", ..." : string.Empty)})";
        Line(
            "bad blocks",
            $"{bad.Count} of {g.Blocks} marked by the maker{listed}",
            bad.Count <= allowed ? $"ok (at most {allowed})" : $"{Fail}: more than the {allowed} allowed"
        );
        Line(
            "contents",
            holding.Count == 0 ? "blank: every good block erased" : $"{holding.Count} blocks hold data",
            holding.Count == 0 ? Ok : "the firmware's, or another's"
        );
        return (bad, holding);
    }

    /// <summary>
    /// Programs every page of one good block with a pattern, reads each back, erases it and checks it erased; times
    /// each.
    /// </summary>
    private void SelfTest(List<int> bad, List<int> holdingData, bool selfTestOnData)
    {
        NandGeometry g = _chip.Geometry;
        if (holdingData.Count > 0 && !selfTestOnData)
        {
            Line(
                "self-test",
                "not run: the chip holds data",
                $"{Fail}: the self-test writes a block; add --yes to run it anyway"
            );
            return;
        }

        // The last good block: the firmware formats from the first good blocks up.
        int block = Enumerable.Range(0, g.Blocks).Reverse().FirstOrDefault(b => !bad.Contains(b), -1);
        if (block < 0)
        {
            Line("self-test", "no good block", Fail);
            return;
        }

        byte[] data = new byte[g.PageBytes];
        byte[] spare = new byte[g.SpareBytes];
        byte[] back = new byte[g.PageBytes];
        byte[] backSpare = new byte[g.SpareBytes];
        long programTicks = 0,
            readTicks = 0,
            eraseTicks = 0;
        string? problem = Check(_driver.EraseBlock(block), "the erase before the test");
        for (int page = 0; page < g.PagesPerBlock && problem is null; page++)
        {
            Pattern(block, page, data, spare);
            long start = _clock.NowNanoseconds;
            problem = Check(
                _driver.ProgramPage(new PageAddress(block, page), data, spare),
                $"the program of page {page}"
            );
            programTicks += _clock.NowNanoseconds - start;
        }

        for (int page = 0; page < g.PagesPerBlock && problem is null; page++)
        {
            Pattern(block, page, data, spare);
            long start = _clock.NowNanoseconds;
            NandCompletion read = _driver.ReadPage(new PageAddress(block, page), back, backSpare);
            readTicks += _clock.NowNanoseconds - start;
            problem =
                read.Status == NandStatus.Uncorrectable ? $"page {page} read back uncorrectable"
                : !back.AsSpan().SequenceEqual(data)
                    ? $"page {page} read back other data (first difference at byte {back.AsSpan().CommonPrefixLength(data)})"
                : null;
        }

        long eraseStart = _clock.NowNanoseconds;
        problem ??= Check(_driver.EraseBlock(block), "the erase after the test");
        eraseTicks = _clock.NowNanoseconds - eraseStart;
        if (problem is null)
        {
            foreach (int page in new[] { 0, g.PagesPerBlock - 1 })
            {
                _driver.ReadPage(new PageAddress(block, page), back, backSpare);
                if (back.AsSpan().ContainsAnyExcept((byte)0xFF) || backSpare.AsSpan().ContainsAnyExcept((byte)0xFF))
                {
                    problem = $"page {page} is not erased after the erase";
                }
            }
        }

        string timings = string.Create(
            CultureInfo.InvariantCulture,
            $"program {programTicks / 1e3 / g.PagesPerBlock:0} us, read {readTicks / 1e3 / g.PagesPerBlock:0} us, erase {eraseTicks / 1e3:0} us (with the bus)"
        );
        Line(
            "self-test",
            $"block {block}: {g.PagesPerBlock} pages programmed, read back, erased",
            problem is null ? Ok : $"{Fail}: {problem}"
        );
        if (problem is null)
        {
            Line("  timing", timings, "measured");
        }
    }

    private static string? Check(NandCompletion completion, string what) =>
        completion.Succeeded ? null : $"{what} failed ({completion.Status})";

    /// <summary>
    /// A pattern unique to the page, with the spare's first two bytes left FFh so the block is never marked bad.
    /// </summary>
    private static void Pattern(int block, int page, byte[] data, byte[] spare)
    {
        uint x = (uint)((block * 7919) + (page * 104729) + 1);
        for (int i = 0; i < data.Length; i++)
        {
            x = (x * 1103515245) + 12345;
            data[i] = (byte)(x >> 16);
        }

        for (int i = 0; i < spare.Length; i++)
        {
            spare[i] = i < 2 ? (byte)0xFF : (byte)(page + i);
        }
    }
}
