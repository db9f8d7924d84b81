using Controller.Common;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Nand;

/// <summary>
/// NAND flash that behaves like NAND: the rules (program only erased pages, in ascending order,
/// erase per block), datasheet timing per die and channel on the injected clock, wear with bit
/// errors and an ECC model, factory and grown bad blocks, and power cuts that tear the operations
/// in progress. Storage is sparse memory or a memory-mapped image file.
/// <para>
/// An operation takes effect in the store when it is issued and completes at the instant it
/// returns; until then it is in flight and a <see cref="PowerCut"/> can undo or tear it. Undoing
/// walks each die's queue from the newest operation back, so an erase and the programs queued
/// behind it come apart in the right order.
/// </para>
/// </summary>
public sealed class EmulatedNand : INandDevice, IDisposable
{
    private const byte ErasedByte = 0xFF;

    private readonly NandStore _store;
    private readonly IClock _clock;
    private IClock? _issueClock;
    private readonly Prng _prng;
    private NandFaultOptions _faults;
    private readonly BitErrorModel _bitErrors;
    private readonly PowerCutModel _powerCuts;
    private readonly long[] _dieReadyAt;
    private readonly ChannelSchedule[] _channels;
    private readonly int[] _writePointer;
    private readonly HashSet<PageAddress> _injectedProgramFailures = [];
    private readonly HashSet<int> _injectedEraseFailures = [];
    private int _failingPrograms;
    private int _failingErases;

    private EmulatedNand(
        NandStore store,
        NandTiming timing,
        EccModel ecc,
        int enduranceCycles,
        NandFaultOptions faults,
        IClock clock
    )
    {
        ArgumentNullException.ThrowIfNull(timing);
        ArgumentNullException.ThrowIfNull(ecc);
        ArgumentNullException.ThrowIfNull(faults);
        ArgumentNullException.ThrowIfNull(clock);
        _store = store;
        Geometry = store.Geometry;
        Timing = timing;
        Ecc = ecc;
        EnduranceCycles = enduranceCycles;
        _faults = faults;
        _clock = clock;
        _prng = new Prng(faults.Seed);
        _dieReadyAt = new long[Geometry.Dies];
        _channels = new ChannelSchedule[Geometry.Channels];
        for (int channel = 0; channel < _channels.Length; channel++)
        {
            _channels[channel] = new ChannelSchedule();
        }

        _writePointer = new int[Geometry.Blocks];
        _bitErrors = new BitErrorModel(store, ecc, enduranceCycles, _prng);
        _bitErrors.SetRates(faults.RawBitErrorRate, faults.WearBitErrorGrowth);
        _powerCuts = new PowerCutModel(store, _prng);
        if (store.IsNew)
        {
            MarkFactoryBadBlocks();
            store.CommitCreation();
        }

        for (int block = 0; block < Geometry.Blocks; block++)
        {
            RecomputeWritePointer(block);
        }
    }

    /// <inheritdoc />
    public NandGeometry Geometry { get; }

    /// <summary>
    /// The clock operations are issued on: the instant an operation is handed to its die, from which
    /// it is booked behind what the die and its channel already have. By default the array's own
    /// clock; the firmware's <see cref="CommandClock"/> when commands overlap, so each command's
    /// operations start from its own timeline. Completions, tearing by a power cut and the
    /// forgetting of finished operations always follow the array's own clock.
    /// </summary>
    public IClock IssueClock
    {
        get => _issueClock ?? _clock;
        set => _issueClock = value;
    }

    /// <summary>The datasheet timing the model follows.</summary>
    public NandTiming Timing { get; }

    /// <summary>The ECC engine the model applies to reads.</summary>
    public EccModel Ecc { get; }

    /// <summary>Rated program/erase cycles; bit errors grow towards it and beyond.</summary>
    public int EnduranceCycles { get; }

    /// <summary>False between <see cref="PowerCut"/> and <see cref="PowerOn"/>.</summary>
    public bool IsPowered { get; private set; } = true;

    /// <summary>Counts of what the array has done since it was created or opened.</summary>
    public NandCounters Statistics { get; } = new();

    /// <summary>Power cuts suffered since the array was created or opened.</summary>
    public long PowerCuts { get; private set; }

    /// <summary>
    /// Called in the middle of every page program, with the number of that program (from 1), after
    /// the page's data is in the store and before its spare area and state are: a test of an image's
    /// crash consistency kills the process here.
    /// </summary>
    public Action<long>? InMiddleOfProgram { get; set; }

    /// <summary>
    /// Creates an array in memory, fresh from the factory, as <paramref name="config"/> describes it.
    /// </summary>
    public static EmulatedNand InMemory(ResolvedConfig config, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new EmulatedNand(
            new MemoryNandStore(FirmwareConfig.Geometry(config)),
            NandTiming.FromConfig(config),
            EccModel.FromConfig(config),
            (int)config.Get(FirmwareConfig.EnduranceCycles),
            NandFaultOptions.FromConfig(config),
            clock
        );
    }

    /// <summary>
    /// Opens the image file at <paramref name="path"/>, or creates it fresh from the factory when it
    /// does not exist. A file that is not an image of this geometry is refused with a
    /// <see cref="NandImageException"/> and left as it was.
    /// </summary>
    public static EmulatedNand OpenImage(string path, ResolvedConfig config, IClock clock) =>
        OpenImage(path, config, clock, mayCreate: true);

    /// <summary>
    /// Opens the existing image file at <paramref name="path"/>; a missing file is a
    /// <see cref="NandImageException"/>, for commands that only inspect an image.
    /// </summary>
    public static EmulatedNand OpenExistingImage(string path, ResolvedConfig config, IClock clock) =>
        OpenImage(path, config, clock, mayCreate: false);

    private static EmulatedNand OpenImage(string path, ResolvedConfig config, IClock clock, bool mayCreate)
    {
        ArgumentNullException.ThrowIfNull(config);
        NandStore store = ImageNandStore.OpenOrCreate(path, FirmwareConfig.Geometry(config), mayCreate);
        try
        {
            return new EmulatedNand(
                store,
                NandTiming.FromConfig(config),
                EccModel.FromConfig(config),
                (int)config.Get(FirmwareConfig.EnduranceCycles),
                NandFaultOptions.FromConfig(config),
                clock
            );
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Creates an array in memory from explicit parts (for tests and benchmarks).</summary>
    public static EmulatedNand InMemory(
        NandGeometry geometry,
        NandTiming timing,
        EccModel ecc,
        int enduranceCycles,
        NandFaultOptions faults,
        IClock clock
    ) => new(new MemoryNandStore(geometry), timing, ecc, enduranceCycles, faults, clock);

    /// <summary>How many blocks have memory behind them; an in-memory array is sparse. Zero for image files.</summary>
    public int AllocatedBlocks => _store is MemoryNandStore memory ? memory.AllocatedBlocks : 0;

    /// <summary>Times <paramref name="block"/> has been erased.</summary>
    public uint EraseCount(int block)
    {
        CheckBlock(block);
        return _store.EraseCounts[block];
    }

    /// <summary>
    /// The next program of <paramref name="address"/> fails with <see cref="NandStatus.ProgramFailed"/>.
    /// </summary>
    public void InjectProgramFailure(PageAddress address)
    {
        CheckAddress(address);
        _injectedProgramFailures.Add(address);
    }

    /// <summary>The next erase of <paramref name="block"/> fails with <see cref="NandStatus.EraseFailed"/>.</summary>
    public void InjectEraseFailure(int block)
    {
        CheckBlock(block);
        _injectedEraseFailures.Add(block);
    }

    /// <summary>When every die has finished what it was given: the instant the array goes idle.</summary>
    public long IdleAtNanoseconds => _dieReadyAt.Max();

    /// <summary>The fault rates in force.</summary>
    public NandFaultOptions Faults => _faults;

    /// <summary>
    /// Changes the fault rates from now on (raw bit error rate, program and erase failure
    /// probabilities); the seed, the factory bad blocks and the weak blocks stay as they are.
    /// </summary>
    public void SetFaultRates(double rawBitErrorRate, double programFailProbability, double eraseFailProbability)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rawBitErrorRate);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rawBitErrorRate, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(programFailProbability);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(programFailProbability, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(eraseFailProbability);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(eraseFailProbability, 1);
        _faults = _faults with
        {
            RawBitErrorRate = rawBitErrorRate,
            ProgramFailProbability = programFailProbability,
            EraseFailProbability = eraseFailProbability,
        };
        _bitErrors.SetRates(_faults.RawBitErrorRate, _faults.WearBitErrorGrowth);
    }

    /// <summary>
    /// The next <paramref name="programs"/> page programs and <paramref name="erases"/> block erases fail, wherever
    /// they are.
    /// </summary>
    public void FailNext(int programs, int erases)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(programs);
        ArgumentOutOfRangeException.ThrowIfNegative(erases);
        _failingPrograms += programs;
        _failingErases += erases;
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die)
    {
        if ((uint)die >= (uint)Geometry.Dies)
        {
            throw new NandRuleViolationException(
                NandRule.AddressInRange,
                $"die {die} is outside the array of {Geometry.Dies} dies"
            );
        }

        Retire(die);
        long ready = _dieReadyAt[die];
        long issue = IssueClock.NowNanoseconds;
        return new NandDieStatus(ready > issue, ready, _powerCuts.EndingAfter(die, issue));
    }

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        CheckPowered();
        CheckAddress(address);
        if (
            (data.Length != 0 && data.Length != Geometry.PageBytes)
            || (spare.Length != 0 && spare.Length != Geometry.SpareBytes)
            || data.Length + spare.Length == 0
        )
        {
            throw new NandRuleViolationException(
                NandRule.BufferSize,
                $"read of {address}: buffers of {data.Length}+{spare.Length} bytes; a read takes a page of {Geometry.PageBytes} or none and a spare area of {Geometry.SpareBytes} or none"
            );
        }

        // A read changes nothing a power cut could tear, so it only occupies its die and channel;
        // it is not kept in the die's queue of operations in flight.
        int die = Geometry.DieOf(address.Block);
        long start = Math.Max(IssueClock.NowNanoseconds, _dieReadyAt[die]);
        long end = Transfer(die, start + Timing.ReadNanoseconds, data.Length + spare.Length);
        _dieReadyAt[die] = end;
        NandCompletion completion = ReadContents(address, data, spare, end);
        Statistics.Read(completion);
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        CheckPowered();
        CheckAddress(address);
        if (data.Length != Geometry.PageBytes || spare.Length != Geometry.SpareBytes)
        {
            throw new NandRuleViolationException(
                NandRule.BufferSize,
                $"program of {address}: buffers of {data.Length}+{spare.Length} bytes; a program takes a whole page of {Geometry.PageBytes} and a spare area of {Geometry.SpareBytes}"
            );
        }

        int pageIndex = PageIndex(address);
        if ((PageState)_store.States[pageIndex] != PageState.Erased)
        {
            throw new NandRuleViolationException(
                NandRule.ProgramErasedPageOnly,
                $"program of {address}: the page is {(PageState)_store.States[pageIndex]}, not erased; NAND has no partial reprogram"
            );
        }

        if (address.Page < _writePointer[address.Block])
        {
            throw new NandRuleViolationException(
                NandRule.ProgramAscendingOrder,
                $"program of {address}: page {_writePointer[address.Block] - 1} of the block is already programmed; pages are programmed in ascending order"
            );
        }

        int die = Geometry.DieOf(address.Block);
        Retire(die);
        long start = Math.Max(IssueClock.NowNanoseconds, _dieReadyAt[die]);
        long arrayStart = Transfer(die, start, data.Length + spare.Length);
        long end = arrayStart + Timing.ProgramNanoseconds;
        _dieReadyAt[die] = end;
        _powerCuts.Program(die, address, arrayStart, end);
        _writePointer[address.Block] = address.Page + 1;
        bool fails = ProgramFails(address);
        Span<byte> storedData = _store.Data(pageIndex);
        data.CopyTo(storedData);
        InMiddleOfProgram?.Invoke(Statistics.PagesProgrammed + 1);
        spare.CopyTo(_store.Spare(pageIndex));
        if (fails)
        {
            _powerCuts.PartiallyProgram(storedData);
        }

        // The state byte is written last: a process killed before it leaves the page erased.
        Volatile.Write(ref _store.States[pageIndex], (byte)(fails ? PageState.Torn : PageState.Programmed));
        var completion = new NandCompletion(fails ? NandStatus.ProgramFailed : NandStatus.Ok, end);
        Statistics.Programmed(completion);
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        CheckPowered();
        CheckBlock(block);
        int die = Geometry.DieOf(block);
        Retire(die);
        long start = Math.Max(IssueClock.NowNanoseconds, _dieReadyAt[die]);
        long end = start + Timing.EraseNanoseconds;
        _dieReadyAt[die] = end;
        _powerCuts.Erase(die, block, start, end);
        NandCompletion completion = EraseContents(block, end);
        Statistics.Erased(completion);
        return completion;
    }

    private NandCompletion EraseContents(int block, long end)
    {
        if (((BlockFlags)_store.Flags[block]).HasFlag(BlockFlags.FactoryBad))
        {
            // A factory-bad block keeps its marker: firmware that erases one is told, and loses nothing.
            return new NandCompletion(NandStatus.EraseFailed, end);
        }

        _store.EraseCounts[block]++;
        Span<byte> states = BlockStates(block);
        if (EraseFails(block))
        {
            states.Fill((byte)PageState.Torn);
            _writePointer[block] = Geometry.PagesPerBlock;
            return new NandCompletion(NandStatus.EraseFailed, end);
        }

        states.Clear();
        _writePointer[block] = 0;
        return new NandCompletion(NandStatus.Ok, end);
    }

    /// <summary>
    /// Cuts the power at the clock's current instant. Completed operations survive. An operation
    /// in progress is torn: a program leaves its page programmed, erased or corrupted; an erase
    /// leaves its block erased, untouched or unreliable. Operations queued behind it never happen.
    /// Until <see cref="PowerOn"/>, every operation is refused.
    /// </summary>
    /// <returns>Every operation that had not completed, with what became of it.</returns>
    public IReadOnlyList<TornOperation> PowerCut()
    {
        CheckPowered();
        long now = _clock.NowNanoseconds;
        List<TornOperation> torn = _powerCuts.Cut(now);
        foreach (TornOperation operation in torn)
        {
            RecomputeWritePointer(operation.Address.Block);
        }

        Array.Fill(_dieReadyAt, now);
        foreach (ChannelSchedule channel in _channels)
        {
            channel.Clear();
        }

        IsPowered = false;
        PowerCuts++;
        return torn;
    }

    /// <summary>Restores power after a <see cref="PowerCut"/>; the array holds what the cut left.</summary>
    public void PowerOn()
    {
        if (IsPowered)
        {
            throw new InvalidOperationException("the array is already powered");
        }

        IsPowered = true;
    }

    /// <summary>Pushes every change to the image file (a no-op in memory).</summary>
    public void Flush() => _store.Flush();

    /// <inheritdoc />
    public void Dispose() => _store.Dispose();

    private NandCompletion ReadContents(PageAddress address, Span<byte> data, Span<byte> spare, long end)
    {
        int pageIndex = PageIndex(address);
        var state = (PageState)_store.States[pageIndex];
        if (state == PageState.Erased)
        {
            data.Fill(ErasedByte);
            spare.Fill(ErasedByte);
            return new NandCompletion(NandStatus.Ok, end);
        }

        if (data.Length != 0)
        {
            _store.Data(pageIndex).CopyTo(data);
        }

        if (spare.Length != 0)
        {
            _store.Spare(pageIndex).CopyTo(spare);
        }
        return state switch
        {
            PageState.Torn => new NandCompletion(NandStatus.Uncorrectable, end),
            PageState.TornSilent => new NandCompletion(NandStatus.Ok, end),
            _ => _bitErrors.Apply(address.Block, data, spare, end),
        };
    }

    /// <summary>
    /// Books the channel of <paramref name="die"/> for <paramref name="bytes"/> bytes, in the first
    /// gap at or after <paramref name="earliest"/> between transfers already booked (a transfer
    /// queued for later on one die does not hold up another die's transfer now), and returns when
    /// the transfer ends.
    /// </summary>
    private long Transfer(int die, long earliest, int bytes) =>
        _channels[Geometry.ChannelOf(die)].Book(earliest, Timing.TransferNanoseconds(bytes), _clock.NowNanoseconds);

    /// <summary>Forgets the operations of <paramref name="die"/> that have completed by now.</summary>
    private void Retire(int die) => _powerCuts.Retire(die, _clock.NowNanoseconds);

    private bool ProgramFails(PageAddress address)
    {
        if (((BlockFlags)_store.Flags[address.Block]).HasFlag(BlockFlags.FactoryBad))
        {
            return true;
        }

        bool injected = _injectedProgramFailures.Remove(address) | (_failingPrograms > 0 && _failingPrograms-- > 0);
        return injected | (_faults.ProgramFailProbability > 0 && _prng.Chance(_faults.ProgramFailProbability));
    }

    private bool EraseFails(int block)
    {
        bool injected = _injectedEraseFailures.Remove(block) | (_failingErases > 0 && _failingErases-- > 0);
        bool weak = _faults.WeakBlocks.TryGetValue(block, out int limit) && _store.EraseCounts[block] > limit;
        return injected | weak | (_faults.EraseFailProbability > 0 && _prng.Chance(_faults.EraseFailProbability));
    }

    /// <summary>
    /// Marks blocks bad as a factory does: a non-FFh byte at the start of the spare area of the
    /// block's first page. Block 0 is guaranteed good, as datasheets promise.
    /// </summary>
    private void MarkFactoryBadBlocks()
    {
        if (_faults.FactoryBadBlockFraction <= 0)
        {
            return;
        }

        for (int block = 1; block < Geometry.Blocks; block++)
        {
            if (_prng.Chance(_faults.FactoryBadBlockFraction))
            {
                int pageIndex = PageIndex(new PageAddress(block, 0));
                _store.Data(pageIndex).Clear();
                _store.Spare(pageIndex).Clear();
                _store.States[pageIndex] = (byte)PageState.Programmed;
                _store.Flags[block] = (byte)BlockFlags.FactoryBad;
            }
        }
    }

    private void RecomputeWritePointer(int block)
    {
        ReadOnlySpan<byte> states = BlockStates(block);
        int last = states.LastIndexOfAnyExcept((byte)PageState.Erased);
        _writePointer[block] = last + 1;
    }

    private Span<byte> BlockStates(int block) =>
        _store.States.Slice(block * Geometry.PagesPerBlock, Geometry.PagesPerBlock);

    private int PageIndex(PageAddress address) => (address.Block * Geometry.PagesPerBlock) + address.Page;

    private void CheckPowered()
    {
        if (!IsPowered)
        {
            throw new NandRuleViolationException(NandRule.Powered, "the array has no power (cut and not yet restored)");
        }
    }

    private void CheckAddress(PageAddress address)
    {
        if (!Geometry.Contains(address))
        {
            throw new NandRuleViolationException(
                NandRule.AddressInRange,
                $"{address} is outside the array of {Geometry.Blocks} blocks of {Geometry.PagesPerBlock} pages"
            );
        }
    }

    private void CheckBlock(int block)
    {
        if (!Geometry.Contains(block))
        {
            throw new NandRuleViolationException(
                NandRule.AddressInRange,
                $"block {block} is outside the array of {Geometry.Blocks} blocks"
            );
        }
    }
}

/// <summary>What a power cut made of an operation that had not completed.</summary>
public enum PowerCutOutcome
{
    /// <summary>Queued behind another operation; it never happened.</summary>
    NotStarted,

    /// <summary>A program that finished in time: the page holds its data.</summary>
    Programmed,

    /// <summary>A program cut before its cells moved: the page is still erased.</summary>
    LeftErased,

    /// <summary>A program cut halfway: the page reads uncorrectable, or wrong bits that pass ECC.</summary>
    Corrupted,

    /// <summary>An erase that finished in time.</summary>
    Erased,

    /// <summary>An erase cut before it began: the block holds what it held.</summary>
    Untouched,

    /// <summary>An erase cut halfway: every page of the block reads uncorrectable until it is erased again.</summary>
    Unreliable,
}

/// <summary>An operation in flight at a power cut and its outcome.</summary>
/// <param name="Kind">Read, program or erase.</param>
/// <param name="Address">The page (for an erase, page 0 of the block).</param>
/// <param name="Outcome">What the cut left.</param>
public readonly record struct TornOperation(NandOperationKind Kind, PageAddress Address, PowerCutOutcome Outcome);
