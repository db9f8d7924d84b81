using System.Buffers.Binary;
using System.Device.Spi;
using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Firmware.Flash;

/// <summary>A SPI NAND chip did not answer as its description says, or stayed busy past the timeout.</summary>
public sealed class SpiNandException(string message) : Exception(message);

/// <summary>
/// The SPI NAND driver: the firmware's NAND device over a <see cref="SpiDevice"/>, following the
/// Linux SPI-NAND core's sequences (docs/SPI-NAND.md). Every operation completes before the call
/// returns (the chip has one die and the driver polls it), so completions are "now". One transfer
/// is one chip-select window: an opcode and its data go in one buffer. Command frames live on the
/// stack; the page frame is allocated once, so an operation allocates nothing.
/// </summary>
public sealed class SpiNandDevice : INandDevice
{
    /// <summary>Opcodes (docs/SPI-NAND.md section 1).</summary>
    public const byte Reset = 0xFF,
        ReadId = 0x9F,
        GetFeature = 0x0F,
        SetFeature = 0x1F,
        WriteEnable = 0x06,
        WriteDisable = 0x04,
        PageRead = 0x13,
        ReadFromCache = 0x03,
        FastReadFromCache = 0x0B,
        ProgramLoad = 0x02,
        ProgramLoadRandom = 0x84,
        ProgramExecute = 0x10,
        BlockErase = 0xD8;

    /// <summary>Feature registers.</summary>
    public const byte ProtectionRegister = 0xA0,
        ConfigurationRegister = 0xB0,
        StatusRegister = 0xC0;

    /// <summary>Bits of the status and configuration registers.</summary>
    public const byte Busy = 1 << 0,
        WriteEnableLatch = 1 << 1,
        EraseFailed = 1 << 2,
        ProgramFailed = 1 << 3,
        EccEnable = 1 << 4,
        BufferRead = 1 << 3,
        OtpEnable = 1 << 6;

    private const long PollNanoseconds = 5_000;
    private const long TimeoutNanoseconds = 400_000_000;

    private readonly SpiDevice _spi;
    private readonly SpiNandChip _chip;
    private readonly IClock _clock;
    private readonly byte[] _frameOut;
    private readonly byte[] _frameIn;

    /// <summary>
    /// A driver for <paramref name="chip"/> on <paramref name="spi"/>, timed by <paramref name="clock"/>; call
    /// <see cref="Initialize"/> first.
    /// </summary>
    public SpiNandDevice(SpiDevice spi, SpiNandChip chip, IClock clock)
    {
        _spi = spi ?? throw new ArgumentNullException(nameof(spi));
        _chip = chip ?? throw new ArgumentNullException(nameof(chip));
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        int frame = 4 + chip.Geometry.PageBytes + chip.Geometry.SpareBytes;
        _frameOut = new byte[frame];
        _frameIn = new byte[frame];
    }

    /// <inheritdoc />
    public NandGeometry Geometry => _chip.Geometry;

    /// <summary>
    /// Resets the chip, checks its ID against the description, unlocks every block (A0h = 00h),
    /// and sets the configuration: ECC on, OTP off, buffer-read mode where the chip has it.
    /// </summary>
    public void Initialize()
    {
        ResetChip();
        Span<byte> id = stackalloc byte[_chip.JedecId.Length];
        ReadJedecId(id);
        if (!id.SequenceEqual(_chip.JedecId))
        {
            throw new SpiNandException(
                $"the chip answers READ ID with {Convert.ToHexString(id)}, not {Convert.ToHexString(_chip.JedecId)} of the {_chip.Name} its description names"
            );
        }

        SetFeatureRegister(ProtectionRegister, 0x00);
        byte config = GetFeatureRegister(ConfigurationRegister);
        config = (byte)((config | EccEnable) & ~OtpEnable);
        if (_chip.BufferReadBit)
        {
            config |= BufferRead;
        }

        SetFeatureRegister(ConfigurationRegister, config);
    }

    /// <summary>
    /// RESET (FFh), waiting for the chip to be ready: the first thing said to a chip, before its ID is trusted.
    /// </summary>
    public void ResetChip()
    {
        Command(Reset);
        WaitReady("reset");
    }

    /// <summary>
    /// Reads the chip's ONFI parameter page, its three copies (768 bytes) into
    /// <paramref name="copies"/>: OTP_EN (B0h bit 6) set, PAGE READ of page 01h, READ FROM CACHE,
    /// then the configuration as it was. Only for a chip that has one (<see cref="SpiNandChip.HasParameterPage"/>).
    /// </summary>
    public void ReadParameterPage(Span<byte> copies)
    {
        byte config = GetFeatureRegister(ConfigurationRegister);
        SetFeatureRegister(ConfigurationRegister, (byte)(config | OtpEnable));
        try
        {
            RowCommand(PageRead, new PageAddress(0, 1));
            WaitReady("parameter page read");
            Span<byte> output = _frameOut.AsSpan(0, 4 + copies.Length);
            Span<byte> input = _frameIn.AsSpan(0, 4 + copies.Length);
            output.Clear();
            output[0] = ReadFromCache;
            _spi.TransferFullDuplex(output, input);
            input.Slice(4, copies.Length).CopyTo(copies);
        }
        finally
        {
            SetFeatureRegister(ConfigurationRegister, config);
        }
    }

    /// <summary>Reads the ID bytes after READ ID and its address or dummy byte.</summary>
    public void ReadJedecId(Span<byte> id)
    {
        int prefix = _chip.IdMethod == SpiNandIdMethod.Opcode ? 1 : 2;
        Span<byte> output = stackalloc byte[prefix + id.Length];
        Span<byte> input = stackalloc byte[prefix + id.Length];
        output.Clear();
        output[0] = ReadId;
        _spi.TransferFullDuplex(output, input);
        input[prefix..].CopyTo(id);
    }

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        CheckBuffers(data.Length, spare.Length);
        CheckAddress(address);
        RowCommand(PageRead, address);
        byte status = WaitReady("page read");
        (NandStatus outcome, int corrected) = _chip.EccStatus.Decode(status);

        // Page and spare in one transfer: from column 0 (or the spare's column when only it is wanted).
        int column = data.IsEmpty ? Geometry.PageBytes : 0;
        int length = data.Length + spare.Length;
        Span<byte> output = _frameOut.AsSpan(0, 4 + length);
        Span<byte> input = _frameIn.AsSpan(0, 4 + length);
        output.Clear();
        output[0] = ReadFromCache;
        BinaryPrimitives.WriteUInt16BigEndian(output[1..], (ushort)column);
        _spi.TransferFullDuplex(output, input);
        input.Slice(4, data.Length).CopyTo(data);
        input.Slice(4 + data.Length, spare.Length).CopyTo(spare);
        return new NandCompletion(outcome, _clock.NowNanoseconds, corrected);
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        if (data.Length != Geometry.PageBytes || spare.Length != Geometry.SpareBytes)
        {
            throw new NandRuleViolationException(
                NandRule.BufferSize,
                $"program of {address}: {data.Length}+{spare.Length} bytes; a program takes a page of {Geometry.PageBytes} and a spare area of {Geometry.SpareBytes}"
            );
        }

        CheckAddress(address);
        Command(WriteEnable);

        // PROGRAM LOAD (02h) fills the cache from column 0 (and sets the rest to FFh): page and spare in one transfer.
        Span<byte> output = _frameOut.AsSpan(0, 3 + data.Length + spare.Length);
        output[0] = ProgramLoad;
        BinaryPrimitives.WriteUInt16BigEndian(output[1..], 0);
        data.CopyTo(output[3..]);
        spare.CopyTo(output[(3 + data.Length)..]);
        _spi.Write(output);
        RowCommand(ProgramExecute, address);
        byte status = WaitReady("program");
        return new NandCompletion(
            (status & ProgramFailed) != 0 ? NandStatus.ProgramFailed : NandStatus.Ok,
            _clock.NowNanoseconds
        );
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        CheckAddress(new PageAddress(block, 0));
        Command(WriteEnable);
        RowCommand(BlockErase, new PageAddress(block, 0));
        byte status = WaitReady("block erase");
        return new NandCompletion(
            (status & EraseFailed) != 0 ? NandStatus.EraseFailed : NandStatus.Ok,
            _clock.NowNanoseconds
        );
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die) => new(false, _clock.NowNanoseconds, 0);

    /// <summary>
    /// True when the factory marked <paramref name="block"/> bad: spare bytes 0 and 1 of its page 0
    /// are not both FFh (as the Linux core checks them).
    /// </summary>
    public bool IsFactoryBad(int block)
    {
        Span<byte> spare = stackalloc byte[Geometry.SpareBytes];
        ReadPage(new PageAddress(block, 0), [], spare);
        return IsBadBlockMarker(spare);
    }

    /// <summary>
    /// True when the spare area of a block's page 0 carries the factory's bad-block marker (bytes 0 and 1 not both
    /// FFh).
    /// </summary>
    public static bool IsBadBlockMarker(ReadOnlySpan<byte> spare) => spare[0] != 0xFF || spare[1] != 0xFF;

    private void Command(byte opcode)
    {
        ReadOnlySpan<byte> frame = [opcode];
        _spi.Write(frame);
    }

    /// <summary>
    /// An opcode with a 3-byte row address (a dummy byte and the 16-bit page address on 1 Gbit parts).
    /// </summary>
    private void RowCommand(byte opcode, PageAddress address)
    {
        int row = (address.Block * Geometry.PagesPerBlock) + address.Page;
        ReadOnlySpan<byte> frame = [opcode, (byte)(row >> 16), (byte)(row >> 8), (byte)row];
        _spi.Write(frame);
    }

    private byte GetFeatureRegister(byte register)
    {
        ReadOnlySpan<byte> output = [GetFeature, register, 0];
        Span<byte> input = stackalloc byte[3];
        _spi.TransferFullDuplex(output, input);
        return input[2];
    }

    private void SetFeatureRegister(byte register, byte value)
    {
        ReadOnlySpan<byte> frame = [SetFeature, register, value];
        _spi.Write(frame);
    }

    /// <summary>
    /// Polls the status register until BUSY clears, through the injected clock; returns the last status.
    /// </summary>
    private byte WaitReady(string what)
    {
        long deadline = _clock.NowNanoseconds + TimeoutNanoseconds;
        while (true)
        {
            byte status = GetFeatureRegister(StatusRegister);
            if ((status & Busy) == 0)
            {
                return status;
            }

            if (_clock.NowNanoseconds >= deadline)
            {
                throw new SpiNandException(
                    $"the {_chip.Name} stayed busy for {TimeoutNanoseconds / 1_000_000} ms waiting for a {what} to finish"
                );
            }

            _clock.WaitUntil(_clock.NowNanoseconds + PollNanoseconds);
        }
    }

    private void CheckBuffers(int data, int spare)
    {
        if (
            (data != 0 && data != Geometry.PageBytes)
            || (spare != 0 && spare != Geometry.SpareBytes)
            || data + spare == 0
        )
        {
            throw new NandRuleViolationException(
                NandRule.BufferSize,
                $"a read takes a page of {Geometry.PageBytes} or none and a spare area of {Geometry.SpareBytes} or none, not {data}+{spare}"
            );
        }
    }

    private void CheckAddress(PageAddress address)
    {
        if ((uint)address.Block >= (uint)Geometry.Blocks || (uint)address.Page >= (uint)Geometry.PagesPerBlock)
        {
            throw new NandRuleViolationException(
                NandRule.AddressInRange,
                $"{address} is outside the {Geometry.Blocks} blocks of {Geometry.PagesPerBlock} pages"
            );
        }
    }
}
