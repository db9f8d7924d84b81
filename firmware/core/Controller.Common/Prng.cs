using System.Numerics;

namespace Controller.Common;

/// <summary>
/// The one seeded pseudo-random generator of the product (xoshiro256**, seeded through
/// SplitMix64). The firmware never creates randomness of its own: a <see cref="Prng"/> is handed
/// in, so one seed gives one execution on every machine.
/// </summary>
public sealed class Prng
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    /// <summary>Creates a generator whose whole sequence is determined by <paramref name="seed"/>.</summary>
    public Prng(ulong seed)
    {
        Seed = seed;
        ulong state = seed;
        _s0 = SplitMix64(ref state);
        _s1 = SplitMix64(ref state);
        _s2 = SplitMix64(ref state);
        _s3 = SplitMix64(ref state);
        // xoshiro's state must not be all zero; SplitMix64 never yields four zeros in a row.
        if ((_s0 | _s1 | _s2 | _s3) == 0)
        {
            throw new InvalidOperationException("the generator's state is all zeros, which xoshiro256** never leaves");
        }
    }

    /// <summary>The seed this generator started from.</summary>
    public ulong Seed { get; }

    /// <summary>The next 64 uniformly distributed bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>), without modulo bias.</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        }

        return (int)NextUInt64(checked((ulong)maxExclusive));
    }

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>) (Lemire's method).</summary>
    public ulong NextUInt64(ulong maxExclusive)
    {
        if (maxExclusive == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        }

        ulong high = Math.BigMul(NextUInt64(), maxExclusive, out ulong low);
        if (low < maxExclusive)
        {
            ulong threshold = (0 - maxExclusive) % maxExclusive;
            while (low < threshold)
            {
                high = Math.BigMul(NextUInt64(), maxExclusive, out low);
            }
        }

        return high;
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>True with probability <paramref name="probability"/>; consumes one draw even at 0 or 1.</summary>
    public bool Chance(double probability) => NextDouble() < probability;

    /// <summary>
    /// A Poisson-distributed count with mean <paramref name="mean"/>: by inversion for the small
    /// means of bit errors, by the normal approximation for large ones (a worn-out block), so the
    /// cost stays bounded whatever the mean.
    /// </summary>
    public int NextPoisson(double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }

        if (mean > 64)
        {
            double normal = Math.Sqrt(-2 * Math.Log(1 - NextDouble())) * Math.Cos(2 * Math.PI * NextDouble());
            return (int)Math.Max(0, Math.Min(int.MaxValue / 2, Math.Round(mean + (Math.Sqrt(mean) * normal))));
        }

        return PoissonQuantile(mean, NextDouble());
    }

    /// <summary>
    /// The smallest count whose Poisson cumulative probability reaches <paramref name="u"/>: a
    /// Poisson draw by inversion from a uniform draw the caller already holds (for means up to a
    /// few dozen; the loop stops where the probabilities underflow).
    /// </summary>
    public static int PoissonQuantile(double mean, double u)
    {
        double probability = Math.Exp(-mean);
        double cumulative = probability;
        int k = 0;
        while (u > cumulative && probability > 0)
        {
            k++;
            probability *= mean / k;
            cumulative += probability;
        }

        return k;
    }

    /// <summary>
    /// A new generator with its own stream, drawn from this one. Components that need randomness
    /// (the NAND model, the fault injector, the workload) each get a fork, so adding draws in one
    /// does not shift the others.
    /// </summary>
    public Prng Fork() => new(NextUInt64());

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
