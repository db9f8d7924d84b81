using System.Globalization;
using Controller.Firmware.Config;

namespace Controller.Emulator.Nand;

/// <summary>
/// The fault model of the emulated NAND, one record of knobs in the manner of Linux nandsim:
/// factory-bad blocks, bit errors that grow with wear, weak blocks that fail after N erases, and
/// program and erase failures drawn with a probability. Every draw comes from one seeded PRNG.
/// </summary>
public sealed record NandFaultOptions
{
    /// <summary>Seed of the NAND's own PRNG (bit errors, failures, power-cut outcomes, factory marks).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Fraction of blocks marked bad at the factory when a new array is made (block 0 never is).</summary>
    public double FactoryBadBlockFraction { get; init; }

    /// <summary>Raw bit error rate of a fresh block, per bit read.</summary>
    public double RawBitErrorRate { get; init; }

    /// <summary>How many times the raw bit error rate has grown when a block reaches its rated endurance.</summary>
    public double WearBitErrorGrowth { get; init; } = 1000;

    /// <summary>Probability that a program fails (P-FAIL).</summary>
    public double ProgramFailProbability { get; init; }

    /// <summary>Probability that an erase fails (E-FAIL).</summary>
    public double EraseFailProbability { get; init; }

    /// <summary>Weak blocks: block number to the erase count from which every erase of it fails.</summary>
    public IReadOnlyDictionary<int, int> WeakBlocks { get; init; } = new Dictionary<int, int>();

    /// <summary>The options a configuration describes.</summary>
    public static NandFaultOptions FromConfig(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new NandFaultOptions
        {
            Seed = (ulong)config.Get(EmulatorConfig.FaultSeed),
            FactoryBadBlockFraction = config.Get(EmulatorConfig.FactoryBadBlockFraction),
            RawBitErrorRate = config.Get(EmulatorConfig.RawBitErrorRate),
            WearBitErrorGrowth = config.Get(EmulatorConfig.WearBitErrorGrowth),
            ProgramFailProbability = config.Get(EmulatorConfig.ProgramFailProbability),
            EraseFailProbability = config.Get(EmulatorConfig.EraseFailProbability),
            WeakBlocks = ParseWeakBlocks(config.Get(EmulatorConfig.WeakBlocks), out _) ?? new Dictionary<int, int>(),
        };
    }

    /// <summary>
    /// Parses nandsim's weak-block syntax, <c>block:erases[,block:erases...]</c>. Returns null and a
    /// reason when the text is malformed.
    /// </summary>
    public static Dictionary<int, int>? ParseWeakBlocks(string text, out string reason)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new Dictionary<int, int>();
        foreach (
            string entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        )
        {
            string[] parts = entry.Split(':');
            if (
                parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int block)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int erases)
            )
            {
                reason = $"'{entry}' is not block:erases (e.g. \"12:100,40:5\")";
                return null;
            }

            if (!result.TryAdd(block, erases))
            {
                reason = $"block {block} is listed twice";
                return null;
            }
        }

        reason = string.Empty;
        return result;
    }
}
