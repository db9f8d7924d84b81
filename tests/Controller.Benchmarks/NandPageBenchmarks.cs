using BenchmarkDotNet.Attributes;
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
/// </summary>
[MemoryDiagnoser]
public class NandPageBenchmarks
{
    private const int Blocks = 4;

    private readonly VirtualClock _clock = new();
    private EmulatedNand _nand = null!;
    private byte[] _source = null!;
    private byte[] _destination = null!;
    private byte[] _spare = null!;
    private byte[] _readSpare = null!;
    private int _programBlock;
    private int _programPage;
    private int _readPage;

    [GlobalSetup]
    public void Setup()
    {
        string profile = Path.Combine(AppContext.BaseDirectory, "hw-config", "emulated", "default.json");
        ResolvedConfig config = ConfigLoader.Load(EmulatorConfig.Schema, profile, ["faults.factoryBadBlockFraction=0"]);
        _nand = EmulatedNand.InMemory(config, _clock);
        _source = new byte[_nand.Geometry.PageBytes];
        _destination = new byte[_nand.Geometry.PageBytes];
        _spare = new byte[_nand.Geometry.SpareBytes];
        _readSpare = new byte[_nand.Geometry.SpareBytes];
        new Random(1).NextBytes(_source);
        new Random(2).NextBytes(_spare);

        // Fill every block the benchmark cycles through once, so their storage exists before measuring.
        for (int i = 0; i < Blocks * _nand.Geometry.PagesPerBlock; i++)
        {
            ProgramPage16KiB();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _nand.Dispose();

    [Benchmark(Baseline = true, Description = "memcpy 16 KiB")]
    public void Memcpy16KiB() => _source.AsSpan().CopyTo(_destination);

    /// <summary>Programs the next page of a few blocks on one die in turn, erasing each block when it is full.</summary>
    [Benchmark(Description = "program 16 KiB page")]
    public void ProgramPage16KiB()
    {
        if (_programPage == 0)
        {
            Complete(_nand.EraseBlock(_programBlock));
        }

        Complete(_nand.ProgramPage(new PageAddress(_programBlock, _programPage), _source, _spare));
        if (++_programPage == _nand.Geometry.PagesPerBlock)
        {
            _programPage = 0;
            _programBlock = (_programBlock + 1) % Blocks;
        }
    }

    /// <summary>Reads programmed pages in turn, data and spare, with bit errors drawn as in the default profile.</summary>
    [Benchmark(Description = "read 16 KiB page")]
    public NandStatus ReadPage16KiB()
    {
        int block = (_programBlock + 1) % Blocks;
        _readPage = (_readPage + 1) % _nand.Geometry.PagesPerBlock;
        return Complete(_nand.ReadPage(new PageAddress(block, _readPage), _destination, _readSpare)).Status;
    }

    private NandCompletion Complete(NandCompletion completion)
    {
        _clock.AdvanceTo(Math.Max(_clock.NowNanoseconds, completion.CompletesAtNanoseconds));
        return completion;
    }
}
