using System.Globalization;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Sim;

/// <summary>
/// Bounded exhaustive crash testing, as CrashMonkey and ACE (Mohan et al., OSDI'18) do for file
/// systems: every sequence of up to K host commands drawn from the protocol's vocabulary over the
/// byte ranges that matter to a large-page cache, each after a prefix that leaves those ranges
/// clean in the cache, dirty in it, or only on NAND, on a tiny device for each trim policy with
/// and without power-loss protection. Each case runs once to count its NAND operations, then once
/// per cut point: during each NAND operation of the sequence and of the FLUSH that follows it (at
/// an instant drawn within the operation, so programs and erases are torn as in <c>sim</c>), and
/// right after each command completes. After each cut the firmware recovers and the oracle checks
/// every sector of the device.
/// </summary>
public sealed class CrashTest
{
    /// <summary>The trim policies the devices cover, in order.</summary>
    public static readonly string[] Policies = ["zero-fill", "split", "migrate", "evict"];

    /// <summary>What the prefix leaves the targets as.</summary>
    public static readonly string[] Prefixes = ["uncached", "clean", "dirty"];

    /// <summary>
    /// The crash test's device before the case's policy and PLP and the command line's settings:
    /// the tiny profile's two dies with 16 KiB pages (four sectors a program, as on the default
    /// profile) in 40 blocks of four pages, 768 KiB of it the host's (a whole-device check is 192
    /// sectors), a cache of four 64 KiB large pages, and the full invariant checks after every command.
    /// </summary>
    public static readonly string[] DeviceSettings =
    [
        "nand.pageBytes=16k",
        "nand.spareBytes=512",
        "nand.pagesPerBlock=4",
        "nand.blocksPerDie=20",
        "ftl.spareFactor=0.7",
        "cache.bytes=256k",
        "cache.largePageBytes=64k",
        "cache.checkInvariants=true",
    ];

    private static readonly bool[] s_plp = [false, true];
    private readonly Func<string, IEnumerable<string>, ResolvedConfig> _load;
    private readonly IReadOnlyList<string> _overrides;
    private readonly CrashDevice[] _devices;

    /// <summary>
    /// A crash test over sequences of up to <paramref name="length"/> commands. <paramref name="load"/>
    /// resolves a profile with settings; <paramref name="overrides"/> (the command line's
    /// <c>--set</c>) apply last.
    /// </summary>
    public CrashTest(
        int length,
        Func<string, IEnumerable<string>, ResolvedConfig> load,
        IReadOnlyList<string> overrides
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, 4);
        Length = length;
        _load = load ?? throw new ArgumentNullException(nameof(load));
        _overrides = overrides ?? throw new ArgumentNullException(nameof(overrides));
        _devices = [.. s_plp.SelectMany(plp => Policies.Select(policy => Device(policy, plp)))];
        Vocabulary = CrashVocabulary.For(_devices[0].Config);
        long perPrefix = 0;
        for (int l = 1, count = 1; l <= length; l++)
        {
            count *= Vocabulary.Count;
            perPrefix += count;
        }

        SequencesPerPrefix = perPrefix;
    }

    /// <summary>The longest sequence.</summary>
    public int Length { get; }

    /// <summary>Deliberately broken variants, for the tests' canaries only.</summary>
    internal SimHooks Hooks { get; init; } = SimHooks.None;

    /// <summary>The operations a sequence is made of.</summary>
    public IReadOnlyList<CrashOperation> Vocabulary { get; }

    /// <summary>Sequences of 1 to <see cref="Length"/> operations, per device and prefix.</summary>
    public long SequencesPerPrefix { get; }

    /// <summary>Every case: each device, prefix and sequence.</summary>
    public long Cases => _devices.Length * Prefixes.Length * SequencesPerPrefix;

    /// <summary>
    /// The case of index <paramref name="index"/> (0 to <see cref="Cases"/> - 1), in the order the test enumerates
    /// them.
    /// </summary>
    public CrashCase Case(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Cases);
        long sequence = index % SequencesPerPrefix;
        long rest = index / SequencesPerPrefix;
        int prefix = (int)(rest % Prefixes.Length);
        CrashDevice device = _devices[rest / Prefixes.Length];
        var operations = new List<CrashOperation>();
        long count = Vocabulary.Count;
        int length = 1;
        while (sequence >= count)
        {
            sequence -= count;
            count *= Vocabulary.Count;
            length++;
        }

        for (int i = 0; i < length; i++)
        {
            operations.Add(Vocabulary[(int)(sequence % Vocabulary.Count)]);
            sequence /= Vocabulary.Count;
        }

        operations.Reverse();
        return new CrashCase(device, Prefixes[prefix], operations);
    }

    /// <summary>
    /// Finds a case by its <see cref="CrashCase.Id"/>; a <see cref="FormatException"/> says what is wrong.
    /// </summary>
    public CrashCase Parse(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        string[] parts = id.Split('/');
        if (parts.Length != 4)
        {
            throw new FormatException(
                $"case '{id}' is not POLICY/PLP/PREFIX/OPS (as the report writes it, e.g. split/no-plp/dirty/Tf@sector,S)"
            );
        }

        CrashDevice device = _devices.FirstOrDefault(d => d.Policy == parts[0] && d.PlpName == parts[1])
            ?? throw new FormatException(
                $"case '{id}': no device '{parts[0]}/{parts[1]}'; policies are {string.Join(", ", Policies)}, then plp or no-plp"
            );
        if (!Prefixes.Contains(parts[2]))
        {
            throw new FormatException(
                $"case '{id}': no prefix '{parts[2]}'; prefixes are {string.Join(", ", Prefixes)}"
            );
        }

        var operations = new List<CrashOperation>();
        foreach (string name in parts[3].Split(','))
        {
            operations.Add(
                Vocabulary.FirstOrDefault(o => o.Name == name)
                    ?? throw new FormatException(
                        $"case '{id}': no operation '{name}'; operations are KIND@TARGET with KIND W, Wf, T, Tf, Z, Zf, Zn, Zfn, or S alone, and TARGET {string.Join(", ", CrashVocabulary.Targets)}"
                    )
            );
        }

        return new CrashCase(device, parts[2], operations);
    }

    /// <summary>
    /// Runs every cut point of <paramref name="crashCase"/> (or only <paramref name="onlyCut"/>),
    /// writing the trace of each run to <paramref name="trace"/> when given.
    /// </summary>
    public CrashCaseResult Run(CrashCase crashCase, CrashCut? onlyCut = null, TextWriter? trace = null)
    {
        ArgumentNullException.ThrowIfNull(crashCase);
        IReadOnlyList<HostRequest> script = Script(crashCase, out int first);
        var options = new SimOptions(crashCase.Seed, "crash", new WorkloadParameters(), PowerCuts: 1)
        {
            Script = script,
            Hooks = Hooks,
        };
        SimResult counted = SimRunner.Run(
            crashCase.Device.Config,
            options with
            {
                Crash = new CrashPlan(first),
            },
            onlyCut is null ? trace : null
        );
        var violations = new List<CrashViolation>();
        violations.AddRange(counted.Violations.Select(v => new CrashViolation(crashCase, CrashCut.None, v)));
        List<CrashCut> cuts = onlyCut is { } single
            ? [single]
            : [.. AllCuts(counted.CrashNandOperations, crashCase.Operations.Count + 1)];
        foreach (CrashCut cut in cuts.Where(c => c.Kind != CrashCutKind.None))
        {
            CrashPlan plan =
                cut.Kind == CrashCutKind.DuringNand
                    ? new CrashPlan(first, DuringNandOperation: cut.Index)
                    : new CrashPlan(first, AfterCommand: first + (int)cut.Index - 1);
            SimResult result = SimRunner.Run(crashCase.Device.Config, options with { Crash = plan }, trace);
            violations.AddRange(result.Violations.Select(v => new CrashViolation(crashCase, cut, v)));
        }

        return new CrashCaseResult(crashCase, cuts.Count, counted.CrashNandOperations, violations);
    }

    /// <summary>
    /// The prefix, the sequence and the FLUSH that follows it; <paramref name="first"/> is the sequence's first
    /// command.
    /// </summary>
    private static List<HostRequest> Script(CrashCase crashCase, out int first)
    {
        var script = new List<HostRequest>();
        CrashVocabulary.Prefix(crashCase.Device.Config, crashCase.Prefix, script);
        first = script.Count;
        script.AddRange(crashCase.Operations.Select(o => o.Request));
        script.Add(HostRequest.Flush);
        return script;
    }

    /// <summary>
    /// During each of <paramref name="nandOperations"/> NAND operations, then after each of <paramref name="commands"/>
    /// commands.
    /// </summary>
    private static IEnumerable<CrashCut> AllCuts(long nandOperations, int commands)
    {
        for (long j = 1; j <= nandOperations; j++)
        {
            yield return new CrashCut(CrashCutKind.DuringNand, j);
        }

        for (int i = 1; i <= commands; i++)
        {
            yield return new CrashCut(CrashCutKind.AfterCommand, i);
        }
    }

    private CrashDevice Device(string policy, bool plp)
    {
        var settings = new List<string>(DeviceSettings) { $"cache.trimPolicy={policy}" };
        if (plp)
        {
            // The hold-up budget a full dirty cache needs, as the swarm draws it.
            ResolvedConfig without = _load("tiny", [.. settings, .. _overrides]);
            settings.AddRange(["power.plp=true", $"power.plpBudgetPages={CacheConfig.PlpPagesNeeded(without)}"]);
        }

        return new CrashDevice(policy, plp, _load("tiny", [.. settings, .. _overrides]));
    }
}

/// <summary>
/// One of the crash test's devices: the tiny device with a trim policy, with or without power-loss protection.
/// </summary>
/// <param name="Policy">The trim policy.</param>
/// <param name="Plp">Power-loss protection.</param>
/// <param name="Config">The resolved configuration.</param>
public sealed record CrashDevice(string Policy, bool Plp, ResolvedConfig Config)
{
    /// <summary><c>plp</c> or <c>no-plp</c>.</summary>
    public string PlpName => Plp ? "plp" : "no-plp";
}

/// <summary>One command of the vocabulary over one target range.</summary>
/// <param name="Name">As reports write it: the kind (<c>W</c>, <c>Tf</c>, <c>Zfn</c>, ...), <c>@</c>, the
/// target.</param>
/// <param name="Request">The host command.</param>
public sealed record CrashOperation(string Name, HostRequest Request);

/// <summary>A device, a prefix and a sequence of operations.</summary>
/// <param name="Device">The device.</param>
/// <param name="Prefix">What the prefix leaves the targets as: uncached, clean or dirty.</param>
/// <param name="Operations">The sequence.</param>
public sealed record CrashCase(CrashDevice Device, string Prefix, IReadOnlyList<CrashOperation> Operations)
{
    /// <summary>The case as reports and <c>--case</c> write it: <c>split/no-plp/dirty/Tf@sector,S</c>.</summary>
    public string Id => $"{Device.Policy}/{Device.PlpName}/{Prefix}/{string.Join(',', Operations.Select(o => o.Name))}";

    /// <summary>
    /// The seed of every run of this case, from its id (FNV-1a), so a case is one execution wherever it runs.
    /// </summary>
    public ulong Seed
    {
        get
        {
            ulong hash = 0xCBF29CE484222325;
            foreach (char c in Id)
            {
                hash = (hash ^ c) * 0x100000001B3;
            }

            return hash;
        }
    }
}

/// <summary>Where a crash test cuts.</summary>
public enum CrashCutKind
{
    /// <summary>No cut: the run that counts the NAND operations, checked without a cut.</summary>
    None,

    /// <summary>During the Nth NAND operation from the sequence's start.</summary>
    DuringNand,

    /// <summary>Right after the Nth command of the sequence (the FLUSH that follows it last) completes.</summary>
    AfterCommand,
}

/// <summary>One cut point of a case.</summary>
/// <param name="Kind">Where.</param>
/// <param name="Index">Which NAND operation or command, from 1.</param>
public readonly record struct CrashCut(CrashCutKind Kind, long Index)
{
    /// <summary>No cut.</summary>
    public static CrashCut None => new(CrashCutKind.None, 0);

    /// <summary>As reports and <c>--cut</c> write it: <c>nand:3</c>, <c>after:2</c>, <c>none</c>.</summary>
    public override string ToString() =>
        Kind switch
        {
            CrashCutKind.DuringNand => string.Create(CultureInfo.InvariantCulture, $"nand:{Index}"),
            CrashCutKind.AfterCommand => string.Create(CultureInfo.InvariantCulture, $"after:{Index}"),
            _ => "none",
        };

    /// <summary>
    /// Reads <c>nand:N</c>, <c>after:N</c> or <c>none</c>; a <see cref="FormatException"/> says what is wrong.
    /// </summary>
    public static CrashCut Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split(':');
        if (text == "none")
        {
            return None;
        }

        if (
            parts.Length == 2
            && parts[0] is "nand" or "after"
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long index)
            && index >= 1
        )
        {
            return new CrashCut(parts[0] == "nand" ? CrashCutKind.DuringNand : CrashCutKind.AfterCommand, index);
        }

        throw new FormatException(
            $"cut '{text}' is not nand:N (during the Nth NAND operation of the sequence), after:N (after its Nth command) or none"
        );
    }
}

/// <summary>A violation a cut point found.</summary>
/// <param name="Case">The case.</param>
/// <param name="Cut">The cut point.</param>
/// <param name="Violation">What the oracle found.</param>
public sealed record CrashViolation(CrashCase Case, CrashCut Cut, Violation Violation);

/// <summary>What one case found.</summary>
/// <param name="Case">The case.</param>
/// <param name="CutPoints">Cut points run.</param>
/// <param name="NandOperations">NAND operations of the sequence and the FLUSH after it.</param>
/// <param name="Violations">Violations found, at most one per cut point (a run stops at its first check that
/// fails).</param>
public sealed record CrashCaseResult(
    CrashCase Case,
    int CutPoints,
    long NandOperations,
    IReadOnlyList<CrashViolation> Violations
);

/// <summary>
/// The crash test's vocabulary: the commands that change the device or make it durable, with
/// every flag the protocol allows on them (W write, T trim, Z write zeroes; f FUA, n NO_HOLE; S
/// flush), over the targets that matter to a cache of large pages.
/// </summary>
public static class CrashVocabulary
{
    /// <summary>The target ranges, by name.</summary>
    public static readonly string[] Targets =
    [
        "sector",
        "neighbour",
        "first-half",
        "second-half",
        "across",
        "unaligned",
        "last",
    ];

    private const int SectorBytes = FirmwareConfig.SectorBytes;

    private static readonly (string Kind, HostOpcode Opcode, HostCommandOptions Flags)[] s_kinds =
    [
        ("W", HostOpcode.Write, HostCommandOptions.None),
        ("Wf", HostOpcode.Write, HostCommandOptions.ForceUnitAccess),
        ("T", HostOpcode.Trim, HostCommandOptions.None),
        ("Tf", HostOpcode.Trim, HostCommandOptions.ForceUnitAccess),
        ("Z", HostOpcode.WriteZeroes, HostCommandOptions.None),
        ("Zf", HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess),
        ("Zn", HostOpcode.WriteZeroes, HostCommandOptions.NoHole),
        ("Zfn", HostOpcode.WriteZeroes, HostCommandOptions.ForceUnitAccess | HostCommandOptions.NoHole),
    ];

    /// <summary>Every kind over every target, then the flush.</summary>
    public static IReadOnlyList<CrashOperation> For(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var operations = new List<CrashOperation>();
        foreach ((string kind, HostOpcode opcode, HostCommandOptions flags) in s_kinds)
        {
            foreach (string target in Targets)
            {
                (long offset, long length) = Range(config, target);
                operations.Add(new CrashOperation($"{kind}@{target}", new HostRequest(opcode, flags, offset, length)));
            }
        }

        operations.Add(new CrashOperation("S", HostRequest.Flush));
        return operations;
    }

    /// <summary>
    /// A target's bytes. P is the second large page: one sector (P's third), its neighbour, P's
    /// first and second halves, the last sector of P and the first of the page after it (across a
    /// large-page boundary), a range whose ends fall inside sectors (from 1536 bytes into the third
    /// sector to 1536 bytes into the fifth), and the device's last sector.
    /// </summary>
    public static (long Offset, long Length) Range(ResolvedConfig config, string target)
    {
        ArgumentNullException.ThrowIfNull(config);
        long large = config.Get(CacheConfig.LargePageBytes);
        long page = large;
        return target switch
        {
            "sector" => (page + (2 * SectorBytes), SectorBytes),
            "neighbour" => (page + (3 * SectorBytes), SectorBytes),
            "first-half" => (page, large / 2),
            "second-half" => (page + (large / 2), large / 2),
            "across" => ((2 * large) - SectorBytes, 2 * SectorBytes),
            "unaligned" => (page + (2 * SectorBytes) + 1536, 2 * SectorBytes),
            "last" => (DeviceBytes(config) - SectorBytes, SectorBytes),
            _ => throw new ArgumentOutOfRangeException(
                nameof(target),
                target,
                $"targets are {string.Join(", ", Targets)}"
            ),
        };
    }

    /// <summary>
    /// The commands that leave the targets (the second large page, the first sector of the third
    /// and the device's last sector) as <paramref name="prefix"/> says, written and flushed first
    /// so a trim has data to take: <c>dirty</c> writes them again without a flush; <c>uncached</c>
    /// then reads three times the cache's pages of holes elsewhere, which fill without NAND reads
    /// and evict the targets.
    /// </summary>
    public static void Prefix(ResolvedConfig config, string prefix, List<HostRequest> script)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(script);
        long large = config.Get(CacheConfig.LargePageBytes);
        long last = DeviceBytes(config) - SectorBytes;
        HostRequest targets = new(HostOpcode.Write, HostCommandOptions.None, large, large + SectorBytes);
        HostRequest lastSector = new(HostOpcode.Write, HostCommandOptions.None, last, SectorBytes);
        script.AddRange([targets, lastSector, HostRequest.Flush]);
        switch (prefix)
        {
            case "dirty":
                script.AddRange([targets, lastSector]);
                break;
            case "uncached":
                long pages = config.Get(CacheConfig.Bytes) / large;
                for (long i = 0; i < 3 * pages; i++)
                {
                    script.Add(
                        new HostRequest(
                            HostOpcode.Read,
                            HostCommandOptions.None,
                            (3 + (i % Math.Max(1, (last / large) - 4))) * large,
                            large
                        )
                    );
                }

                break;
        }
    }

    /// <summary>The device's size as the host sees it, for this configuration.</summary>
    public static long DeviceBytes(ResolvedConfig config)
    {
        var layout = new Firmware.Ftl.FtlLayout(FirmwareConfig.Geometry(config));
        return Firmware
                .Ftl.FtlCapacity.Count(
                    layout,
                    FirmwareConfig.Geometry(config).Blocks,
                    config.Get(Firmware.Ftl.FtlConfig.SpareFactor)
                )
                .LogicalSectors * SectorBytes;
    }
}
