using Controller.Firmware.Config;
using Controller.Firmware.Invariants;

namespace Controller.Emulator.Nand;

/// <summary>
/// Datasheet latencies of a NAND part: array read (tR), page program (tPROG), block erase (tBERS),
/// and the speed of the bus that carries page data between controller and die.
/// </summary>
public sealed record NandTiming
{
    /// <summary>Creates the timing; every latency is non-negative and the bus speed positive.</summary>
    public NandTiming(
        long readNanoseconds,
        long programNanoseconds,
        long eraseNanoseconds,
        double channelBytesPerSecond
    )
    {
        ArgumentOutOfRangeException.ThrowIfNegative(readNanoseconds);
        ArgumentOutOfRangeException.ThrowIfNegative(programNanoseconds);
        ArgumentOutOfRangeException.ThrowIfNegative(eraseNanoseconds);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channelBytesPerSecond);
        ReadNanoseconds = readNanoseconds;
        ProgramNanoseconds = programNanoseconds;
        EraseNanoseconds = eraseNanoseconds;
        ChannelBytesPerSecond = channelBytesPerSecond;
    }

    /// <summary>
    /// The datasheet timings <paramref name="config"/> describes (its nand.* latencies and channel speed).
    /// </summary>
    public static NandTiming FromConfig(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new NandTiming(
            (long)Math.Round(config.Get(FirmwareConfig.ReadMicroseconds) * 1000),
            (long)Math.Round(config.Get(FirmwareConfig.ProgramMicroseconds) * 1000),
            (long)Math.Round(config.Get(FirmwareConfig.EraseMicroseconds) * 1000),
            config.Get(FirmwareConfig.ChannelMegabytesPerSecond) * 1e6
        );
    }

    /// <summary>tR: from the read command until the page is in the die's register.</summary>
    public long ReadNanoseconds { get; }

    /// <summary>tPROG: from the end of the data transfer until the page is programmed.</summary>
    public long ProgramNanoseconds { get; }

    /// <summary>tBERS: the time to erase a block.</summary>
    public long EraseNanoseconds { get; }

    /// <summary>How fast the channel moves data between the controller and a die.</summary>
    public double ChannelBytesPerSecond { get; }

    /// <summary>The time the channel is held to move <paramref name="bytes"/> bytes, rounded up.</summary>
    public long TransferNanoseconds(int bytes)
    {
        Invariant.Holds(bytes >= 0, "a transfer moves a non-negative number of bytes");
        return (long)Math.Ceiling(bytes * 1e9 / ChannelBytesPerSecond);
    }
}

/// <summary>The ECC engine: each codeword of a page corrects up to <see cref="CorrectableBits"/> bit errors.</summary>
/// <param name="CodewordBytes">Data bytes covered by one codeword; divides the page size.</param>
/// <param name="CorrectableBits">Bit errors one codeword can correct.</param>
public sealed record EccModel(int CodewordBytes, int CorrectableBits)
{
    /// <summary>The ECC engine <paramref name="config"/> describes.</summary>
    public static EccModel FromConfig(ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new EccModel(
            (int)config.Get(FirmwareConfig.EccCodewordBytes),
            (int)config.Get(FirmwareConfig.EccCorrectableBits)
        );
    }
}
