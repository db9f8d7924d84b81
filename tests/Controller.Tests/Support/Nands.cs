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
