using BenchmarkDotNet.Attributes;
using Controller.Emulator;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;

namespace Controller.Benchmarks;

/// <summary>
/// The SPI path's cost per operation on the emulated W25N01GV (2 KiB pages, 64-byte spare): the
/// firmware's SPI NAND driver over the emulated chip, against the emulated array alone, both on the
/// virtual clock, BUSY polled every 5 us of virtual time. Target: the driver's frames live on the
/// stack and in one page buffer, so no operation allocates; what the SPI path adds over the array
/// is the protocol (a few transfers and the status polls), measured here.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 5, iterationCount: 20)]
public class SpiNandBenchmarks
{
    private const int PagesPerBlock = 64;
    private readonly byte[] _data = new byte[2048];
    private readonly byte[] _spare = new byte[64];
    private readonly byte[] _readData = new byte[2048];
    private readonly byte[] _readSpare = new byte[64];
    private VirtualClock _clock = null!;
    private EmulatedNand _array = null!;
    private SpiNandDevice _driver = null!;
    private int _page;
    private int _readPage;

    [GlobalSetup]
    public void Setup()
    {
        string profile = Path.Combine(AppContext.BaseDirectory, "hw-config", "chips", "w25n01gv.json");
        ResolvedConfig config = ConfigLoader.Load(
            EmulatorConfig.Schema,
            profile,
            ["faults.factoryBadBlockFraction=0", "nand.blocksPerDie=128"]
        );
        _clock = new VirtualClock();
        _array = EmulatedNand.InMemory(config, _clock);
        SpiNandChip chip = SpiNandChip.FromConfig(config);
        _driver = new SpiNandDevice(new EmulatedSpiNandChip(_array, chip, _clock), chip, _clock);
        _driver.Initialize();
        Random.Shared.NextBytes(_data);
        for (int block = 0; block < 2; block++)
        {
            _driver.EraseBlock(block);
            for (int page = 0; page < PagesPerBlock; page++)
            {
                _driver.ProgramPage(new PageAddress(block, page), _data, _spare);
            }
        }

        _driver.EraseBlock(2);
    }

    [GlobalCleanup]
    public void Cleanup() => _array.Dispose();

    /// <summary>A page and spare read through the driver: 13h, status polls, 03h.</summary>
    [Benchmark]
    public NandCompletion ReadThroughDriver() => _driver.ReadPage(NextRead(), _readData, _readSpare);

    /// <summary>The same read from the emulated array, no SPI in between.</summary>
    [Benchmark(Baseline = true)]
    public NandCompletion ReadFromArray()
    {
        NandCompletion completion = _array.ReadPage(NextRead(), _readData, _readSpare);
        _clock.WaitUntil(completion.CompletesAtNanoseconds);
        return completion;
    }

    /// <summary>A page program through the driver (06h, 02h, 10h, polls), erasing the block when it is full.</summary>
    [Benchmark]
    public NandCompletion ProgramThroughDriver()
    {
        if (_page == PagesPerBlock)
        {
            _driver.EraseBlock(2);
            _page = 0;
        }

        return _driver.ProgramPage(new PageAddress(2, _page++), _data, _spare);
    }

    private PageAddress NextRead()
    {
        _readPage = (_readPage + 1) % (2 * PagesPerBlock);
        return new PageAddress(_readPage / PagesPerBlock, _readPage % PagesPerBlock);
    }
}
