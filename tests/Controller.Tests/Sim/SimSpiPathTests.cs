using Controller.Emulator.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

/// <summary>
/// The simulation over the SPI path (hw-config/emulated/w25n01gv-spi.json): the FTL reaches the
/// array through the SPI NAND driver and the emulated chip, and power cuts strike inside the chip's
/// BUSY windows. Fewer seeds than the main campaign: every page goes through the byte protocol.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SimSpiPathTests
{
    // A quarter of the chip and a small cache keep recovery scans short.
    private static readonly string[] Smaller = ["nand.blocksPerDie=256", "cache.bytes=4M"];

    [Theory]
    [InlineData("mixed")]
    [InlineData("uniform-randwrite")]
    public void SeedsWithPowerCutsOverTheSpiPathHoldTheInvariant(string workload)
    {
        ResolvedConfig config = Profiles.Load(Repository.PathOf("hw-config", "emulated", "w25n01gv-spi.json"), Smaller);
        Assert.True(config.Get(Controller.Emulator.EmulatorConfig.SpiPath));
        int cuts = 0,
            tornPrograms = 0;
        for (ulong seed = 1; seed <= 4; seed++)
        {
            SimResult result = SimRunner.Run(
                config,
                new SimOptions(seed, workload, new WorkloadParameters { Ops = 1500 }, PowerCuts: 8)
            );
            Assert.True(
                result.Violations.Count == 0,
                $"seed {seed}: {(result.Violations.Count > 0 ? result.Violations[0] : null)}"
            );
            cuts += result.PowerCuts.Total;
            tornPrograms += result.PowerCuts.TornPrograms;
        }

        Assert.True(cuts >= 4 * 6, $"only {cuts} cuts struck");
        Assert.True(tornPrograms > 0, "no cut fell inside a program's BUSY window");
    }

    [Theory]
    [InlineData("recovery-ignores-trims", "mixed", "resurrected-trim")]
    [InlineData("punch-cleans-whole-page", "db", "lost-durable-write")]
    public void ABrokenVariantIsCaughtOverTheSpiPath(string canary, string workload, string expectedClass)
    {
        // The oracle's canaries over the SPI path. (The flush-before-durable canary cannot live
        // here: the driver waits out BUSY in every program, so a flush never overtakes one.)
        ResolvedConfig config = Profiles.Load(
            Repository.PathOf("hw-config", "emulated", "w25n01gv-spi.json"),
            [.. Smaller, "cache.trimPolicy=zero-fill"]
        );
        SimHooks broken =
            canary == "recovery-ignores-trims"
                ? new SimHooks(Nand: (nand, _) => Sabotage.TrimForgettingNand(nand))
                : new SimHooks(Store: store => Sabotage.PunchForgettingStore(store, config));
        for (ulong seed = 1; seed <= 12; seed++)
        {
            var options = new SimOptions(seed, workload, new WorkloadParameters { Ops = 1500 }, PowerCuts: 8);
            SimResult result = SimRunner.Run(config, options with { Hooks = broken });
            if (result.Violations.Count > 0)
            {
                Assert.True(
                    result.Violations[0].ClassName == expectedClass,
                    $"seed {seed}: expected {expectedClass}, got {result.Violations[0]}"
                );
                Assert.Empty(SimRunner.Run(config, options).Violations);
                return;
            }
        }

        Assert.Fail($"the {canary} canary survived 12 seeds over the SPI path");
    }
}
