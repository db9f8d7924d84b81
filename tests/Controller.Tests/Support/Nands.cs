using Controller.Emulator;
using Controller.Emulator.Nand;
using Controller.Emulator.Time;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;

namespace Controller.Tests.Support;

/// <summary>Emulated NAND arrays for tests, built from the shipped tiny profile plus overrides.</summary>
internal static class Nands
{
    public static string TinyProfile => Repository.PathOf("hw-config", "emulated", "tiny.json");

    public static ResolvedConfig TinyConfig(params string[] overrides) =>
        ConfigLoader.Load(EmulatorConfig.Schema, TinyProfile, overrides);

    public static EmulatedNand Tiny(VirtualClock clock, params string[] overrides) =>
        EmulatedNand.InMemory(TinyConfig(overrides), clock);

    /// <summary>
    /// Small arrays of each shape the FTL must handle: "tiny" (4 KiB pages, one sector per unit),
    /// "default" (16 KiB pages, four sectors per unit) and "w25n01gv" (2 KiB pages, a sector
    /// across two pages), each cut down to a few hundred blocks or fewer so tests stay fast.
    /// </summary>
    public static EmulatedNand Shape(string shape, VirtualClock clock, params string[] overrides)
    {
        (string file, string[] shrink) = shape switch
        {
            "tiny" => (TinyProfile, Array.Empty<string>()),
            "default" => (
                Repository.PathOf("hw-config", "emulated", "default.json"),
                new[] { "nand.blocksPerDie=32", "nand.pagesPerBlock=16", "faults.factoryBadBlockFraction=0.02" }
            ),
            "w25n01gv" => (
                Repository.PathOf("hw-config", "chips", "w25n01gv.json"),
                new[] { "nand.blocksPerDie=128", "nand.pagesPerBlock=32" }
            ),
            _ => throw new ArgumentException($"no shape {shape}", nameof(shape)),
        };
        return EmulatedNand.InMemory(ConfigLoader.Load(EmulatorConfig.Schema, file, [.. shrink, .. overrides]), clock);
    }

    public static byte[] Pattern(NandGeometry geometry, int seed, int length = -1)
    {
        var bytes = new byte[length < 0 ? geometry.PageBytes : length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] Spare(NandGeometry geometry, byte fill = 0xA5)
    {
        var spare = new byte[geometry.SpareBytes];
        Array.Fill(spare, fill);
        spare[0] = 0xFF;
        return spare;
    }

    /// <summary>Advances the clock to the completion and returns it.</summary>
    public static NandCompletion Await(this VirtualClock clock, NandCompletion completion)
    {
        if (completion.CompletesAtNanoseconds > clock.NowNanoseconds)
        {
            clock.AdvanceTo(completion.CompletesAtNanoseconds);
        }

        return completion;
    }
}
