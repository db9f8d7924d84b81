using System.Globalization;
using Controller.Emulator.Nand;
using Controller.Firmware.Flash;
using Controller.Firmware.Host;

namespace Controller.Emulator.Sim;

/// <summary>
/// The trace of a run: every NAND operation, host submission and completion, power cut and mount
/// folds into a running FNV-1a hash (two runs of one seed must end with one hash, on any machine),
/// and, when a writer is given, is written as one readable line.
/// </summary>
internal sealed class SimTrace
{
    private const ulong Prime = 0x100000001B3;
    private readonly TextWriter? _text;

    public SimTrace(TextWriter? text)
    {
        _text = text;
    }

    /// <summary>The hash of every event so far.</summary>
    public ulong Hash { get; private set; } = 0xCBF29CE484222325;

    /// <summary>A NAND operation, at its issue.</summary>
    public void Nand(long now, NandOperationKind kind, PageAddress address, NandCompletion completion)
    {
        Fold(1, (long)kind, address.Block, address.Page, (long)completion.Status, completion.CompletesAtNanoseconds);
        _text?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{now,14} nand {Name(kind),-7} block {address.Block} page {address.Page} {completion.Status} done {completion.CompletesAtNanoseconds}"));
    }

    /// <summary>A host command entering the controller.</summary>
    public void Submit(long now, uint id, HostOpcode opcode, HostCommandOptions flags, long offset, long length)
    {
        Fold(2, id, (long)opcode, (long)flags, offset, length);
        _text?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{now,14} host submit op {id} {opcode} {flags} offset {offset} length {length}"));
    }

    /// <summary>A host command's completion.</summary>
    public void Complete(HostCompletion completion)
    {
        Fold(3, completion.Id, (long)completion.Status, completion.CompletedAtNanoseconds, 0, 0);
        _text?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{completion.CompletedAtNanoseconds,14} host complete op {completion.Id} {completion.Status} latency {completion.LatencyNanoseconds} ns"));
    }

    /// <summary>Anything else worth a line: a power cut, a mount, a check.</summary>
    public void Event(long now, string text)
    {
        ulong hash = Hash;
        foreach (char c in text)
        {
            hash = (hash ^ c) * Prime;
        }

        Hash = hash;
        Fold(4, now, 0, 0, 0, 0);
        _text?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{now,14} {text}"));
    }

    private static string Name(NandOperationKind kind) => kind switch
    {
        NandOperationKind.Program => "program",
        NandOperationKind.Erase => "erase",
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
