using System.Numerics;

namespace Controller.Firmware.Loop;

/// <summary>
/// Latencies in a log-linear histogram (eight buckets per power of two, so within 12.5%), fixed
/// in size: recording allocates nothing, and percentiles are read off the counts.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBuckets = 8;
    private readonly long[] _counts = new long[64 * SubBuckets];

    /// <summary>Latencies recorded.</summary>
    public long Count { get; private set; }

    /// <summary>Records one latency.</summary>
    public void Record(long nanoseconds)
    {
        _counts[Bucket(Math.Max(0, nanoseconds))]++;
        Count++;
    }

    /// <summary>Adds every latency <paramref name="other"/> recorded (to merge per-worker histograms).</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int bucket = 0; bucket < _counts.Length; bucket++)
        {
            _counts[bucket] += other._counts[bucket];
        }

        Count += other.Count;
    }

    /// <summary>The buckets that hold latencies: each one's upper edge and count, in order.</summary>
    public IEnumerable<(long UpperEdge, long Count)> Buckets()
    {
        for (int bucket = 0; bucket < _counts.Length; bucket++)
        {
            if (_counts[bucket] > 0)
            {
                yield return (UpperEdge(bucket), _counts[bucket]);
            }
        }
    }

    /// <summary>The latency at <paramref name="quantile"/> (0..1), as the upper edge of its bucket; 0 when empty.</summary>
    public long Percentile(double quantile)
    {
        if (Count == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(quantile * Count));
        long seen = 0;
        for (int bucket = 0; bucket < _counts.Length; bucket++)
        {
            seen += _counts[bucket];
            if (seen >= rank)
            {
                return UpperEdge(bucket);
            }
        }

        return UpperEdge(_counts.Length - 1);
    }

    private static int Bucket(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }

        int log = BitOperations.Log2((ulong)value);
        int mantissa = (int)((value >> (log - 3)) & (SubBuckets - 1));
        return (log * SubBuckets) + mantissa - (3 * SubBuckets) + SubBuckets;
    }

    private static long UpperEdge(int bucket)
    {
        if (bucket < SubBuckets)
        {
            return bucket;
        }

        int log = ((bucket - SubBuckets) / SubBuckets) + 3;
        int mantissa = (bucket - SubBuckets) % SubBuckets;
        return ((long)(SubBuckets + mantissa + 1) << (log - 3)) - 1;
    }
}
