using System.Numerics;

namespace Controller.Common;

/// <summary>
/// Latencies in a log-linear histogram (32 buckets per power of two, so within 3.2%), fixed in
/// size: recording allocates nothing, and percentiles are read off the counts. The mean and the
/// maximum are exact.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBucketBits = 5;
    private const int SubBuckets = 1 << SubBucketBits;
    private readonly long[] _counts = new long[64 * SubBuckets];

    /// <summary>Latencies recorded.</summary>
    public long Count { get; private set; }

    /// <summary>The longest latency recorded; 0 when empty.</summary>
    public long Max { get; private set; }

    /// <summary>The mean latency; 0 when empty.</summary>
    public double Mean => Count == 0 ? 0 : (double)_sum / Count;

    private long _sum;

    /// <summary>Records one latency.</summary>
    public void Record(long nanoseconds)
    {
        long value = Math.Max(0, nanoseconds);
        _counts[Bucket(value)]++;
        Count++;
        _sum += value;
        Max = Math.Max(Max, value);
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
        _sum += other._sum;
        Max = Math.Max(Max, other.Max);
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

    /// <summary>
    /// The latency at <paramref name="quantile"/> (0..1), as the upper edge of its bucket; 0 when empty.
    /// </summary>
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
        int mantissa = (int)((value >> (log - SubBucketBits)) & (SubBuckets - 1));
        return ((log - SubBucketBits + 1) * SubBuckets) + mantissa;
    }

    private static long UpperEdge(int bucket)
    {
        if (bucket < SubBuckets)
        {
            return bucket;
        }

        int log = (bucket / SubBuckets) - 1 + SubBucketBits;
        int mantissa = bucket % SubBuckets;
        return ((long)(SubBuckets + mantissa + 1) << (log - SubBucketBits)) - 1;
    }
}
