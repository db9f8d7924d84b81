using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using Controller.Common;
using Controller.Firmware.Flash;

namespace Controller.Emulator.Nand;

/// <summary>
/// The array in a memory-mapped image file, so it outlives the process:
/// <code>
/// [header, 4 KiB][page states, 1 B/page][erase counts, 4 B/block][block flags, 1 B/block]
/// [spare areas, one per page][page data, one per page]
/// </code>
/// each region aligned to 4 KiB, so page data sits on boundaries of its own size. The file is sparse: untouched pages
/// take no disk. A program writes the page's data and spare first and its state byte last, so a process killed in the
/// middle of a program leaves that page erased or programmed and every other page as it was.
/// </summary>
internal sealed unsafe class ImageNandStore : NandStore
{
    /// <summary>The first eight bytes of every image.</summary>
    public static ReadOnlySpan<byte> Magic => "SSDNAND\x1A"u8;

    /// <summary>The layout version this code reads and writes.</summary>
    public const uint Version = 2;

    private const int HeaderBytes = 4096;
    private const int Alignment = 4096;

    // Magic, then version, six geometry fields, padding and the file length; the CRC follows.
    private const int HeaderFieldsBytes = 8 + 40;

    private readonly string _path;
    private string? _creatingPath;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _statesOffset;
    private readonly long _countsOffset;
    private readonly long _flagsOffset;
    private readonly long _spareOffset;
    private readonly long _dataOffset;
    private bool _disposed;

    private ImageNandStore(string path, string? creatingPath, NandGeometry geometry, FileStream file, bool isNew)
        : base(geometry)
    {
        _path = path;
        _creatingPath = creatingPath;
        IsNew = isNew;
        (_statesOffset, _countsOffset, _flagsOffset, _spareOffset, _dataOffset, long length) = Layout(geometry);
        if (isNew)
        {
            file.SetLength(length);
            WriteHeader(file, geometry);
        }

        _map = MemoryMappedFile.CreateFromFile(
            file,
            mapName: null,
            length,
            MemoryMappedFileAccess.ReadWrite,
            HandleInheritability.None,
            leaveOpen: false
        );
        _view = _map.CreateViewAccessor(0, length, MemoryMappedFileAccess.ReadWrite);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + _view.PointerOffset;
    }

    public override bool IsNew { get; }

    public override Span<byte> States => new(_base + _statesOffset, Geometry.Pages);

    public override Span<uint> EraseCounts => new(_base + _countsOffset, Geometry.Blocks);

    public override Span<byte> Flags => new(_base + _flagsOffset, Geometry.Blocks);

    /// <summary>
    /// Opens the image at <paramref name="path"/>, creating it when it does not exist (and
    /// <paramref name="mayCreate"/>). A new image is built under a temporary name and takes its
    /// real name in <see cref="CommitCreation"/>. An existing file that is not an image, or an
    /// image of another geometry, is refused and left untouched.
    /// </summary>
    public static ImageNandStore OpenOrCreate(string path, NandGeometry geometry, bool mayCreate = true)
    {
        bool exists = File.Exists(path);
        if (!exists && !mayCreate)
        {
            throw new NandImageException(path, "no such image");
        }

        if (!exists && Path.GetDirectoryName(Path.GetFullPath(path)) is { } directory && !Directory.Exists(directory))
        {
            throw new NandImageException(path, $"cannot be created: the directory {directory} does not exist");
        }

        string? creatingPath = exists ? null : path + ".creating";
        FileStream file;
        try
        {
            // FileShare.None takes an exclusive lock, so two emulators never share one image. A
            // leftover from a creation that died is replaced.
            file = new FileStream(
                creatingPath ?? path,
                exists ? FileMode.Open : FileMode.Create,
                FileAccess.ReadWrite,
                FileShare.None
            );
        }
        catch (IOException e)
        {
            throw new NandImageException(path, $"cannot be opened: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new NandImageException(path, $"cannot be opened: {e.Message}");
        }

        try
        {
            if (exists)
            {
                Validate(path, file, geometry);
            }

            return new ImageNandStore(path, creatingPath, geometry, file, isNew: !exists);
        }
        catch
        {
            file.Dispose();
            if (creatingPath is not null)
            {
                File.Delete(creatingPath);
            }

            throw;
        }
    }

    public override void CommitCreation()
    {
        if (_creatingPath is null)
        {
            return;
        }

        _view.Flush();
        try
        {
            File.Move(_creatingPath, _path, overwrite: false);
        }
        catch (IOException e)
        {
            throw new NandImageException(_path, $"could not be created: {e.Message}");
        }

        _creatingPath = null;
    }

    public override Span<byte> Data(int page) =>
        new(_base + _dataOffset + ((long)page * Geometry.PageBytes), Geometry.PageBytes);

    public override Span<byte> Spare(int page) =>
        new(_base + _spareOffset + ((long)page * Geometry.SpareBytes), Geometry.SpareBytes);

    public override void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _view.Flush();
    }

    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _view.Flush();
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
        if (_creatingPath is not null)
        {
            // Never committed: the creation failed, so its half-made file goes.
            File.Delete(_creatingPath);
        }

        base.Dispose(disposing);
    }

    private static (long States, long Counts, long Flags, long Spare, long Data, long Length) Layout(
        NandGeometry geometry
    )
    {
        long states = HeaderBytes;
        long counts = AlignUp(states + geometry.Pages);
        long flags = AlignUp(counts + (4L * geometry.Blocks));
        long spare = AlignUp(flags + geometry.Blocks);
        long data = AlignUp(spare + ((long)geometry.Pages * geometry.SpareBytes));
        long length = data + ((long)geometry.Pages * geometry.PageBytes);
        return (states, counts, flags, spare, data, length);
    }

    private static long AlignUp(long value) => (value + Alignment - 1) / Alignment * Alignment;

    private static void WriteHeader(FileStream file, NandGeometry geometry)
    {
        Span<byte> header = stackalloc byte[HeaderBytes];
        header.Clear();
        EncodeHeader(header, geometry);
        file.Position = 0;
        file.Write(header);
        file.Flush();
    }

    private static void EncodeHeader(Span<byte> header, NandGeometry geometry)
    {
        Magic.CopyTo(header);
        Span<byte> fields = header[8..];
        BinaryPrimitives.WriteUInt32LittleEndian(fields, Version);
        BinaryPrimitives.WriteInt32LittleEndian(fields[4..], geometry.Channels);
        BinaryPrimitives.WriteInt32LittleEndian(fields[8..], geometry.DiesPerChannel);
        BinaryPrimitives.WriteInt32LittleEndian(fields[12..], geometry.BlocksPerDie);
        BinaryPrimitives.WriteInt32LittleEndian(fields[16..], geometry.PagesPerBlock);
        BinaryPrimitives.WriteInt32LittleEndian(fields[20..], geometry.PageBytes);
        BinaryPrimitives.WriteInt32LittleEndian(fields[24..], geometry.SpareBytes);
        long length = Layout(geometry).Length;
        BinaryPrimitives.WriteInt64LittleEndian(fields[32..], length);
        uint crc = Crc32C.Compute(header[..HeaderFieldsBytes]);
        BinaryPrimitives.WriteUInt32LittleEndian(header[HeaderFieldsBytes..], crc);
    }

    private static void Validate(string path, FileStream file, NandGeometry expected)
    {
        Span<byte> header = stackalloc byte[HeaderBytes];
        file.Position = 0;
        int read = file.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false);
        if (read < Magic.Length || !header[..Magic.Length].SequenceEqual(Magic))
        {
            throw new NandImageException(
                path,
                "is not an ssd-emulator NAND image (no image header); refusing to overwrite it"
            );
        }

        if (read < HeaderBytes)
        {
            throw new NandImageException(path, $"is truncated: its header is {read} bytes, expected {HeaderBytes}");
        }

        uint storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[HeaderFieldsBytes..]);
        if (Crc32C.Compute(header[..HeaderFieldsBytes]) != storedCrc)
        {
            throw new NandImageException(path, "has a corrupt header (checksum mismatch)");
        }

        Span<byte> fields = header[8..];
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(fields);
        if (version != Version)
        {
            throw new NandImageException(
                path,
                $"is an image of layout version {version}; this emulator reads version {Version}"
            );
        }

        var actual = new NandGeometry(
            BinaryPrimitives.ReadInt32LittleEndian(fields[4..]),
            BinaryPrimitives.ReadInt32LittleEndian(fields[8..]),
            BinaryPrimitives.ReadInt32LittleEndian(fields[12..]),
            BinaryPrimitives.ReadInt32LittleEndian(fields[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(fields[20..]),
            BinaryPrimitives.ReadInt32LittleEndian(fields[24..])
        );
        if (actual != expected)
        {
            throw new NandImageException(
                path,
                $"holds a NAND of {actual}, but the configuration describes {expected}; use the profile it was made with, or another image"
            );
        }

        long length = BinaryPrimitives.ReadInt64LittleEndian(fields[32..]);
        if (file.Length != length)
        {
            throw new NandImageException(
                path,
                $"is {file.Length} bytes long, but its header says {length}: it was truncated or extended"
            );
        }
    }
}

/// <summary>An image file that cannot be used; the message names the file and the reason.</summary>
public sealed class NandImageException : Exception
{
    /// <summary>Creates the error for the image at <paramref name="path"/>.</summary>
    public NandImageException(string path, string reason)
        : base($"{path}: {reason}")
    {
        ImagePath = path;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming the file.</summary>
    public NandImageException()
    {
        ImagePath = string.Empty;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming the file.</summary>
    public NandImageException(string message)
        : base(message)
    {
        ImagePath = string.Empty;
    }

    /// <summary>Required by the analyzers; prefer the constructor naming the file.</summary>
    public NandImageException(string message, Exception innerException)
        : base(message, innerException)
    {
        ImagePath = string.Empty;
    }

    /// <summary>The image file at fault.</summary>
    public string ImagePath { get; }
}
