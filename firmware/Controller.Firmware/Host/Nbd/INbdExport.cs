namespace Controller.Firmware.Host.Nbd;

/// <summary>One extent of base:allocation: a length in bytes and whether it is a hole reading as zeros.</summary>
/// <param name="Length">Bytes.</param>
/// <param name="Flags">Hole and zero, or data.</param>
public readonly record struct NbdExtent(long Length, NbdAllocationState Flags);

/// <summary>
/// What the NBD server serves: the controller behind one export. Calls may come from several
/// connections at once; the implementation hands each command to the one controller loop and
/// completes the returned task when the loop has completed the command.
/// </summary>
public interface INbdExport
{
    /// <summary>The export's name (the empty name also selects it).</summary>
    string Name { get; }

    /// <summary>A line for NBD_INFO_DESCRIPTION and export lists.</summary>
    string Description { get; }

    /// <summary>The size in bytes, a multiple of 512.</summary>
    long SizeBytes { get; }

    /// <summary>Writes, trims and zeroing are refused with EPERM.</summary>
    bool IsReadOnly { get; }

    /// <summary>
    /// Executes one command: for a READ, fills <paramref name="buffer"/>; for a WRITE, takes the data
    /// from it; for the others it is empty. The range is inside the export and in whole 512-byte blocks.
    /// </summary>
    ValueTask<HostStatus> ExecuteAsync(HostOpcode opcode, HostCommandOptions flags, long offset, long length, Memory<byte> buffer, CancellationToken cancellation);

    /// <summary>Adds to <paramref name="extents"/> the allocation of the range, from its start on (at least one extent).</summary>
    ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation);
}
