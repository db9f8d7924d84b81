using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Controller.Emulator;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;

namespace Controller.Benchmarks;

/// <summary>
/// The cost of the emulated NAND's hot path on the default device (16 KiB pages with a 1872-byte
/// spare area, the default bit-error model on), against a plain 16 KiB memcpy in the same run.
/// Target: program and read each cost at most twice the memcpy and allocate nothing.
/// <para>
/// A page program or read touches the array's memory, so its cost depends on whether that memory
/// is in cache. The benchmark runs at two working-set sizes: 256 KiB (two blocks of 8 pages,
/// inside L2) and 4 MiB (two blocks of 128 pages, beyond L2). Each operation has its own memcpy
/// baseline over a ring of the same size in the same direction: a program against a copy into the
/// ring, a read against a copy out of it, so each ratio compares like with like.
/// </para>
/// </summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 5, iterationCount: 25)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class NandPageBenchmarks
{
    private const int Blocks = 2;

    private readonly VirtualClock _clock = new();
    private EmulatedNand _nand = null!;
    private Memory<byte> _source;
    private Memory<byte> _ring;
    private Memory<byte> _destination;
    private Memory<byte> _spare;
    private Memory<byte> _readSpare;
    private int _ringSlot;
    private int _programBlock;
    private int _programPage;
    private int _readPage;

    /// <summary>Bytes of page data the program and read benchmarks cycle through.</summary>
    [Params(256, 4096)]
    public int WorkingSetKiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int pagesPerBlock = WorkingSetKiB / 16 / Blocks;
        string profile = Path.Combine(AppContext.BaseDirectory, "hw-config", "emulated", "default.json");
        ResolvedConfig config = ConfigLoader.Load(
            EmulatorConfig.Schema,
            profile,
            ["faults.factoryBadBlockFraction=0", $"nand.pagesPerBlock={pagesPerBlock}"]
        );
        _nand = EmulatedNand.InMemory(config, _clock);

        // A copy's speed depends on how source and destination sit relative to each other (on
        // this project's AMD machines glibc's memcpy of 16 KiB takes from 210 ns to 9 us depending
        // on their offset modulo 4 KiB and on which is at the higher address). So every buffer is
        // pinned, where a GC cannot move it between iterations, and 4 KiB-aligned, as the array's
        // page data is; and the ring is allocated after the array's blocks, so it lies above the
        // caller's buffers exactly as the array does.
        _source = PageAligned(_nand.Geometry.PageBytes);
        _destination = PageAligned(_nand.Geometry.PageBytes);
        _spare = PageAligned(_nand.Geometry.SpareBytes);
        _readSpare = PageAligned(_nand.Geometry.SpareBytes);
        new Random(1).NextBytes(_source.Span);
        new Random(2).NextBytes(_spare.Span);

        // Fill every block the benchmark cycles through once, so their storage exists before measuring.
        for (int i = 0; i < Blocks * _nand.Geometry.PagesPerBlock; i++)
        {
            ProgramPage16KiB();
        }

        _ring = PageAligned(WorkingSetKiB * 1024);
        _ring.Span.Fill(0x5A);
    }

    [GlobalCleanup]
    public void Cleanup() => _nand.Dispose();

    /// <summary>Copies a page-sized buffer into the next slot of a ring as large as the working set.</summary>
    [Benchmark(Baseline = true, Description = "memcpy 16 KiB into ring")]
    [BenchmarkCategory("program")]
    public void MemcpyIntoRing()
    {
        int pageBytes = _source.Length;
        _ringSlot = (_ringSlot + 1) % (_ring.Length / pageBytes);
        _source.Span.CopyTo(_ring.Span.Slice(_ringSlot * pageBytes, pageBytes));
    }

    /// <summary>Copies the next slot of a ring as large as the working set into a page-sized buffer.</summary>
    [Benchmark(Baseline = true, Description = "memcpy 16 KiB out of ring")]
    [BenchmarkCategory("read")]
    public void MemcpyOutOfRing()
    {
        int pageBytes = _destination.Length;
        _ringSlot = (_ringSlot + 1) % (_ring.Length / pageBytes);
        _ring.Span.Slice(_ringSlot * pageBytes, pageBytes).CopyTo(_destination.Span);
    }

    /// <summary>Programs the next page of the blocks in turn, erasing each block when it is full.</summary>
    [Benchmark(Description = "program 16 KiB page")]
    [BenchmarkCategory("program")]
    public void ProgramPage16KiB()
    {
        if (_programPage == 0)
        {
            Complete(_nand.EraseBlock(_programBlock));
        }

        Complete(_nand.ProgramPage(new PageAddress(_programBlock, _programPage), _source.Span, _spare.Span));
        if (++_programPage == _nand.Geometry.PagesPerBlock)
        {
            _programPage = 0;
            _programBlock = (_programBlock + 1) % Blocks;
        }
    }

    /// <summary>
    /// Reads the programmed pages in turn, data and spare, with bit errors drawn as in the default profile.
    /// </summary>
    [Benchmark(Description = "read 16 KiB page")]
    [BenchmarkCategory("read")]
    public NandStatus ReadPage16KiB()
    {
        _readPage = (_readPage + 1) % (Blocks * _nand.Geometry.PagesPerBlock);
        var address = new PageAddress(
            _readPage / _nand.Geometry.PagesPerBlock,
            _readPage % _nand.Geometry.PagesPerBlock
        );
        return Complete(_nand.ReadPage(address, _destination.Span, _readSpare.Span)).Status;
    }

    private static Memory<byte> PageAligned(int length)
    {
        const int Alignment = 4096;
        byte[] slab = GC.AllocateArray<byte>(length + Alignment, pinned: true);
        GCHandle handle = GCHandle.Alloc(slab, GCHandleType.Pinned);
        long address = handle.AddrOfPinnedObject();
        handle.Free();
        int offset = (int)((Alignment - (address % Alignment)) % Alignment);
        return slab.AsMemory(offset, length);
    }

    private NandCompletion Complete(NandCompletion completion)
    {
        _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, completion.CompletesAtNanoseconds));
        return completion;
    }
}
