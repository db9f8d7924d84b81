using System.Diagnostics;
using System.Globalization;
using Controller.Common;
using Controller.Emulator.Nand;
using Controller.Emulator.Spi;
using Controller.Emulator.Time;
using Controller.Firmware.Cache;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Loop;
using Controller.Hosting;
using Controller.Hosting.Recording;
using Controller.Management;

namespace Controller.Emulator;

/// <summary>
/// The emulated NAND (in memory or in an image file) as a served device: directly, or through the
/// SPI NAND driver and the emulated chip (<c>emulator.spi</c>). On the virtual clock (the
/// emulator) time moves on to each completion and, before background work, to the array's idle
/// instant; with <c>timing.mode=realtime</c> virtual time follows the wall clock, so each command
/// completes when as much wall time has passed as its flash work takes. On the
/// monotonic clock (the board's emulated-SPI profile) the chip is BUSY in real time. Power cuts and
/// injected faults are the emulator's to make.
/// </summary>
public sealed class EmulatedDevice : IServedDevice
{
    private readonly EmulatedNand _array;
    private readonly EmulatedSpiPath? _spi;
    private readonly VirtualClock? _virtualClock;
    private readonly bool _realtime;
    private (long Virtual, long Wall) _anchor;

    private EmulatedDevice(ResolvedConfig config, EmulatedNand array, IClock clock, string description)
    {
        _array = array;
        Clock = clock;
        _virtualClock = clock as VirtualClock;
        _realtime = config.Get(FirmwareConfig.TimingMode) == "realtime";
        _spi = EmulatedSpiPath.FromConfig(config, array, clock);
        FirmwareSeed = (ulong)config.Get(EmulatorConfig.FaultSeed);
        Description = description;
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IClock Clock { get; }

    /// <inheritdoc />
    public INandDevice Nand => _spi?.Driver ?? (INandDevice)_array;

    /// <inheritdoc />
    public ulong FirmwareSeed { get; }

    /// <inheritdoc />
    public bool CanCutPower => true;

    /// <summary>
    /// The NAND <paramref name="config"/> describes, timed by <paramref name="clock"/>: in memory, or
    /// in the image at <paramref name="imagePath"/> (made if missing, opened as it was left if not).
    /// </summary>
    public static EmulatedDevice Open(ResolvedConfig config, string profile, string? imagePath, IClock clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        EmulatedNand array = imagePath is null
            ? EmulatedNand.InMemory(config, clock)
            : EmulatedNand.OpenImage(imagePath, config, clock);
        try
        {
            return new EmulatedDevice(config, array, clock, Describe(profile, imagePath, config));
        }
        catch
        {
            array.Dispose();
            throw;
        }
    }

    /// <summary>What <see cref="Open"/> says the device is, for the banner and a recording's header.</summary>
    public static string Describe(string profile, string? imagePath, ResolvedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        string path = config.Get(EmulatorConfig.SpiPath)
            ? $", SPI NAND {config.Get(FirmwareConfig.ChipName)} over the driver"
            : string.Empty;
        return $"emulated SSD, {profile}{path}{(imagePath is null ? ", in memory" : $", image {imagePath}")}";
    }

    /// <summary>
    /// Boots the firmware on the emulated NAND on a virtual clock (the emulator's <c>serve</c>).
    /// The cache writes to the FTL's sector store, or to what <paramref name="store"/> makes of it.
    /// </summary>
    public static ServedController Boot(
        ResolvedConfig config,
        string profile,
        string? imagePath,
        string name,
        Func<ISectorStore, ISectorStore>? store = null,
        SessionRecorder? recorder = null
    )
    {
        EmulatedDevice device = Open(config, profile, imagePath, new VirtualClock());
        try
        {
            return new ServedController(device, config, name, store, recorder);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public bool JumpsToEvents => _virtualClock is not null && !_realtime;

    /// <inheritdoc />
    public void AttachFirmwareClock(IClock firmwareClock)
    {
        // Through the SPI driver and the emulated chip, the driver polls the chip on the device's
        // clock: one operation at a time, as on a board.
        if (_spi is null)
        {
            _array.IssueClock = firmwareClock;
        }
    }

    /// <inheritdoc />
    public void JumpTo(long nanoseconds) =>
        _virtualClock!.AdvanceTo(Math.Max(_virtualClock.NowNanoseconds, nanoseconds));

    /// <inheritdoc />
    public void FollowWallClock(bool quiet)
    {
        if (_virtualClock is null || !_realtime)
        {
            return;
        }

        if (quiet)
        {
            _anchor = (_virtualClock.NowNanoseconds, Stopwatch.GetTimestamp());
            return;
        }

        long followed = _anchor.Virtual + (Stopwatch.GetElapsedTime(_anchor.Wall).Ticks * 100);
        _virtualClock.AdvanceTo(Math.Max(_virtualClock.NowNanoseconds, followed));
    }

    /// <inheritdoc />
    public void Idle()
    {
        // The wall time that passed let the NAND finish what it was given, so the next background
        // step starts on an idle array. (Without this, background work would queue ever further
        // ahead of a clock nothing moves, and every read would wait behind it.)
        _virtualClock?.AdvanceTo(Math.Max(_virtualClock.NowNanoseconds, _array.IdleAtNanoseconds));
    }

    /// <inheritdoc />
    public int CutPower()
    {
        int torn = _array.PowerCut().Count;
        _array.PowerOn();
        _spi?.PowerOn();
        return torn;
    }

    /// <inheritdoc />
    public FaultSettings SetFaults(FaultRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        CheckRange(request.RawBitErrorRate, "rawBitErrorRate", EmulatorConfig.RawBitErrorRate.Max);
        CheckRange(request.ProgramFailProbability, "programFailProbability", 1);
        CheckRange(request.EraseFailProbability, "eraseFailProbability", 1);
        if (request.FailNextPrograms is < 0 || request.FailNextErases is < 0)
        {
            throw new ArgumentException(
                $"failNextPrograms ({request.FailNextPrograms}) and failNextErases ({request.FailNextErases}) count operations: 0 or more"
            );
        }

        NandFaultOptions faults = _array.Faults;
        _array.SetFaultRates(
            request.RawBitErrorRate ?? faults.RawBitErrorRate,
            request.ProgramFailProbability ?? faults.ProgramFailProbability,
            request.EraseFailProbability ?? faults.EraseFailProbability
        );
        _array.FailNext(request.FailNextPrograms ?? 0, request.FailNextErases ?? 0);
        return new FaultSettings
        {
            RawBitErrorRate = _array.Faults.RawBitErrorRate,
            ProgramFailProbability = _array.Faults.ProgramFailProbability,
            EraseFailProbability = _array.Faults.EraseFailProbability,
        };
    }

    /// <inheritdoc />
    public void Dispose() => _array.Dispose();

    private static void CheckRange(double? value, string name, double max)
    {
        if (value is { } v && !(v >= 0 && v <= max))
        {
            throw new ArgumentOutOfRangeException(
                name,
                v,
                string.Create(CultureInfo.InvariantCulture, $"{name} is a probability from 0 to {max}, not {v}")
            );
        }
    }
}
