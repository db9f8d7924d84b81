using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Controller.Firmware.Invariants;

/// <summary>
/// Run-time checks that stay on in every build, the shipping one included, as TigerBeetle keeps its
/// assertions in production: a check costs a compare and a branch, and a firmware that goes on
/// past a broken rule writes bad state to flash. A broken rule is an
/// <see cref="InvariantViolationException"/>; the controller that hosts the firmware stops the
/// device on it (commands fail, nothing is checkpointed over the bad state).
/// </summary>
public static class Invariant
{
    /// <summary>Throws with <paramref name="rule"/> unless <paramref name="condition"/> holds.</summary>
    public static void Holds([DoesNotReturnIf(false)] bool condition, string rule)
    {
        if (!condition)
        {
            Broken(rule);
        }
    }

    /// <summary>Throws: <paramref name="what"/> says which rule broke and on what.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Broken(string what) => throw new InvariantViolationException(what);
}
