using System.Globalization;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;

namespace Controller.Hosting;

/// <summary>
/// The trace of a firmware execution: every NAND operation, host submission and completion, and
/// event (a mount, a power cut) folds into a running FNV-1a hash and, when a writer is given, is
/// written as one readable line. Two executions that took the same inputs end with the same hash
/// on any machine: the sim's runs, a served session and its replay all compute it here.
/// </summary>
public sealed class ExecutionTrace(TextWriter? text)
{
    private const ulong Prime = 0x100000001B3;

    /// <summary>The first line of a trace file: what its columns are.</summary>
    public const string Header =
        "# virtual-time-ns  event: nand read|program|erase block B page P STATUS done NS | host submit op ID OPCODE FLAGS offset BYTES length BYTES | host complete op ID STATUS latency NS ns | a mount, a cut, a check";

    /// <summary>A new trace file at <paramref name="path"/>, its first line <see cref="Header"/>.</summary>
    public static StreamWriter OpenFile(string path)
    {
        var writer = new StreamWriter(path);
        writer.WriteLine(Header);
        return writer;
    }

    /// <summary>The hash of every event so far.</summary>
    public ulong Hash { get; private set; } = 0xCBF29CE484222325;

    /// <summary>A NAND operation (<paramref name="kind"/>: 0 read, 1 program, 2 erase), at its issue.</summary>
    public void Nand(long now, int kind, PageAddress address, NandCompletion completion)
    {
        Fold(1, kind, address.Block, address.Page, (long)completion.Status, completion.CompletesAtNanoseconds);
        text?.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"{now, 14} nand {Name(kind), -7} block {address.Block} page {address.Page} {completion.Status} done {completion.CompletesAtNanoseconds}"
            )
        );
    }

    /// <summary>A host command entering the controller.</summary>
    public void Submit(long now, long id, HostOpcode opcode, HostCommandOptions flags, long offset, long length)
    {
        Fold(2, id, (long)opcode, (long)flags, offset, length);
        text?.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"{now, 14} host submit op {id} {opcode} {flags} offset {offset} length {length}"
            )
        );
    }

    /// <summary>A host command's completion.</summary>
    public void Complete(HostCompletion completion)
    {
        Fold(3, completion.Id, (long)completion.Status, completion.CompletedAtNanoseconds, 0, 0);
        text?.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"{completion.CompletedAtNanoseconds, 14} host complete op {completion.Id} {completion.Status} latency {completion.LatencyNanoseconds} ns"
            )
        );
    }

    /// <summary>Anything else worth a line: a power cut, a mount, a check.</summary>
    public void Event(long now, string what)
    {
        ArgumentNullException.ThrowIfNull(what);
        ulong hash = Hash;
        foreach (char c in what)
        {
            hash = (hash ^ c) * Prime;
        }

        Hash = hash;
        Fold(4, now, 0, 0, 0, 0);
        text?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{now, 14} {what}"));
    }

    private static string Name(int kind) =>
        kind switch
        {
            1 => "program",
            2 => "erase",
            _ => "read",
        };

    private void Fold(long kind, long a, long b, long c, long d, long e)
    {
        ulong hash = Hash;
        hash = (hash ^ (ulong)kind) * Prime;
        hash = (hash ^ (ulong)a) * Prime;
        hash = (hash ^ (ulong)b) * Prime;
        hash = (hash ^ (ulong)c) * Prime;
        hash = (hash ^ (ulong)d) * Prime;
        hash = (hash ^ (ulong)e) * Prime;
        Hash = hash;
    }
}
