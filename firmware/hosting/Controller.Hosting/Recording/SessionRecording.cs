using System.Text;
using Controller.Firmware.Host;
using ZstdSharp;

namespace Controller.Hosting.Recording;

/// <summary>
/// A session recording read back (<see cref="SessionRecorder"/> wrote it): its header, then its
/// records in order. A file cut short (the process was killed) yields every complete record and
/// then sets <see cref="Truncated"/>.
/// </summary>
public sealed class SessionRecording : IDisposable
{
    private readonly FileStream _file;
    private readonly DecompressionStream _zstd;
    private readonly BinaryReader _reader;
    private SessionRecord? _next;
    private bool _ended;
    private long _read;

    private SessionRecording(
        FileStream file,
        DecompressionStream zstd,
        BinaryReader reader,
        RecordedData data,
        RecordedClock clock,
        RecordedNand nand,
        bool jumpsToEvents,
        string configJson,
        string device
    )
    {
        Nand = nand;
        JumpsToEvents = jumpsToEvents;
        _file = file;
        _zstd = zstd;
        _reader = reader;
        Data = data;
        Clock = clock;
        ConfigJson = configJson;
        Device = device;
    }

    /// <summary>How writes' data was kept.</summary>
    public RecordedData Data { get; }

    /// <summary>How the clock was kept.</summary>
    public RecordedClock Clock { get; }

    /// <summary>Who decides NAND outcomes in a replay.</summary>
    public RecordedNand Nand { get; }

    /// <summary>The session's device jumped its virtual clock to each event (<c>timing.mode=none</c>).</summary>
    public bool JumpsToEvents { get; }

    /// <summary>The configuration the session ran with, as a profile file's JSON.</summary>
    public string ConfigJson { get; }

    /// <summary>The device it ran on, as the server described it.</summary>
    public string Device { get; }

    /// <summary>True once reading found the file cut short inside a record (after the complete ones).</summary>
    public bool Truncated { get; private set; }

    /// <summary>Opens the recording at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">It is not a session recording; the message says why.</exception>
    public static SessionRecording Open(string path)
    {
        FileStream file = File.OpenRead(path);
        var zstd = new DecompressionStream(file, leaveOpen: true);
        var reader = new BinaryReader(zstd, Encoding.UTF8, leaveOpen: true);
        try
        {
            string magic = reader.ReadString();
            if (magic != SessionRecorder.Magic)
            {
                throw new InvalidDataException(
                    $"'{path}' is not a session recording (it starts '{magic}', not '{SessionRecorder.Magic}')"
                );
            }

            var data = (RecordedData)reader.ReadByte();
            var clock = (RecordedClock)reader.ReadByte();
            var nand = (RecordedNand)reader.ReadByte();
            bool jumps = reader.ReadBoolean();
            string config = reader.ReadString();
            string device = reader.ReadString();
            return new SessionRecording(file, zstd, reader, data, clock, nand, jumps, config, device);
        }
        catch (Exception e) when (e is EndOfStreamException or ZstdException or IOException)
        {
            reader.Dispose();
            zstd.Dispose();
            file.Dispose();
            throw new InvalidDataException($"'{path}' is not a session recording ({e.Message})", e);
        }
        catch
        {
            reader.Dispose();
            zstd.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>The records, in order, up to the end or the last complete one.</summary>
    public IEnumerable<SessionRecord> Records()
    {
        while (Take() is { } record)
        {
            yield return record;
        }
    }

    /// <summary>The next record without taking it, or null at the end.</summary>
    public SessionRecord? Peek()
    {
        if (_next is null && !_ended)
        {
            _next = ReadNext();
            _ended = _next is null;
        }

        return _next;
    }

    /// <summary>Takes the next record, or null at the end.</summary>
    public SessionRecord? Take()
    {
        SessionRecord? record = Peek();
        _next = null;
        return record;
    }

    private SessionRecord? ReadNext()
    {
        try
        {
            int kind = _reader.BaseStream.ReadByte();
            return kind < 0 ? null : Read((SessionRecordKind)kind);
        }
        catch (Exception e) when (e is EndOfStreamException or ZstdException or IOException)
        {
            Truncated = true;
            return null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _reader.Dispose();
        _zstd.Dispose();
        _file.Dispose();
    }

    private Firmware.Flash.PageAddress ReadAddress() => new(_reader.Read7BitEncodedInt(), _reader.Read7BitEncodedInt());

    private Firmware.Flash.NandCompletion ReadCompletion() =>
        new(
            (Firmware.Flash.NandStatus)_reader.ReadByte(),
            _reader.Read7BitEncodedInt64(),
            _reader.Read7BitEncodedInt()
        );

    private byte[] ReadBytes()
    {
        int length = _reader.Read7BitEncodedInt();
        byte[] bytes = _reader.ReadBytes(length);
        return bytes.Length == length ? bytes : throw new EndOfStreamException("a page's data is cut short");
    }

    private SessionRecord Read(SessionRecordKind kind)
    {
        switch (kind)
        {
            case SessionRecordKind.Clock:
                return new SessionRecord(kind) { Nanoseconds = _reader.Read7BitEncodedInt64() };
            case SessionRecordKind.Step:
                return new SessionRecord(kind) { Background = _reader.ReadBoolean() };
            case SessionRecordKind.PowerCut or SessionRecordKind.Checkpoint or SessionRecordKind.Shutdown:
                return new SessionRecord(kind);
            case SessionRecordKind.Faults:
                return new SessionRecord(kind) { Text = _reader.ReadString() };
            case SessionRecordKind.End:
                return new SessionRecord(kind) { Hash = _reader.ReadUInt64() };
            case SessionRecordKind.NandRead:
                var read = new SessionRecord(kind) { Page = ReadAddress(), Completion = ReadCompletion() };
                return _reader.ReadBoolean() ? read : read with { Data = ReadBytes(), Spare = ReadBytes() };
            case SessionRecordKind.NandProgram or SessionRecordKind.NandErase:
                return new SessionRecord(kind) { Page = ReadAddress(), Completion = ReadCompletion() };
            case SessionRecordKind.NandDie:
                int die = _reader.Read7BitEncodedInt();
                return new SessionRecord(kind)
                {
                    Page = new Firmware.Flash.PageAddress(die, 0),
                    Die = new Firmware.Flash.NandDieStatus(
                        _reader.ReadBoolean(),
                        _reader.Read7BitEncodedInt64(),
                        _reader.Read7BitEncodedInt()
                    ),
                };
            case SessionRecordKind.ClockRead:
                long unchanged = _reader.Read7BitEncodedInt64();
                _read += _reader.Read7BitEncodedInt64();
                return new SessionRecord(kind) { Unchanged = unchanged, Nanoseconds = _read };
            case SessionRecordKind.Command:
                long id = _reader.Read7BitEncodedInt64();
                int connection = _reader.Read7BitEncodedInt();
                var opcode = (HostOpcode)_reader.ReadByte();
                var flags = (HostCommandOptions)_reader.ReadByte();
                long offset = _reader.Read7BitEncodedInt64();
                long length = _reader.Read7BitEncodedInt64();
                byte[]? data = null;
                uint digest = 0;
                if (opcode == HostOpcode.Write)
                {
                    if (Data == RecordedData.Full)
                    {
                        data = _reader.ReadBytes((int)length);
                        if (data.Length < length)
                        {
                            throw new EndOfStreamException("a write's data is cut short");
                        }
                    }
                    else
                    {
                        digest = _reader.ReadUInt32();
                    }
                }

                return new SessionRecord(kind)
                {
                    Id = id,
                    Connection = connection,
                    Opcode = opcode,
                    Flags = flags,
                    Offset = offset,
                    Length = length,
                    Data = data,
                    Digest = digest,
                };
            default:
                throw new InvalidDataException(
                    $"a record of unknown kind {(int)kind}: the recording is damaged or of a later version"
                );
        }
    }
}
