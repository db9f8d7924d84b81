using System.Buffers.Binary;
using System.Device.Spi;
using Controller.Common;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Spi;

/// <summary>
/// An emulated SPI NAND chip: a <see cref="SpiDevice"/> that speaks the chip's byte protocol
/// (docs/SPI-NAND.md) over an emulated NAND array (one die), which keeps the datasheet timing on the virtual
/// clock, ECC with injected bit errors, wear and power cuts. It has the registers of a real part:
/// protection (A0h, every block locked at power-up), configuration (B0h: ECC enable, BUF) and status
/// (C0h: BUSY until the operation's completion instant, WEL, E-FAIL, P-FAIL, the ECC field encoded
/// with the chip's own table); a cache buffer of one page and spare, which PROGRAM LOAD (02h) resets
/// to FFh and PROGRAM LOAD RANDOM DATA (84h) does not. Commands it does not know are ignored, as a
/// real chip ignores them. One call is one chip-select window.
/// </summary>
public sealed class EmulatedSpiNandChip : SpiDevice
{
    private readonly INandDevice _array;
    private readonly SpiNandChip _chip;
    private readonly IClock _clock;
    private readonly byte[] _cache;
    private readonly byte[] _eccEncoding;
    private byte _protection = 0x7C; // every block locked at power-up
    private byte _configuration = SpiNandDevice.EccEnable;
    private byte _status;
    private long _busyUntil;
    private readonly byte[]? _parameterPage;

    /// <summary>
    /// The chip <paramref name="chip"/> describes, over <paramref name="array"/>, timed by <paramref name="clock"/>.
    /// </summary>
    public EmulatedSpiNandChip(INandDevice array, SpiNandChip chip, IClock clock)
    {
        _array = array ?? throw new ArgumentNullException(nameof(array));
        _chip = chip ?? throw new ArgumentNullException(nameof(chip));
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _cache = new byte[chip.Geometry.PageBytes + chip.Geometry.SpareBytes];
        Array.Fill(_cache, (byte)0xFF);
        _eccEncoding = [.. Enumerable.Range(0, 3).Select(chip.EccStatus.Encode)];
        if (chip.HasParameterPage)
        {
            NandGeometry g = chip.Geometry;
            byte[] copy = new OnfiParameterPage(
                "EMULATED",
                chip.Name,
                chip.JedecId[0],
                g.PageBytes,
                g.SpareBytes,
                g.PagesPerBlock,
                g.Blocks,
                1,
                Math.Max(1, g.Blocks / 50),
                100_000
            ).Encode();
            _parameterPage = [.. copy, .. copy, .. copy];
        }
    }

    /// <summary>
    /// The chip a configuration describes over <paramref name="array"/>: its description's, answering
    /// READ ID with <c>emulator.spiJedecId</c> instead when that is set (a substituted or miswired part).
    /// </summary>
    public static EmulatedSpiNandChip FromConfig(ResolvedConfig config, INandDevice array, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        SpiNandChip description = SpiNandChip.FromConfig(config);
        byte[] answers = config.Get(EmulatorConfig.SpiJedecId).Span.ToArray();
        return new EmulatedSpiNandChip(
            array,
            answers.Length == 0 ? description : description with { JedecId = answers },
            clock
        );
    }

    /// <inheritdoc />
    public override SpiConnectionSettings ConnectionSettings { get; } = new(0, 0) { ClockFrequency = 104_000_000 };

    /// <summary>Power comes back after a cut: registers at their power-up values, every block locked.</summary>
    public void PowerOn()
    {
        _protection = 0x7C;
        _configuration = SpiNandDevice.EccEnable;
        _status = 0;
        _busyUntil = 0;
        Array.Fill(_cache, (byte)0xFF);
    }

    /// <inheritdoc />
    public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        readBuffer.Clear();
        Execute(writeBuffer, readBuffer);
    }

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer) => Execute(buffer, []);

    /// <inheritdoc />
    public override void WriteByte(byte value) => Execute([value], []);

    /// <inheritdoc />
    public override void Read(Span<byte> buffer) => buffer.Clear();

    /// <inheritdoc />
    public override byte ReadByte() => 0;

    private bool IsBusy => _clock.NowNanoseconds < _busyUntil;

    private void Execute(ReadOnlySpan<byte> frame, Span<byte> read)
    {
        if (frame.IsEmpty)
        {
            return;
        }

        byte opcode = frame[0];

        // While BUSY only GET FEATURE (and RESET) are answered, as a real part does.
        if (IsBusy && opcode is not (SpiNandDevice.GetFeature or SpiNandDevice.Reset))
        {
            return;
        }

        switch (opcode)
        {
            case SpiNandDevice.Reset:
                _status &= unchecked((byte)~SpiNandDevice.WriteEnableLatch);
                _busyUntil = Math.Max(_busyUntil, _clock.NowNanoseconds + 5_000);
                break;
            case SpiNandDevice.ReadId:
                int prefix = _chip.IdMethod == SpiNandIdMethod.Opcode ? 1 : 2;
                for (int i = prefix; i < read.Length; i++)
                {
                    int at = i - prefix;
                    read[i] = at < _chip.JedecId.Length ? _chip.JedecId[at] : (byte)0;
                }

                break;
            case SpiNandDevice.GetFeature when frame.Length >= 3 && read.Length >= 3:
                read[2] = frame[1] switch
                {
                    SpiNandDevice.ProtectionRegister => _protection,
                    SpiNandDevice.ConfigurationRegister => _configuration,
                    SpiNandDevice.StatusRegister => (byte)(_status | (IsBusy ? SpiNandDevice.Busy : 0)),
                    _ => 0,
                };
                break;
            case SpiNandDevice.SetFeature when frame.Length >= 3:
                if (frame[1] == SpiNandDevice.ProtectionRegister)
                {
                    _protection = frame[2];
                }
                else if (frame[1] == SpiNandDevice.ConfigurationRegister)
                {
                    _configuration = frame[2];
                }

                break;
            case SpiNandDevice.WriteEnable:
                _status |= SpiNandDevice.WriteEnableLatch;
                break;
            case SpiNandDevice.WriteDisable:
                _status &= unchecked((byte)~SpiNandDevice.WriteEnableLatch);
                break;
            case SpiNandDevice.PageRead when frame.Length >= 4:
                PageRead(Row(frame));
                break;
            case SpiNandDevice.ReadFromCache or SpiNandDevice.FastReadFromCache when frame.Length >= 4:
                // The cache buffer from the column on; past its end the chip shifts out FFh.
                int column = BinaryPrimitives.ReadUInt16BigEndian(frame[1..]) & 0x0FFF;
                Span<byte> shifted = read.Length > 4 ? read[4..] : [];
                ReadOnlySpan<byte> held = column < _cache.Length ? _cache.AsSpan(column) : [];
                int copied = Math.Min(held.Length, shifted.Length);
                held[..copied].CopyTo(shifted);
                shifted[copied..].Fill(0xFF);
                break;
            case SpiNandDevice.ProgramLoad or SpiNandDevice.ProgramLoadRandom when frame.Length >= 3:
                if (opcode == SpiNandDevice.ProgramLoad)
                {
                    Array.Fill(_cache, (byte)0xFF);
                }

                int start = BinaryPrimitives.ReadUInt16BigEndian(frame[1..]) & 0x0FFF;
                ReadOnlySpan<byte> data = frame[3..];
                data[..Math.Min(data.Length, Math.Max(0, _cache.Length - start))].CopyTo(_cache.AsSpan(start));
                break;
            case SpiNandDevice.ProgramExecute when frame.Length >= 4:
                ProgramExecute(Row(frame));
                break;
            case SpiNandDevice.BlockErase when frame.Length >= 4:
                Erase(Row(frame));
                break;
            default:
                break; // unknown commands are ignored
        }
    }

    private static int Row(ReadOnlySpan<byte> frame) => (frame[1] << 16) | (frame[2] << 8) | frame[3];

    private PageAddress Address(int row) => new(row / _chip.Geometry.PagesPerBlock, row % _chip.Geometry.PagesPerBlock);

    private bool InRange(int row) => row / _chip.Geometry.PagesPerBlock < _chip.Geometry.Blocks;

    private void PageRead(int row)
    {
        _status &= 0x0F; // the ECC field describes this read
        if ((_configuration & SpiNandDevice.OtpEnable) != 0)
        {
            // The OTP area: the parameter page at page 01h where the chip has one; the rest blank.
            Array.Fill(_cache, (byte)0xFF);
            if (row == 1 && _parameterPage is not null)
            {
                _parameterPage.CopyTo(_cache, 0);
            }

            _busyUntil = _clock.NowNanoseconds + 25_000;
            return;
        }

        if (!InRange(row))
        {
            return;
        }

        int pageBytes = _chip.Geometry.PageBytes;
        NandCompletion read = _array.ReadPage(Address(row), _cache.AsSpan(0, pageBytes), _cache.AsSpan(pageBytes));
        _busyUntil = read.CompletesAtNanoseconds;
        if ((_configuration & SpiNandDevice.EccEnable) != 0)
        {
            _status |= read.Status switch
            {
                NandStatus.Uncorrectable => _eccEncoding[2],
                NandStatus.Corrected => _eccEncoding[1],
                _ => _eccEncoding[0],
            };
        }
    }

    /// <summary>
    /// The checks a program or erase passes first: it clears its fail bit and the write-enable
    /// latch; without the latch or outside the array it does nothing; on a locked block it fails.
    /// </summary>
    private bool MayWrite(int row, byte failBit)
    {
        _status &= (byte)~failBit;
        bool enabled = (_status & SpiNandDevice.WriteEnableLatch) != 0;
        _status &= unchecked((byte)~SpiNandDevice.WriteEnableLatch);
        if (!enabled || !InRange(row))
        {
            return false;
        }

        if ((_configuration & SpiNandDevice.OtpEnable) != 0)
        {
            _status |= failBit; // the OTP area is not emulated: nothing is written to it, nor to the array
            return false;
        }

        if (_protection != 0)
        {
            _status |= failBit; // a locked block is not written
            return false;
        }

        return true;
    }

    private void ProgramExecute(int row)
    {
        if (!MayWrite(row, SpiNandDevice.ProgramFailed))
        {
            return;
        }

        int pageBytes = _chip.Geometry.PageBytes;
        NandCompletion program = _array.ProgramPage(
            Address(row),
            _cache.AsSpan(0, pageBytes),
            _cache.AsSpan(pageBytes)
        );
        _busyUntil = program.CompletesAtNanoseconds;
        if (!program.Succeeded)
        {
            _status |= SpiNandDevice.ProgramFailed;
        }
    }

    private void Erase(int row)
    {
        if (!MayWrite(row, SpiNandDevice.EraseFailed))
        {
            return;
        }

        NandCompletion erase = _array.EraseBlock(row / _chip.Geometry.PagesPerBlock);
        _busyUntil = erase.CompletesAtNanoseconds;
        if (!erase.Succeeded)
        {
            _status |= SpiNandDevice.EraseFailed;
        }
    }
}
