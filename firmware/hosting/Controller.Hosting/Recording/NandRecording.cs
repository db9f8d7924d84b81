using Controller.Firmware.Flash;

namespace Controller.Hosting.Recording;

/// <summary>
/// What a session wrote to each page as far as it knows (<see cref="RecordingNand"/> and
/// <see cref="ReplayNand"/> keep the same one): the bytes programmed, erased (FFh), or not known
/// (never touched in the session, or a failed program or erase).
/// </summary>
internal sealed class PageModel(NandGeometry geometry)
{
    private readonly Dictionary<int, byte[]?[]> _blocks = [];

    /// <summary>The page's bytes (data, then spare) as the session left them, or null when not known.</summary>
    public byte[]? Expected(PageAddress address)
    {
        if (!_blocks.TryGetValue(address.Block, out byte[]?[]? pages))
        {
            return null;
        }

        return pages[address.Page] ?? ErasedPage;
    }

    public void Programmed(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare, bool succeeded)
    {
        if (!_blocks.TryGetValue(address.Block, out byte[]?[]? pages))
        {
            return;
        }

        if (!succeeded)
        {
            _blocks.Remove(address.Block);
            return;
        }

        byte[] bytes = new byte[geometry.PageBytes + geometry.SpareBytes];
        data.CopyTo(bytes);
        spare.CopyTo(bytes.AsSpan(geometry.PageBytes));
        pages[address.Page] = bytes;
    }

    public void Erased(int block, bool succeeded)
    {
        if (succeeded)
        {
            _blocks[block] = new byte[]?[geometry.PagesPerBlock];
        }
        else
        {
            _blocks.Remove(block);
        }
    }

    /// <summary>True when what was read is what the model holds.</summary>
    public bool Matches(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare) =>
        Expected(address) is { } expected
        && data.SequenceEqual(expected.AsSpan(0, data.Length))
        && spare.SequenceEqual(expected.AsSpan(geometry.PageBytes, spare.Length));

    /// <summary>Fills a read from the model.</summary>
    public void Fill(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        byte[] expected = Expected(address)
            ?? throw new InvalidDataException(
                $"the replay diverged: the session read block {address.Block} page {address.Page} as it had left it, and the replay does not know it"
            );
        expected.AsSpan(0, data.Length).CopyTo(data);
        expected.AsSpan(geometry.PageBytes, spare.Length).CopyTo(spare);
    }

    private byte[] ErasedPage =>
        field ??= Enumerable.Repeat((byte)0xFF, geometry.PageBytes + geometry.SpareBytes).ToArray();
}

/// <summary>
/// Records the outcome of every operation of a NAND the replay cannot rebuild (a real chip, or one
/// that held data before the session): statuses, completion instants, and a read's bytes where they
/// are not what the session wrote there. The device's own clock readings inside an operation (a
/// driver polling its chip) are not recorded (each call is out of the firmware's scope): the
/// outcome stands for them.
/// </summary>
public sealed class RecordingNand(INandDevice inner, SessionRecorder recorder) : INandDevice
{
    private readonly PageModel _model = new(inner.Geometry);

    /// <inheritdoc />
    public NandGeometry Geometry => inner.Geometry;

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        NandCompletion completion;
        using (SessionRecorder.Scope(recorder, inFirmware: false))
        {
            completion = inner.ReadPage(address, data, spare);
        }

        recorder.NandRead(address, completion, data, spare, _model.Matches(address, data, spare));
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        NandCompletion completion;
        using (SessionRecorder.Scope(recorder, inFirmware: false))
        {
            completion = inner.ProgramPage(address, data, spare);
        }

        _model.Programmed(address, data, spare, completion.Status != NandStatus.ProgramFailed);
        recorder.NandWrite(SessionRecordKind.NandProgram, address, completion);
        return completion;
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        NandCompletion completion;
        using (SessionRecorder.Scope(recorder, inFirmware: false))
        {
            completion = inner.EraseBlock(block);
        }

        _model.Erased(block, completion.Status != NandStatus.EraseFailed);
        recorder.NandWrite(SessionRecordKind.NandErase, new PageAddress(block, 0), completion);
        return completion;
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die)
    {
        NandDieStatus status;
        using (SessionRecorder.Scope(recorder, inFirmware: false))
        {
            status = inner.GetDieStatus(die);
        }

        recorder.NandDie(die, status);
        return status;
    }
}

/// <summary>
/// A NAND that answers each operation with the session's recorded outcome (<see cref="RecordingNand"/>).
/// </summary>
public sealed class ReplayNand(NandGeometry geometry, SessionRecording recording) : INandDevice
{
    private readonly PageModel _model = new(geometry);

    /// <inheritdoc />
    public NandGeometry Geometry => geometry;

    /// <inheritdoc />
    public NandCompletion ReadPage(PageAddress address, Span<byte> data, Span<byte> spare)
    {
        SessionRecord record = Next(SessionRecordKind.NandRead, address);
        if (record.Data is { } recordedData && record.Spare is { } recordedSpare)
        {
            recordedData.CopyTo(data);
            recordedSpare.CopyTo(spare);
        }
        else
        {
            _model.Fill(address, data, spare);
        }

        return record.Completion;
    }

    /// <inheritdoc />
    public NandCompletion ProgramPage(PageAddress address, ReadOnlySpan<byte> data, ReadOnlySpan<byte> spare)
    {
        SessionRecord record = Next(SessionRecordKind.NandProgram, address);
        _model.Programmed(address, data, spare, record.Completion.Status != NandStatus.ProgramFailed);
        return record.Completion;
    }

    /// <inheritdoc />
    public NandCompletion EraseBlock(int block)
    {
        SessionRecord record = Next(SessionRecordKind.NandErase, new PageAddress(block, 0));
        _model.Erased(block, record.Completion.Status != NandStatus.EraseFailed);
        return record.Completion;
    }

    /// <inheritdoc />
    public NandDieStatus GetDieStatus(int die) => Next(SessionRecordKind.NandDie, new PageAddress(die, 0)).Die;

    private SessionRecord Next(SessionRecordKind kind, PageAddress address)
    {
        SessionRecord? record = recording.Take();
        return record is not null && record.Kind == kind && record.Page == address
            ? record
            : throw new InvalidDataException(
                $"the replay diverged: it asked for {kind} of block {address.Block} page {address.Page}; the session's next input is {(record is null ? "the end" : $"{record.Kind} block {record.Page.Block} page {record.Page.Page}")}"
            );
    }
}
