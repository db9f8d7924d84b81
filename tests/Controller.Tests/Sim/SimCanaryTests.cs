using Controller.Emulator.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Host;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

/// <summary>
/// The oracle's canaries: the shipping firmware in each deliberately broken surrounding
/// (<see cref="Sabotage"/>: a NAND or a store that misbehaves, a host command that loses a flag)
/// must be caught by the swarm
/// with power cuts within a few seeds, with the class of violation its bug produces (a flush that
/// returns early loses writes or lets trims come back, whichever the cut finds), and the seed
/// that caught it must pass with the firmware unbroken (so it is the canary that was caught).
/// </summary>
[Trait("Category", "Unit")]
public sealed class SimCanaryTests
{
    private const int MaxSeeds = 24;

    [Theory]
    [InlineData("punch-cleans-whole-page", "db", "lost-durable-write")]
    [InlineData("write-into-hole-breaks-invariant", "db", "dead-device")]
    [InlineData("flush-before-durable", "mixed", "lost-durable-write|resurrected-trim")]
    [InlineData("recovery-ignores-trims", null, "resurrected-trim")]
    [InlineData("erase-before-relocation-durable", "hot-cold", "lost-durable-write")]
    [InlineData("fua-ignored-on-trim", "mixed", "resurrected-trim")]
    [InlineData("fua-ignored-on-write-zeroes", "mixed", "resurrected-trim")]
    public void EachBrokenVariantIsCaughtWithinAFewSeeds(string canary, string? workload, string expectedClass)
    {
        SimHooks? broken = canary switch
        {
            "punch-cleans-whole-page" => null,
            "write-into-hole-breaks-invariant" => new SimHooks(Store: Sabotage.InvariantBreakingStore),
            "flush-before-durable" => new SimHooks(Nand: (nand, _) => Sabotage.EarlyAcknowledgingNand(nand)),
            "recovery-ignores-trims" => new SimHooks(Nand: (nand, _) => Sabotage.TrimForgettingNand(nand)),
            "erase-before-relocation-durable" => new SimHooks(Nand: Sabotage.EagerErasingNand),
            "fua-ignored-on-trim" => new SimHooks(Command: r =>
                r.Opcode == HostOpcode.Trim ? r with { Flags = r.Flags & ~HostCommandOptions.ForceUnitAccess } : r
            ),
            "fua-ignored-on-write-zeroes" => new SimHooks(Command: r =>
                r.Opcode == HostOpcode.WriteZeroes
                    ? r with
                    {
                        Flags = r.Flags & ~HostCommandOptions.ForceUnitAccess,
                    }
                    : r
            ),
            _ => throw new ArgumentOutOfRangeException(nameof(canary), canary, "no such canary"),
        };

        for (ulong seed = 1; seed <= MaxSeeds; seed++)
        {
            (SwarmDraw draw, SimOptions options) = Seed(seed, workload);
            SimResult result = SimRunner.Run(
                draw.Config,
                options with
                {
                    Hooks = broken ?? PunchForgetting(draw.Config),
                }
            );
            if (result.Violations.Count == 0)
            {
                continue;
            }

            Violation first = result.Violations[0];
            Assert.True(
                expectedClass.Split('|').Contains(first.ClassName),
                $"{canary} on seed {seed} ({draw.Describe()}): expected {expectedClass}, got {first}\n  history: {first.History}"
            );
            Assert.True(
                first.Class != ViolationClass.DeadDevice
                    || first.Detail.Contains("InvariantViolationException", StringComparison.Ordinal),
                $"{canary}: {first}"
            );
            Assert.True(
                first.Class == ViolationClass.DeadDevice || first.History.Length > 0,
                $"{canary}: {first} has no history"
            );
            SimResult sound = SimRunner.Run(draw.Config, options);
            Assert.True(
                sound.Violations.Count == 0,
                $"seed {seed} fails without the canary too: {(sound.Violations.Count > 0 ? sound.Violations[0] : null)}"
            );
            return;
        }

        Assert.Fail($"the {canary} canary survived {MaxSeeds} swarm seeds with power cuts");
    }

    /// <summary>
    /// The store drops the write-back of the data around a hole, in pages of the seed's large-page size.
    /// </summary>
    private static SimHooks PunchForgetting(ResolvedConfig config) =>
        new(Store: store => Sabotage.PunchForgettingStore(store, config));

    private static (SwarmDraw Draw, SimOptions Options) Seed(ulong seed, string? workload)
    {
        SwarmDraw draw = Swarm.Draw(
            seed,
            (name, sets) => Profiles.Load(name, sets),
            null,
            [],
            workload,
            new WorkloadParameters { Ops = 1500 }
        );
        return (draw, new SimOptions(seed, draw.Workload, draw.Parameters, PowerCuts: 8));
    }
}
