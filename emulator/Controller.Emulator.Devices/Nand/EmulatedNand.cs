using System.Diagnostics;
using System.Numerics;
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

    private static readonly long s_crashInProgram =
        long.TryParse(Environment.GetEnvironmentVariable("SSD_EMULATOR_CRASH_IN_PROGRAM"), System.Globalization.CultureInfo.InvariantCulture, out long n) ? n : -1;

    private readonly NandStore _store;
    private readonly IClock _clock;
    private IClock? _issueClock;
    private readonly Prng _prng;
    private NandFaultOptions _faults;
    private readonly InFlightQueue[] _dies;
    private readonly long[] _dieReadyAt;
    private readonly ChannelSchedule[] _channels;
    private readonly int[] _writePointer;
    private readonly int[] _pendingErases;
    private readonly uint[] _errorModelEraseCount;
    private readonly double[] _errorMean;
    private readonly double[] _errorZeroProbability;
    private readonly Stack<byte[]> _stateUndoPool = new();
    private readonly Stack<byte[]> _pageUndoPool = new();
    private readonly int _codewords;
    private readonly int _spareBytesPerCodeword;
    private readonly HashSet<PageAddress> _injectedProgramFailures = [];
    private readonly HashSet<int> _injectedEraseFailures = [];
    private int _failingPrograms;
    private int _failingErases;

    private EmulatedNand(NandStore store, NandTiming timing, EccModel ecc, int enduranceCycles, NandFaultOptions faults, IClock clock)
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
        _dies = new InFlightQueue[Geometry.Dies];
        for (int die = 0; die < _dies.Length; die++)
        {
            _dies[die] = new InFlightQueue();
        }

        _dieReadyAt = new long[Geometry.Dies];
        _channels = new ChannelSchedule[Geometry.Channels];
        for (int channel = 0; channel < _channels.Length; channel++)
        {
            _channels[channel] = new ChannelSchedule();
        }

        _writePointer = new int[Geometry.Blocks];
        _pendingErases = new int[Geometry.Blocks];
        _errorModelEraseCount = new uint[Geometry.Blocks];
        Array.Fill(_errorModelEraseCount, uint.MaxValue);
        _errorMean = new double[Geometry.Blocks];
        _errorZeroProbability = new double[Geometry.Blocks];
        if (Geometry.PageBytes % ecc.CodewordBytes != 0)
        {
            throw new ArgumentException($"an ECC codeword of {ecc.CodewordBytes} bytes does not divide a page of {Geometry.PageBytes}", nameof(ecc));
        }

        _codewords = Geometry.PageBytes / ecc.CodewordBytes;
        _spareBytesPerCodeword = Geometry.SpareBytes / _codewords;
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
    public NandStatistics Statistics { get; } = new();

    /// <summary>Creates an array in memory, fresh from the factory, as <paramref name="config"/> describes it.</summary>
    public static EmulatedNand InMemory(ResolvedConfig config, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new EmulatedNand(new MemoryNandStore(FirmwareConfig.Geometry(config)), FirmwareConfig.Timing(config), FirmwareConfig.Ecc(config), (int)config.Get(FirmwareConfig.EnduranceCycles), NandFaultOptions.FromConfig(config), clock);
    }

    /// <summary>
    /// Opens the image file at <paramref name="path"/>, or creates it fresh from the factory when it
    /// does not exist. A file that is not an image of this geometry is refused with a
    /// <see cref="NandImageException"/> and left as it was.
    /// </summary>
    public static EmulatedNand OpenImage(string path, ResolvedConfig config, IClock clock) => OpenImage(path, config, clock, mayCreate: true);

    /// <summary>
    /// Opens the existing image file at <paramref name="path"/>; a missing file is a
    /// <see cref="NandImageException"/>, for commands that only inspect an image.
    /// </summary>
    public static EmulatedNand OpenExistingImage(string path, ResolvedConfig config, IClock clock) => OpenImage(path, config, clock, mayCreate: false);

    private static EmulatedNand OpenImage(string path, ResolvedConfig config, IClock clock, bool mayCreate)
    {
        ArgumentNullException.ThrowIfNull(config);
        NandStore store = ImageNandStore.OpenOrCreate(path, FirmwareConfig.Geometry(config), mayCreate);
        try
        {
            return new EmulatedNand(store, FirmwareConfig.Timing(config), FirmwareConfig.Ecc(config), (int)config.Get(FirmwareConfig.EnduranceCycles), NandFaultOptions.FromConfig(config), clock);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Creates an array in memory from explicit parts (for tests and benchmarks).</summary>
    public static EmulatedNand InMemory(NandGeometry geometry, NandTiming timing, EccModel ecc, int enduranceCycles, NandFaultOptions faults, IClock clock) =>
        new(new MemoryNandStore(geometry), timing, ecc, enduranceCycles, faults, clock);

    /// <summary>How many blocks have memory behind them; an in-memory array is sparse. Zero for image files.</summary>
    public int AllocatedBlocks => _store is MemoryNandStore memory ? memory.AllocatedBlocks : 0;

    /// <summary>Times <paramref name="block"/> has been erased.</summary>
    public uint EraseCount(int block)
    {
        CheckBlock(block);
        return _store.EraseCounts[block];
    }

    /// <summary>The next program of <paramref name="address"/> fails with <see cref="NandStatus.ProgramFailed"/>.</summary>
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
        _faults = _faults with { RawBitErrorRate = rawBitErrorRate, ProgramFailProbability = programFailProbability, EraseFailProbability = eraseFailProbability };
        Array.Fill(_errorModelEraseCount, uint.MaxValue);
    }

    /// <summary>The next <paramref name="programs"/> page programs and <paramref name="erases"/> block erases fail, wherever they are.</summary>
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
            throw new NandRuleViolationException(NandRule.AddressInRange, $"die {die} is outside the array of {Geometry.Dies} dies");
        }

        Retire(die);
        long ready = _dieReadyAt[die];
        long issue = IssueClock.NowNanoseconds;
        InFlightQueue queue = _dies[die];
        int queued = queue.Count;
        while (queued > 0 && queue[queued - 1].EndNanoseconds > issue)
        {
            queued--;
        }

        return new NandDieStatus(ready > issue, ready, queue.Count - queued);
    }

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        CheckPowered();
        CheckAddress(address);
        if ((data.Length != 0 && data.Length != Geometry.PageBytes) || (spare.Length != 0 && spare.Length != Geometry.SpareBytes) || data.Length + spare.Length == 0)
        {
            throw new NandRuleViolationException(NandRule.BufferSize, $"read of {address}: buffers of {data.Length}+{spare.Length} bytes; a read takes a page of {Geometry.PageBytes} or none and a spare area of {Geometry.SpareBytes} or none");
        }

        // A read changes nothing a power cut could tear, so it only occupies its die and channel;
        // it is not kept in the die's queue of operations in flight.
        int die = Geometry.DieOf(address.Block);
        long start = Math.Max(IssueClock.NowNanoseconds, _dieReadyAt[die]);
        long end = Transfer(die, start + Timing.ReadNanoseconds, data.Length + spare.Length);
        _dieReadyAt[die] = end;
        Statistics.PagesRead++;
        return ReadContents(address, data, spare, end);
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        CheckPowered();
        CheckAddress(address);
        if (data.Length != Geometry.PageBytes || spare.Length != Geometry.SpareBytes)
        {
            throw new NandRuleViolationException(NandRule.BufferSize, $"program of {address}: buffers of {data.Length}+{spare.Length} bytes; a program takes a whole page of {Geometry.PageBytes} and a spare area of {Geometry.SpareBytes}");
        }

        int pageIndex = PageIndex(address);
        if ((PageState)_store.States[pageIndex] != PageState.Erased)
        {
            throw new NandRuleViolationException(NandRule.ProgramErasedPageOnly, $"program of {address}: the page is {(PageState)_store.States[pageIndex]}, not erased; NAND has no partial reprogram");
        }

        if (address.Page < _writePointer[address.Block])
        {
            throw new NandRuleViolationException(NandRule.ProgramAscendingOrder, $"program of {address}: page {_writePointer[address.Block] - 1} of the block is already programmed; pages are programmed in ascending order");
        }

        int die = Geometry.DieOf(address.Block);
        Retire(die);
        long start = Math.Max(IssueClock.NowNanoseconds, _dieReadyAt[die]);
        long arrayStart = Transfer(die, start, data.Length + spare.Length);
        long end = arrayStart + Timing.ProgramNanoseconds;
        _dieReadyAt[die] = end;
        var operation = new InFlightOperation { Kind = NandOperationKind.Program, Block = address.Block, Page = address.Page, ArrayStartNanoseconds = arrayStart, EndNanoseconds = end };
        Span<byte> storedData = _store.Data(pageIndex);
        Span<byte> storedSpare = _store.Spare(pageIndex);
        if (_pendingErases[address.Block] > 0)
        {
            operation.Undo = Rent(_pageUndoPool, storedData.Length + storedSpare.Length);
            storedData.CopyTo(operation.Undo);
            storedSpare.CopyTo(operation.Undo.AsSpan(storedData.Length));
        }

        _dies[die].Enqueue(operation);
        _writePointer[address.Block] = address.Page + 1;
        Statistics.PagesProgrammed++;
        bool fails = ProgramFails(address);
        data.CopyTo(storedData);
        CrashIfAsked();
        spare.CopyTo(storedSpare);
        if (fails)
        {
            Statistics.ProgramFailures++;
            PartiallyProgram(storedData);
        }

        // The state byte is written last: a process killed before it leaves the page erased.
        Volatile.Write(ref _store.States[pageIndex], (byte)(fails ? PageState.Torn : PageState.Programmed));
        return new NandCompletion(fails ? NandStatus.ProgramFailed : NandStatus.Ok, end);
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
        Span<byte> states = BlockStates(block);
        byte[] undo = Rent(_stateUndoPool, states.Length);
        states.CopyTo(undo);
        _dies[die].Enqueue(new InFlightOperation { Kind = NandOperationKind.Erase, Block = block, Page = 0, ArrayStartNanoseconds = start, EndNanoseconds = end, Undo = undo, EraseCountBefore = _store.EraseCounts[block] });
        _pendingErases[block]++;
        Statistics.BlocksErased++;
        if (((BlockFlags)_store.Flags[block]).HasFlag(BlockFlags.FactoryBad))
        {
            // A factory-bad block keeps its marker: firmware that erases one is told, and loses nothing.
            Statistics.EraseFailures++;
            return new NandCompletion(NandStatus.EraseFailed, end);
        }

        _store.EraseCounts[block]++;
        if (EraseFails(block))
        {
            Statistics.EraseFailures++;
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
        var torn = new List<TornOperation>();
        for (int die = 0; die < _dies.Length; die++)
        {
            Retire(die);
            InFlightQueue queue = _dies[die];
            for (int i = queue.Count - 1; i >= 0; i--)
            {
                ref InFlightOperation operation = ref queue[i];
                PowerCutOutcome outcome = operation.ArrayStartNanoseconds > now ? PowerCutOutcome.NotStarted : DrawOutcome(operation.Kind);
                ApplyOutcome(ref operation, outcome);
                torn.Add(new TornOperation(operation.Kind, new PageAddress(operation.Block, operation.Page), outcome));
                ReturnUndo(ref operation);
            }

            queue.Clear();
            _dieReadyAt[die] = now;
        }

        foreach (ChannelSchedule channel in _channels)
        {
            channel.Clear();
        }

        Array.Clear(_pendingErases);
        IsPowered = false;
        Statistics.PowerCuts++;
        torn.Reverse();
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
        switch (state)
        {
            case PageState.Torn:
                Statistics.UncorrectableReads++;
                return new NandCompletion(NandStatus.Uncorrectable, end);
            case PageState.TornSilent:
                return new NandCompletion(NandStatus.Ok, end);
            default:
                return ApplyBitErrors(address.Block, data, spare, end);
        }
    }

    /// <summary>
    /// The test hook for image crash consistency: with <c>SSD_EMULATOR_CRASH_IN_PROGRAM=N</c> in
    /// the environment, the process dies (as a SIGKILL would kill it) in the middle of its Nth
    /// page program, after the page data is stored and before its spare area and state are.
    /// </summary>
    private void CrashIfAsked()
    {
        if (Statistics.PagesProgrammed == s_crashInProgram)
        {
            Environment.FailFast($"SSD_EMULATOR_CRASH_IN_PROGRAM={s_crashInProgram}: dying in the middle of a page program");
        }
    }

    /// <summary>
    /// Draws the raw bit errors of one read. The count over the whole page is Poisson with the
    /// block's wear-dependent error rate; each error lands on a uniformly drawn bit, which is the
    /// same as independent Poisson counts per codeword. ECC corrects a codeword with at most
    /// <see cref="EccModel.CorrectableBits"/> errors; beyond that the read is uncorrectable and the
    /// caller gets the wrong bits.
    /// </summary>
    private NandCompletion ApplyBitErrors(int block, Span<byte> data, Span<byte> spare, long end)
    {
        if (_faults.RawBitErrorRate <= 0)
        {
            return new NandCompletion(NandStatus.Ok, end);
        }

        // Most reads of a healthy block have no bit error at all: one draw against the cached
        // probability of zero errors decides that without computing the Poisson tail.
        (double mean, double zeroErrors) = ErrorModelOf(block);
        double u = _prng.NextDouble();
        if (u < zeroErrors)
        {
            return new NandCompletion(NandStatus.Ok, end);
        }

        long pageBits = 8L * (Geometry.PageBytes + Geometry.SpareBytes);
        // Past the zero-error case, the same uniform draw continues the inversion (the count is
        // then at least 1); a worn-out block's large mean takes the approximate draw instead.
        int errors = Math.Max(1, mean > 64 ? _prng.NextPoisson(mean) : Prng.PoissonQuantile(mean, u));

        Span<int> perCodeword = _codewords <= 256 ? stackalloc int[_codewords] : new int[_codewords];
        Span<long> positions = errors <= 256 ? stackalloc long[errors] : new long[errors];
        for (int i = 0; i < errors; i++)
        {
            long bit = (long)_prng.NextUInt64((ulong)pageBits);
            positions[i] = bit;
            perCodeword[CodewordOf(bit / 8)]++;
        }

        int worst = 0;
        foreach (int count in perCodeword)
        {
            worst = Math.Max(worst, count);
        }

        if (worst <= Ecc.CorrectableBits)
        {
            Statistics.CorrectedReads++;
            return new NandCompletion(NandStatus.Corrected, end, worst);
        }

        foreach (long bit in positions)
        {
            FlipBit(bit, data, spare);
        }

        Statistics.UncorrectableReads++;
        return new NandCompletion(NandStatus.Uncorrectable, end, worst);
    }

    /// <summary>
    /// The mean raw bit errors of one read of a page of <paramref name="block"/>, and the
    /// probability that a read has none, cached per block until its erase count changes.
    /// </summary>
    private (double Mean, double ZeroErrors) ErrorModelOf(int block)
    {
        uint eraseCount = _store.EraseCounts[block];
        if (_errorModelEraseCount[block] != eraseCount)
        {
            double rate = _faults.RawBitErrorRate * Math.Pow(_faults.WearBitErrorGrowth, (double)eraseCount / EnduranceCycles);
            double mean = Math.Min(rate, 0.5) * 8.0 * (Geometry.PageBytes + Geometry.SpareBytes);
            _errorMean[block] = mean;
            _errorZeroProbability[block] = Math.Exp(-mean);
            _errorModelEraseCount[block] = eraseCount;
        }

        return (_errorMean[block], _errorZeroProbability[block]);
    }

    private int CodewordOf(long byteInPage) => byteInPage < Geometry.PageBytes
        ? (int)(byteInPage / Ecc.CodewordBytes)
        : _spareBytesPerCodeword == 0 ? _codewords - 1 : Math.Min(_codewords - 1, (int)((byteInPage - Geometry.PageBytes) / _spareBytesPerCodeword));

    private void FlipBit(long bit, Span<byte> data, Span<byte> spare)
    {
        int byteIndex = (int)(bit / 8);
        byte mask = (byte)(1 << (int)(bit % 8));
        if (byteIndex < Geometry.PageBytes)
        {
            if (data.Length != 0)
            {
                data[byteIndex] ^= mask;
            }
        }
        else if (spare.Length != 0)
        {
            spare[byteIndex - Geometry.PageBytes] ^= mask;
        }
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
    private void Retire(int die)
    {
        long now = _clock.NowNanoseconds;
        InFlightQueue queue = _dies[die];
        while (queue.Count > 0 && queue.Oldest.EndNanoseconds <= now)
        {
            ref InFlightOperation done = ref queue.Oldest;
            if (done.Kind == NandOperationKind.Erase)
            {
                _pendingErases[done.Block]--;
            }

            ReturnUndo(ref done);
            queue.DequeueOldest();
        }
    }

    private PowerCutOutcome DrawOutcome(NandOperationKind kind) => kind switch
    {
        NandOperationKind.Program => _prng.NextInt(3) switch
        {
            0 => PowerCutOutcome.Programmed,
            1 => PowerCutOutcome.LeftErased,
            _ => PowerCutOutcome.Corrupted,
        },
        NandOperationKind.Erase => _prng.NextInt(3) switch
        {
            0 => PowerCutOutcome.Erased,
            1 => PowerCutOutcome.Untouched,
            _ => PowerCutOutcome.Unreliable,
        },
        _ => throw new UnreachableException($"unknown operation kind {kind}"),
    };

    private void ApplyOutcome(ref InFlightOperation operation, PowerCutOutcome outcome)
    {
        switch (operation.Kind, outcome)
        {
            case (NandOperationKind.Program, PowerCutOutcome.Programmed):
            case (NandOperationKind.Erase, PowerCutOutcome.Erased):
                break;
            case (NandOperationKind.Program, PowerCutOutcome.Corrupted):
                int pageIndex = PageIndex(new PageAddress(operation.Block, operation.Page));
                PartiallyProgram(_store.Data(pageIndex));
                _store.States[pageIndex] = (byte)(_prng.NextInt(2) == 0 ? PageState.Torn : PageState.TornSilent);
                break;
            case (NandOperationKind.Program, _):
                UndoProgram(ref operation);
                break;
            case (NandOperationKind.Erase, _) when ((BlockFlags)_store.Flags[operation.Block]).HasFlag(BlockFlags.FactoryBad):
                // The erase of a factory-bad block changed nothing; a cut cannot take its marker.
                break;
            case (NandOperationKind.Erase, PowerCutOutcome.Unreliable):
                BlockStates(operation.Block).Fill((byte)PageState.Torn);
                break;
            case (NandOperationKind.Erase, _):
                operation.Undo.AsSpan(0, Geometry.PagesPerBlock).CopyTo(BlockStates(operation.Block));
                _store.EraseCounts[operation.Block] = operation.EraseCountBefore;
                break;
            default:
                throw new UnreachableException($"outcome {outcome} for a {operation.Kind}");
        }

        RecomputeWritePointer(operation.Block);
    }

    private void UndoProgram(ref InFlightOperation operation)
    {
        int pageIndex = PageIndex(new PageAddress(operation.Block, operation.Page));
        _store.States[pageIndex] = (byte)PageState.Erased;
        if (operation.Undo is not null)
        {
            Span<byte> data = _store.Data(pageIndex);
            operation.Undo.AsSpan(0, data.Length).CopyTo(data);
            operation.Undo.AsSpan(data.Length, Geometry.SpareBytes).CopyTo(_store.Spare(pageIndex));
        }
    }

    /// <summary>
    /// An interrupted or failed program: cells move from 1 to 0 as they program, so some bits that
    /// should have become 0 are still 1. At least one bit ends up different from the data asked for.
    /// </summary>
    private void PartiallyProgram(Span<byte> stored)
    {
        int flips = 1 + _prng.NextInt(Math.Max(1, stored.Length / 16));
        for (int i = 0; i < flips; i++)
        {
            stored[_prng.NextInt(stored.Length)] |= (byte)(1 << _prng.NextInt(8));
        }

        // Setting bits only ever adds 1s, so the page differs from the data as soon as one of them
        // landed on a 0. Make sure one did: raise a 0 bit of some byte that still has one.
        int start = _prng.NextInt(stored.Length);
        int index = stored[start..].IndexOfAnyExcept((byte)0xFF);
        index = index >= 0 ? start + index : stored[..start].IndexOfAnyExcept((byte)0xFF);
        if (index >= 0)
        {
            stored[index] |= (byte)(1 << BitOperations.TrailingZeroCount(~stored[index] & 0xFF));
        }
        else
        {
            // Data of all 1s cannot gain a 1: an over-programmed cell loses one instead.
            stored[start] = 0xFE;
        }
    }

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

    private static byte[] Rent(Stack<byte[]> pool, int length) => pool.TryPop(out byte[]? buffer) ? buffer : new byte[length];

    private void ReturnUndo(ref InFlightOperation operation)
    {
        if (operation.Undo is null)
        {
            return;
        }

        (operation.Kind == NandOperationKind.Erase ? _stateUndoPool : _pageUndoPool).Push(operation.Undo);
        operation.Undo = null;
    }

    private Span<byte> BlockStates(int block) => _store.States.Slice(block * Geometry.PagesPerBlock, Geometry.PagesPerBlock);

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
            throw new NandRuleViolationException(NandRule.AddressInRange, $"{address} is outside the array of {Geometry.Blocks} blocks of {Geometry.PagesPerBlock} pages");
        }
    }

    private void CheckBlock(int block)
    {
        if (!Geometry.Contains(block))
        {
            throw new NandRuleViolationException(NandRule.AddressInRange, $"block {block} is outside the array of {Geometry.Blocks} blocks");
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

/// <summary>Counts of NAND activity, for reports and write-amplification figures.</summary>
public sealed class NandStatistics
{
    /// <summary>Page reads issued (spare-only reads included).</summary>
    public long PagesRead { get; internal set; }

    /// <summary>Page programs issued.</summary>
    public long PagesProgrammed { get; internal set; }

    /// <summary>Block erases issued.</summary>
    public long BlocksErased { get; internal set; }

    /// <summary>Reads whose bit errors ECC corrected.</summary>
    public long CorrectedReads { get; internal set; }

    /// <summary>Reads ECC could not correct.</summary>
    public long UncorrectableReads { get; internal set; }

    /// <summary>Programs that failed.</summary>
    public long ProgramFailures { get; internal set; }

    /// <summary>Erases that failed.</summary>
    public long EraseFailures { get; internal set; }

    /// <summary>Power cuts suffered.</summary>
    public long PowerCuts { get; internal set; }
}
