using System.Text;
using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;
using ZstdSharp;

namespace Controller.Hosting.Recording;

/// <summary>
/// Writes a session's inputs as they come (<see cref="SessionRecording"/> reads them): a header
/// with the configuration, then one record per input, zstd-compressed. The compressor is flushed to
/// the file whenever the loop goes idle and after every 256 KiB of records, so a process killed
/// with SIGKILL leaves a file that replays up to its last complete flushed record. Used on the
/// controller loop's thread only.
/// </summary>
public sealed class SessionRecorder : IDisposable
{
    /// <summary>The first bytes of a recording.</summary>
    internal const string Magic = "ssd-session-recording 1";

    private const int FlushEveryBytes = 256 * 1024;
    private readonly FileStream _file;
    private readonly CompressionStream _zstd;
    private readonly BinaryWriter _writer;
    private readonly RecordedData _data;
    private long _unflushed;
    private long _clock = long.MinValue;
    private long _read;
    private long _unchanged;
    private bool _disposed;

    /// <summary>
    /// Starts the recording at <paramref name="path"/> (which must not exist) of a session of the
    /// firmware configured by <paramref name="configJson"/> (a profile file's JSON, every key set),
    /// on a device described by <paramref name="device"/>.
    /// </summary>
    public SessionRecorder(
        string path,
        string configJson,
        string device,
        RecordedData data,
        RecordedClock clock = RecordedClock.Moves,
        RecordedNand nand = RecordedNand.Emulated,
        bool jumpsToEvents = true
    )
    {
        ArgumentNullException.ThrowIfNull(configJson);
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        _zstd = new CompressionStream(_file, level: 3, leaveOpen: true);
        _writer = new BinaryWriter(_zstd, Encoding.UTF8, leaveOpen: true);
        _data = data;
        ClockMode = clock;
        _writer.Write(Magic);
        _writer.Write((byte)data);
        _writer.Write((byte)clock);
        _writer.Write((byte)nand);
        _writer.Write(jumpsToEvents);
        NandMode = nand;
        // An emulated device is built the same way by the replay, readings and all; a device
        // whose outcomes are recorded is not built by the replay at all.
        InFirmware = nand == RecordedNand.Emulated;
        _writer.Write(configJson);
        _writer.Write(device);
        Flush();
    }

    /// <summary>Records written so far.</summary>
    public long Records { get; private set; }

    /// <summary>How the clock is kept: its instant before each input, or every reading.</summary>
    public RecordedClock ClockMode { get; }

    /// <summary>Whether NAND outcomes are recorded (<see cref="RecordingNand"/>).</summary>
    public RecordedNand NandMode { get; }

    /// <summary>
    /// With <see cref="RecordedClock.Reads"/>: the firmware (or the NAND under it) is running, so
    /// clock readings are its inputs. The server's own readings between inputs (waiting for the
    /// next event) are not, and a replay does not make them. True until the server attaches the recorder.
    /// </summary>
    public bool InFirmware { get; set; }

    /// <summary>The path written.</summary>
    public string Path => _file.Name;

    /// <summary>
    /// Sets <see cref="InFirmware"/> of <paramref name="recorder"/> to <paramref name="inFirmware"/>
    /// until the scope ends, then back to what it was; nothing without a recorder. A struct: no
    /// allocation on the loop's path.
    /// </summary>
    internal static FirmwareScope Scope(SessionRecorder? recorder, bool inFirmware)
    {
        var scope = new FirmwareScope(recorder, recorder?.InFirmware ?? false);
        if (recorder is not null)
        {
            recorder.InFirmware = inFirmware;
        }

        return scope;
    }

    /// <summary>The device's clock, read before an input: recorded when it moved since the last one.</summary>
    public void Clock(long nanoseconds)
    {
        if (ClockMode == RecordedClock.Reads || nanoseconds == _clock)
        {
            return;
        }

        _clock = nanoseconds;
        Begin(SessionRecordKind.Clock);
        _writer.Write7BitEncodedInt64(nanoseconds);
        End();
    }

    /// <summary>
    /// A reading of a clock that moves by itself, while <see cref="InFirmware"/>: recorded when it differs from the
    /// last.
    /// </summary>
    public void ClockRead(long nanoseconds)
    {
        if (!InFirmware || ClockMode != RecordedClock.Reads)
        {
            return;
        }

        if (nanoseconds == _read)
        {
            _unchanged++;
            return;
        }

        Begin(SessionRecordKind.ClockRead);
        _writer.Write7BitEncodedInt64(_unchanged);
        _writer.Write7BitEncodedInt64(nanoseconds - _read);
        _read = nanoseconds;
        _unchanged = 0;
        End();
    }

    /// <summary>
    /// A page read's outcome; <paramref name="data"/> and <paramref name="spare"/> when they are not what the session's
    /// model of the page says.
    /// </summary>
    public void NandRead(
        PageAddress address,
        NandCompletion completion,
        ReadOnlySpan<byte> data,
        ReadOnlySpan<byte> spare,
        bool modelled
    )
    {
        Begin(SessionRecordKind.NandRead);
        WriteAddress(address);
        WriteCompletion(completion);
        _writer.Write(modelled);
        if (!modelled)
        {
            _writer.Write7BitEncodedInt(data.Length);
            _writer.Write(data);
            _writer.Write7BitEncodedInt(spare.Length);
            _writer.Write(spare);
            _unflushed += data.Length + spare.Length;
        }

        End();
    }

    /// <summary>A page program's or block erase's outcome.</summary>
    public void NandWrite(SessionRecordKind kind, PageAddress address, NandCompletion completion)
    {
        if (kind is not (SessionRecordKind.NandProgram or SessionRecordKind.NandErase))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "a program or an erase");
        }

        Begin(kind);
        WriteAddress(address);
        WriteCompletion(completion);
        End();
    }

    /// <summary>A die's status, as the firmware asked.</summary>
    public void NandDie(int die, NandDieStatus status)
    {
        Begin(SessionRecordKind.NandDie);
        _writer.Write7BitEncodedInt(die);
        _writer.Write(status.Busy);
        _writer.Write7BitEncodedInt64(status.ReadyAtNanoseconds);
        _writer.Write7BitEncodedInt(status.QueuedOperations);
        End();
    }

    /// <summary>A host command entering the firmware.</summary>
    public void Command(
        long id,
        int connection,
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        ReadOnlySpan<byte> data
    )
    {
        Begin(SessionRecordKind.Command);
        _writer.Write7BitEncodedInt64(id);
        _writer.Write7BitEncodedInt(connection);
        _writer.Write((byte)opcode);
        _writer.Write((byte)flags);
        _writer.Write7BitEncodedInt64(offset);
        _writer.Write7BitEncodedInt64(length);
        if (opcode == HostOpcode.Write)
        {
            if (_data == RecordedData.Full)
            {
                _writer.Write(data);
            }
            else
            {
                _writer.Write(data.ContainsAnyExcept((byte)0) ? Math.Max(1u, Crc32C.Compute(data)) : 0u);
            }

            _unflushed += data.Length;
        }

        End();
    }

    /// <summary>One step of the loop.</summary>
    public void Step(bool background)
    {
        Begin(SessionRecordKind.Step);
        _writer.Write(background);
        End();
    }

    /// <summary>A management request that changes the device: a power cut, a checkpoint, or the shutdown.</summary>
    public void Management(SessionRecordKind kind)
    {
        if (kind is not (SessionRecordKind.PowerCut or SessionRecordKind.Checkpoint or SessionRecordKind.Shutdown))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "a power cut, a checkpoint or the shutdown");
        }

        Begin(kind);
        End();
        Flush();
    }

    /// <summary>Fault injection asked for, as the endpoint's JSON.</summary>
    public void Faults(string json)
    {
        Begin(SessionRecordKind.Faults);
        _writer.Write(json);
        End();
    }

    /// <summary>The end of the session, with its execution hash; the file is complete.</summary>
    public void Finish(ulong hash)
    {
        Begin(SessionRecordKind.End);
        _writer.Write(hash);
        End();
        Dispose();
    }

    /// <summary>Makes every record so far readable from the file (the loop is going idle).</summary>
    public void Flush()
    {
        if (_disposed)
        {
            return;
        }

        _writer.Flush();
        _zstd.Flush();
        _file.Flush();
        _unflushed = 0;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Flush();
        _disposed = true;
        _writer.Dispose();
        _zstd.Dispose();
        _file.Dispose();
    }

    private void WriteAddress(PageAddress address)
    {
        _writer.Write7BitEncodedInt(address.Block);
        _writer.Write7BitEncodedInt(address.Page);
    }

    private void WriteCompletion(NandCompletion completion)
    {
        _writer.Write((byte)completion.Status);
        _writer.Write7BitEncodedInt64(completion.CompletesAtNanoseconds);
        _writer.Write7BitEncodedInt(completion.CorrectedBits);
    }

    private void Begin(SessionRecordKind kind)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _writer.Write((byte)kind);
    }

    private void End()
    {
        Records++;
        _unflushed += 16;
        if (_unflushed >= FlushEveryBytes)
        {
            Flush();
        }
    }
}

/// <summary>
/// Puts <see cref="SessionRecorder.InFirmware"/> back as it was (<see cref="SessionRecorder.Scope"/>).
/// </summary>
internal readonly struct FirmwareScope(SessionRecorder? recorder, bool was) : IDisposable
{
    public void Dispose()
    {
        if (recorder is not null)
        {
            recorder.InFirmware = was;
        }
    }
}
