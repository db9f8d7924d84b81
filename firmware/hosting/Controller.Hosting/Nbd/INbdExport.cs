using Controller.Firmware.Host;
using Controller.Nbd;

namespace Controller.Hosting.Nbd;

/// <summary>
/// Where an export reports a command's end: called once, from whatever thread ends it, and must not block.
/// </summary>
public interface INbdCompletion
{
    /// <summary>The command completed with <paramref name="status"/>.</summary>
    void Complete(HostStatus status);

    /// <summary>The command could not be run at all (the export has shut down).</summary>
    void Fail(Exception exception);

    /// <summary>The connection the command came on (numbered from 1 by the server; 0 when not known).</summary>
    int Connection => 0;
}

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
    ValueTask<HostStatus> ExecuteAsync(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        CancellationToken cancellation
    );

    /// <summary>
    /// Starts one command as <see cref="ExecuteAsync"/> does and tells <paramref name="completion"/>
    /// when it ends, with no task in between: the server's path, where a command's end goes straight
    /// to its connection's queue of replies. By default, over <see cref="ExecuteAsync"/>.
    /// </summary>
    void Submit(
        HostOpcode opcode,
        HostCommandOptions flags,
        long offset,
        long length,
        Memory<byte> buffer,
        INbdCompletion completion
    )
    {
        ArgumentNullException.ThrowIfNull(completion);
        ValueTask<HostStatus> task = ExecuteAsync(opcode, flags, offset, length, buffer, CancellationToken.None);
        if (task.IsCompletedSuccessfully)
        {
            completion.Complete(task.Result);
            return;
        }

        _ = task.AsTask()
            .ContinueWith(
                static (t, state) =>
                {
                    var done = (INbdCompletion)state!;
                    if (t.IsCompletedSuccessfully)
                    {
                        done.Complete(t.Result);
                    }
                    else
                    {
                        done.Fail(t.Exception?.InnerException ?? new OperationCanceledException());
                    }
                },
                completion,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default
            );
    }

    /// <summary>
    /// Adds to <paramref name="extents"/> the allocation of the range, from its start on (at least one extent).
    /// </summary>
    ValueTask BlockStatusAsync(long offset, long length, List<NbdExtent> extents, CancellationToken cancellation);
}
