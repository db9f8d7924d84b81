using Controller.Common;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Traces;

namespace Controller.Emulator.Sim;

/// <summary>A block trace to replay: the file, its format, how it fits the device and how fast it runs.</summary>
/// <param name="Path">The trace file (gzip-compressed when it ends in .gz).</param>
/// <param name="Format">Its format.</param>
/// <param name="Fit">How addresses beyond the device are folded onto it.</param>
/// <param name="Speed">
/// 1 replays at the recorded times, 2 twice as fast, 0.5 half as fast (commands arrive by the
/// virtual clock, up to the queue depth in flight); 0 ignores the times and runs as fast as the
/// device allows at the queue depth (a closed loop).
/// </param>
public sealed record TraceSource(string Path, TraceFormat Format, TraceFit Fit = TraceFit.Wrap, double Speed = 1)
{
    /// <summary>Commands arrive at the trace's times (scaled), not when there is room for them.</summary>
    public bool Timed => Speed > 0;
}

/// <summary>
/// <c>trace</c>: a block trace replayed in file order, every request folded onto the device
/// (<see cref="TraceFolder"/>). No preparation: reads of what the trace never wrote return zeros,
/// as on a fresh drive. The file is read twice before the run (its extent, then the commands it
/// becomes) and streamed during it.
/// </summary>
internal sealed class TraceWorkload : SimWorkload
{
    private readonly TraceSource _source;
    private readonly TraceFolder _folder;
    private readonly IEnumerator<TraceRequest> _commands;

    public TraceWorkload(Prng prng, long deviceBytes, WorkloadParameters parameters)
        : base(prng, deviceBytes, parameters, deviceBytes, 0)
    {
        _source = parameters.Trace
            ?? throw new ArgumentException("the trace workload needs a trace file (--trace-file)", nameof(parameters));
        Summary = TraceSummary.Scan(TraceReader.Open(_source.Path, _source.Format));
        _folder = new TraceFolder(deviceBytes, _source.Fit, Summary.EndBytes);
        MeasuredOps = Commands().LongCount();
        _commands = Commands().GetEnumerator();
    }

    /// <summary>What the scan of the file found.</summary>
    public TraceSummary Summary { get; }

    /// <summary>
    /// The time of the command <see cref="Next"/> returned last, scaled, from the start; -1 when untimed.
    /// </summary>
    public override long Arrival => _source.Timed ? (long)(_commands.Current.TimeNanoseconds / _source.Speed) : -1;

    public override IReadOnlyList<string> Notes =>
        [
            $"trace {System.IO.Path.GetFileName(_source.Path)} ({TraceFormats.NameOf(_source.Format)}): {Summary.Describe()}",
            .. _folder.Warning is { } warning ? [warning] : Array.Empty<string>(),
        ];

    public override HostRequest Next()
    {
        if (!_commands.MoveNext())
        {
            throw new InvalidOperationException("the trace ended before the commands counted for it");
        }

        TraceRequest r = _commands.Current;
        HostOpcode opcode = r.Operation switch
        {
            TraceOperation.Read => HostOpcode.Read,
            TraceOperation.Write => HostOpcode.Write,
            TraceOperation.Trim => HostOpcode.Trim,
            _ => HostOpcode.Flush,
        };
        return new HostRequest(
            opcode,
            r.Fua ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None,
            r.Offset,
            r.Length
        );
    }

    private IEnumerable<TraceRequest> Commands() =>
        TraceReader.Open(_source.Path, _source.Format).SelectMany(_folder.Fold);
}
