using Controller.Common;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;

namespace Controller.Emulator.Nand;

/// <summary>
/// Raw bit errors on reads and what the ECC engine makes of them. A page's error count is Poisson
/// with a mean that grows with its block's wear; ECC corrects a codeword with at most
/// <see cref="EccModel.CorrectableBits"/> errors, and beyond that the read is uncorrectable and the
/// caller gets the wrong bits.
/// </summary>
internal sealed class BitErrorModel
{
    private readonly NandStore _store;
    private readonly NandGeometry _geometry;
    private readonly EccModel _ecc;
    private readonly int _enduranceCycles;
    private readonly Prng _prng;
    private readonly int _codewords;
    private readonly int _spareBytesPerCodeword;
    private readonly uint[] _modelEraseCount;
    private readonly double[] _mean;
    private readonly double[] _zeroProbability;
    private double _rawBitErrorRate;
    private double _wearGrowth;

    /// <summary>
    /// Creates the model over <paramref name="store"/>, whose erase counts drive the wear;
    /// <paramref name="prng"/> is the array's own, so one seed gives one sequence of draws.
    /// </summary>
    public BitErrorModel(NandStore store, EccModel ecc, int enduranceCycles, Prng prng)
    {
        NandGeometry geometry = store.Geometry;
        if (geometry.PageBytes % ecc.CodewordBytes != 0)
        {
            throw new ArgumentException(
                $"an ECC codeword of {ecc.CodewordBytes} bytes does not divide a page of {geometry.PageBytes}",
                nameof(ecc)
            );
        }

        _store = store;
        _geometry = geometry;
        _ecc = ecc;
        _enduranceCycles = enduranceCycles;
        _prng = prng;
        _codewords = geometry.PageBytes / ecc.CodewordBytes;
        _spareBytesPerCodeword = geometry.SpareBytes / _codewords;
        _modelEraseCount = new uint[geometry.Blocks];
        _mean = new double[geometry.Blocks];
        _zeroProbability = new double[geometry.Blocks];
        Array.Fill(_modelEraseCount, uint.MaxValue);
    }

    /// <summary>
    /// Sets the raw bit error rate of a fresh block and its growth at the rated endurance; forgets what was cached.
    /// </summary>
    public void SetRates(double rawBitErrorRate, double wearGrowth)
    {
        _rawBitErrorRate = rawBitErrorRate;
        _wearGrowth = wearGrowth;
        Array.Fill(_modelEraseCount, uint.MaxValue);
    }

    /// <summary>
    /// Draws the raw bit errors of one read of a page of <paramref name="block"/> (its erase count
    /// is read only when bit errors are on). The count over the whole page is Poisson with the
    /// block's wear-dependent error rate; each error lands on a uniformly drawn bit, which is the
    /// same as independent Poisson counts per codeword. An uncorrectable read flips the bits in
    /// <paramref name="data"/> and <paramref name="spare"/>.
    /// </summary>
    public NandCompletion Apply(int block, Span<byte> data, Span<byte> spare, long end)
    {
        if (_rawBitErrorRate <= 0)
        {
            return new NandCompletion(NandStatus.Ok, end);
        }

        // Most reads of a healthy block have no bit error at all: one draw against the cached
        // probability of zero errors decides that without computing the Poisson tail.
        (double mean, double zeroErrors) = ModelOf(block, _store.EraseCounts[block]);
        double u = _prng.NextDouble();
        if (u < zeroErrors)
        {
            return new NandCompletion(NandStatus.Ok, end);
        }

        long pageBits = 8L * (_geometry.PageBytes + _geometry.SpareBytes);
        // Past the zero-error case, the same uniform draw continues the inversion (the count is
        // then at least 1); a worn-out block's large mean takes the approximate draw instead.
        int errors = Math.Max(1, mean > 64 ? _prng.NextPoisson(mean) : Prng.PoissonQuantile(mean, u));

        Span<int> perCodeword = _codewords <= 256 ? stackalloc int[_codewords] : new int[_codewords];
        Span<long> positions = errors <= 256 ? stackalloc long[errors] : new long[errors];
        for (int i = 0; i < errors; i++)
        {
            long bit = (long)_prng.NextUInt64((ulong)pageBits);
            positions[i] = bit;
            perCodeword[CodewordOf(bit / 8)]++;
        }

        int worst = 0;
        foreach (int count in perCodeword)
        {
            worst = Math.Max(worst, count);
        }

        if (worst <= _ecc.CorrectableBits)
        {
            return new NandCompletion(NandStatus.Corrected, end, worst);
        }

        foreach (long bit in positions)
        {
            FlipBit(bit, data, spare);
        }

        return new NandCompletion(NandStatus.Uncorrectable, end, worst);
    }

    /// <summary>
    /// The mean raw bit errors of one read of a page of <paramref name="block"/>, and the
    /// probability that a read has none, cached per block until its erase count changes.
    /// </summary>
    private (double Mean, double ZeroErrors) ModelOf(int block, uint eraseCount)
    {
        if (_modelEraseCount[block] != eraseCount)
        {
            double rate = _rawBitErrorRate * Math.Pow(_wearGrowth, (double)eraseCount / _enduranceCycles);
            double mean = Math.Min(rate, 0.5) * 8.0 * (_geometry.PageBytes + _geometry.SpareBytes);
            _mean[block] = mean;
            _zeroProbability[block] = Math.Exp(-mean);
            _modelEraseCount[block] = eraseCount;
        }

        return (_mean[block], _zeroProbability[block]);
    }

    private int CodewordOf(long byteInPage) =>
        byteInPage < _geometry.PageBytes ? (int)(byteInPage / _ecc.CodewordBytes)
        : _spareBytesPerCodeword == 0 ? _codewords - 1
        : Math.Min(_codewords - 1, (int)((byteInPage - _geometry.PageBytes) / _spareBytesPerCodeword));

    private void FlipBit(long bit, Span<byte> data, Span<byte> spare)
    {
        int byteIndex = (int)(bit / 8);
        byte mask = (byte)(1 << (int)(bit % 8));
        if (byteIndex < _geometry.PageBytes)
        {
            if (data.Length != 0)
            {
                data[byteIndex] ^= mask;
            }
        }
        else if (spare.Length != 0)
        {
            spare[byteIndex - _geometry.PageBytes] ^= mask;
        }
    }
}
