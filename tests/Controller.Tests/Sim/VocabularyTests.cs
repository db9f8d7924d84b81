using Controller.Common;
using Controller.Emulator.Cli;
using Controller.Emulator.Sim;
using Controller.Firmware.Host;
using Controller.Firmware.Loop;
using Controller.Host.Verify;
using Controller.Hosting.Nbd;
using Controller.Nbd;
using Controller.Tests.Support;

namespace Controller.Tests.Sim;

/// <summary>
/// The vocabulary is the protocol: every command and flag the server advertises reaches the
/// loop as some host command, and each of those is drawn by the swarm's workloads and (for those
/// that change the device or make it durable) sent by <c>ssdhost verify</c>, whose ledger and
/// check then judge its durability. A flag added to the server without a workload, a ledger kind
/// and an oracle rule fails here.
/// </summary>
[Trait("Category", "Process")]
public sealed class VocabularyTests
{
    [Fact]
    public void TheSwarmDrawsEveryHostCommandTheServerAdvertises()
    {
        HashSet<(HostOpcode, HostCommandOptions)> advertised = Advertised();
        bool swarmDrawsMixed = Enumerable
            .Range(1, 64)
            .Any(seed =>
                Swarm
                    .Draw(
                        (ulong)seed,
                        (name, sets) => Profiles.Load(name, sets),
                        null,
                        [],
                        null,
                        new WorkloadParameters()
                    )
                    .Workload == "mixed"
            );
        SimWorkload mixed = SimWorkload.Create("mixed", new Prng(1), 64L << 20, new WorkloadParameters());
        var drawn = new HashSet<(HostOpcode, HostCommandOptions)>();
        for (int i = 0; i < 20_000; i++)
        {
            HostRequest request = mixed.Next();
            drawn.Add((request.Opcode, request.Flags));
        }

        Assert.True(swarmDrawsMixed, "the swarm never draws the workload that exercises every command");
        Assert.Empty(Missing(advertised, drawn));

        // The canary of the comparison: a workload that stopped sending FUA trims is caught.
        drawn.Remove((HostOpcode.Trim, HostCommandOptions.ForceUnitAccess));
        Assert.Equal(["Trim ForceUnitAccess"], Missing(advertised, drawn));
    }

    [Fact]
    public async Task VerifySendsEveryCommandAndFlagTheServerAdvertisesThatChangesTheDevice()
    {
        HashSet<(HostOpcode, HostCommandOptions)> changing = [.. Advertised().Where(c => c.Opcode != HostOpcode.Read)];
        using var temp = new TempDirectory();
        using var server = await ServerProcess.StartAsync(temp);
        string ledger = temp.File("vocabulary.ledger");

        var run = await HostRun.RunAsync("verify", server.Uri, "--ledger", ledger, "--ops", "3000", "--size", "1M");

        Assert.True(run.ExitCode == 0, run.Error);
        HashSet<(HostOpcode, HostCommandOptions)> sent =
        [
            .. Ledger
                .Read(ledger, "test")
                .Ops.Select(op =>
                    (
                        op.Kind switch
                        {
                            'W' => HostOpcode.Write,
                            'T' => HostOpcode.Trim,
                            'Z' => HostOpcode.WriteZeroes,
                            _ => HostOpcode.Flush,
                        },
                        (op.Fua ? HostCommandOptions.ForceUnitAccess : HostCommandOptions.None)
                            | (op.NoHole ? HostCommandOptions.NoHole : HostCommandOptions.None)
                    )
                ),
        ];
        Assert.Empty(Missing(changing, sent));
    }

    /// <summary>
    /// What the server advertises, as the host commands it hands the loop: each command its
    /// transmission flags offer (READ and WRITE always, BLOCK_STATUS once negotiated), with each
    /// subset of the flags the server accepts on it that the transmission flags also advertise
    /// (FUA needs SEND_FUA, FAST_ZERO needs SEND_FAST_ZERO, DF needs SEND_DF). FAST_ZERO with
    /// NO_HOLE is refused with ENOTSUP before the loop, so it stands for nothing.
    /// </summary>
    private static HashSet<(HostOpcode Opcode, HostCommandOptions Options)> Advertised()
    {
        NbdExportFeatures features = NbdConnection.AdvertisedFlags(new MemoryExport(1 << 20));
        (NbdCommand Command, bool Offered)[] commands =
        [
            (NbdCommand.Read, true),
            (NbdCommand.Write, !features.HasFlag(NbdExportFeatures.ReadOnly)),
            (NbdCommand.Flush, features.HasFlag(NbdExportFeatures.SendFlush)),
            (NbdCommand.Trim, features.HasFlag(NbdExportFeatures.SendTrim)),
            (NbdCommand.Cache, features.HasFlag(NbdExportFeatures.SendCache)),
            (NbdCommand.WriteZeroes, features.HasFlag(NbdExportFeatures.SendWriteZeroes)),
            (NbdCommand.BlockStatus, true),
        ];
        NbdCommandModifiers advertisedFlags =
            NbdCommandModifiers.NoHole
            | NbdCommandModifiers.RequestOne
            | (features.HasFlag(NbdExportFeatures.SendFua) ? NbdCommandModifiers.Fua : NbdCommandModifiers.None)
            | (
                features.HasFlag(NbdExportFeatures.SendFastZero)
                    ? NbdCommandModifiers.FastZero
                    : NbdCommandModifiers.None
            )
            | (
                features.HasFlag(NbdExportFeatures.SendDontFragment)
                    ? NbdCommandModifiers.DontFragment
                    : NbdCommandModifiers.None
            );
        var result = new HashSet<(HostOpcode, HostCommandOptions)>();
        foreach ((NbdCommand command, bool offered) in commands.Where(c => c.Offered))
        {
            int allowed = (int)(NbdConnection.AllowedFlags(command) & advertisedFlags);
            for (int subset = 0; subset <= allowed; subset++)
            {
                var flags = (NbdCommandModifiers)subset;
                bool refused = flags.HasFlag(NbdCommandModifiers.FastZero) && flags.HasFlag(NbdCommandModifiers.NoHole);
                if ((subset & ~allowed) == 0 && !refused && NbdConnection.HostCommandFor(command, flags) is { } host)
                {
                    result.Add(host);
                }
            }
        }

        Assert.Contains((HostOpcode.Trim, HostCommandOptions.ForceUnitAccess), result);
        return result;
    }

    private static string[] Missing(
        HashSet<(HostOpcode Opcode, HostCommandOptions Options)> advertised,
        HashSet<(HostOpcode, HostCommandOptions)> exercised
    ) =>
        [
            .. advertised
                .Where(c => !exercised.Contains(c))
                .Select(c => $"{c.Opcode} {c.Options}")
                .Order(StringComparer.Ordinal),
        ];
}
