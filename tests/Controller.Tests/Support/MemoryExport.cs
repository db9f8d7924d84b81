using Controller.Firmware.Host;
using Controller.Hosting.Nbd;
using Controller.Nbd;

namespace Controller.Tests.Support;

/// <summary>
/// An export over plain memory for the NBD server's tests: bytes, a hole bit per 512-byte block,
/// and a log of every command executed, so a test can tell that bad input executed nothing.
/// </summary>
internal sealed class MemoryExport(long sizeBytes, bool readOnly = false, string name = "ssd") : INbdExport
{
    private readonly byte[] _data = new byte[sizeBytes];
    private readonly bool[] _hole = Enumerable.Repeat(true, (int)(sizeBytes / 512)).ToArray();
    private readonly Lock _lock = new();

    public string Name => name;

    public string Description => "memory export for tests";

    public long SizeBytes => sizeBytes;

    public bool IsReadOnly => readOnly;

    public List<(HostOpcode Opcode, HostCommandOptions Flags, long Offset, long Length)> Executed { get; } = [];

    public byte[] Snapshot()
    {
        lock (_lock)
        {
            return (byte[])_data.Clone();
        }
    }

    /// <summary>When set, each command waits for the task it returns for the command's offset before it runs.</summary>
    public Func<long, Task>? Gate { get; set; }

    public async ValueTask<HostStatus> ExecuteAsync(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        CancellationToken cancellation
    )
    {
        if (Gate is { } gate)
        {
            await gate(offset);
        }

        lock (_lock)
        {
            Executed.Add((opcode, flags, offset, length));
            Span<byte> range = _data.AsSpan((int)offset, (int)length);
            switch (opcode)
            {
                case HostOpcode.Read:
                    range.CopyTo(buffer.Span);
                    break;
                case HostOpcode.Write:
                    buffer.Span.CopyTo(range);
                    _hole.AsSpan((int)(offset / 512), (int)(length / 512)).Clear();
                    break;
                case HostOpcode.Trim or HostOpcode.WriteZeroes:
                    range.Clear();
                    _hole
                        .AsSpan((int)(offset / 512), (int)(length / 512))
                        .Fill(!flags.HasFlag(HostCommandOptions.NoHole));
                    break;
            }
        }

        return HostStatus.Ok;
    }

    public ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation)
    {
        lock (_lock)
        {
            for (long block = offset / 512; block < (offset + length) / 512; block++)
            {
                NbdAllocationState state = _hole[block]
                    ? NbdAllocationState.Hole | NbdAllocationState.Zero
                    : NbdAllocationState.None;
                if (extents.Count > 0 && extents[^1].Flags == state)
                {
                    extents[^1] = extents[^1] with { Length = extents[^1].Length + 512 };
                }
                else
                {
                    extents.Add(new NbdExtent(512, state));
                }
            }
        }

        return ValueTask.CompletedTask;
    }
}
