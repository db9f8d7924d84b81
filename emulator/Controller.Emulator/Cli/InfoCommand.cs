using System.Globalization;
using System.Text.Json;
using Controller.Cli;
using Controller.Emulator.Nand;
using Controller.Firmware.Config;
using Controller.Firmware.Flash;
using Controller.Firmware.Ftl;

namespace Controller.Emulator.Cli;

/// <summary>
/// <c>ssd-emulator info</c>: the resolved configuration, the geometry and the capacities derived from it.
/// </summary>
internal static class InfoCommand
{
    public static VerbSpec Verb(TextWriter output) =>
        new(
            "info",
            "print the resolved configuration, NAND geometry and capacities",
            "Prints the resolved configuration (every key, with where its value came from), the NAND geometry, and the capacities derived from it.",
            [
                CommonOptions.Config(Profiles.BuiltInNames()),
                CommonOptions.Set,
                new("--json", null, "print the same as JSON, for scripts"),
            ],
            (args, _) => Task.FromResult(Run(args, output))
        )
        {
            Epilogue = "Example:\n  ssd-emulator info --config tiny --set nand.blocksPerDie=128",
        };

    public static int Run(CommandArgs args, TextWriter output)
    {
        ResolvedConfig config = Profiles.Load(args.Single("--config"), args.All("--set"));
        string path = config.File ?? "defaults";
        if (args.Has("--json"))
        {
            WriteJson(path, config, output);
        }
        else
        {
            WriteText(path, config, output);
        }

        return 0;
    }

    private static void WriteText(string path, ResolvedConfig config, TextWriter output)
    {
        NandGeometry geometry = FirmwareConfig.Geometry(config);
        NandTiming timing = NandTiming.FromConfig(config);
        EccModel ecc = EccModel.FromConfig(config);
        output.WriteLine($"profile       {path}");
        output.WriteLine($"description   {config.Get(FirmwareConfig.Description)}");
        output.WriteLine();
        output.WriteLine("configuration (override any key with --set KEY=VALUE)");
        int width = config.Schema.Keys.Max(k => k.Path.Length) + 2;
        foreach (ConfigKey key in config.Schema.Keys.Where(k => k != FirmwareConfig.Description))
        {
            string value = key.Format(config.Get(key));
            string source = config.SourceOf(key) == path ? string.Empty : $"  ({config.SourceOf(key)})";
            output.WriteLine($"  {key.Path.PadRight(width)}{(value.Length == 0 ? "\"\"" : value)}{source}");
        }

        output.WriteLine();
        output.WriteLine("geometry");
        output.WriteLine(
            $"  dies            {geometry.Dies} ({geometry.Channels} channels x {geometry.DiesPerChannel} dies)"
        );
        output.WriteLine(
            $"  blocks          {geometry.Blocks} ({geometry.BlocksPerDie} per die), {Units.Binary(geometry.BlockBytes)} each"
        );
        output.WriteLine(
            $"  pages           {geometry.Pages} ({geometry.PagesPerBlock} per block), {geometry.PageBytes} B data + {geometry.SpareBytes} B spare"
        );
        output.WriteLine(
            $"  ECC             {geometry.PageBytes / ecc.CodewordBytes} codewords of {ecc.CodewordBytes} B per page, each corrects up to {ecc.CorrectableBits} bit errors"
        );
        output.WriteLine("capacity");
        output.WriteLine($"  raw data        {Units.Bytes(geometry.DataBytes)}");
        output.WriteLine($"  raw spare       {Units.Bytes(geometry.SpareBytesTotal)}");
        output.WriteLine(
            $"  4 KiB sectors   {geometry.DataBytes / FirmwareConfig.SectorBytes} raw (user capacity is counted by the FTL)"
        );
        output.WriteLine("timing (per die; dies overlap, transfers on one channel take turns)");
        output.WriteLine(
            $"  page read       {Units.Duration(timing.ReadNanoseconds)} + {Units.Duration(timing.TransferNanoseconds(geometry.PageBytes + geometry.SpareBytes))} transfer"
        );
        output.WriteLine(
            $"  page program    {Units.Duration(timing.TransferNanoseconds(geometry.PageBytes + geometry.SpareBytes))} transfer + {Units.Duration(timing.ProgramNanoseconds)}"
        );
        output.WriteLine($"  block erase     {Units.Duration(timing.EraseNanoseconds)}");
        double programBandwidth =
            geometry.Dies
            * (double)geometry.PageBytes
            / (
                (timing.TransferNanoseconds(geometry.PageBytes + geometry.SpareBytes) + timing.ProgramNanoseconds) / 1e9
            );
        double channelBandwidth =
            geometry.Channels
            * timing.ChannelBytesPerSecond
            * geometry.PageBytes
            / (geometry.PageBytes + geometry.SpareBytes);
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  program peak    {Math.Min(programBandwidth, channelBandwidth) / 1e6:0.#} MB/s with every die busy"
            )
        );
        WriteFtl(config, geometry, output);
        if (config.Get(FirmwareConfig.ChipJedecId).Length > 0)
        {
            output.WriteLine("chip");
            output.WriteLine(
                $"  part            {config.Get(FirmwareConfig.ChipName)}, JEDEC ID {config.Get(FirmwareConfig.ChipJedecId)}"
            );
        }
    }

    /// <summary>
    /// How the FTL will count the user capacity when it formats this device (before factory-bad blocks, which format
    /// subtracts).
    /// </summary>
    private static void WriteFtl(ResolvedConfig config, NandGeometry geometry, TextWriter output)
    {
        var layout = new FtlLayout(geometry);
        double spareFactor = config.Get(FtlConfig.SpareFactor);
        FtlCapacity capacity = FtlCapacity.Count(layout, geometry.Blocks, spareFactor);
        output.WriteLine("flash translation layer (as a format counts it, before subtracting factory-bad blocks)");
        output.WriteLine(
            $"  write unit      {layout.PagesPerUnit} page(s) holding {layout.SectorsPerUnit} sector(s) of 4 KiB; {layout.SectorsPerBlock} sectors per block"
        );
        output.WriteLine(
            $"  reserved        {FtlLayout.SuperblockBlocks} superblock blocks + {layout.MetadataReserveBlocks} metadata blocks (two checkpoints of {layout.CheckpointBlocks} blocks, and the journal)"
        );
        output.WriteLine($"  data blocks     {capacity.DataBlocks}: T = {capacity.PhysicalSectors} sectors");
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  user capacity   U = floor(T x (1 - {spareFactor})) = {capacity.LogicalSectors} sectors = {Units.Bytes(capacity.LogicalSectors * FirmwareConfig.SectorBytes)}"
            )
        );
        output.WriteLine(
            string.Create(
                CultureInfo.InvariantCulture,
                $"  spare factor    (T - U) / T = {capacity.SpareFactor:0.0000}"
            )
        );
        output.WriteLine(
            $"  GC              foreground below at most {layout.ForegroundGcFreeBlocks} free blocks, background below at most {layout.BackgroundGcFreeBlocks} (less the metadata blocks in use)"
        );
    }

    private static void WriteJson(string path, ResolvedConfig config, TextWriter output)
    {
        NandGeometry geometry = FirmwareConfig.Geometry(config);
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("profile", path);
            writer.WritePropertyName("config");
            config.WriteJson(writer);
            writer.WriteStartObject("derived");
            writer.WriteNumber("dies", geometry.Dies);
            writer.WriteNumber("blocks", geometry.Blocks);
            writer.WriteNumber("pages", geometry.Pages);
            writer.WriteNumber("blockBytes", geometry.BlockBytes);
            writer.WriteNumber("rawDataBytes", geometry.DataBytes);
            writer.WriteNumber("rawSpareBytes", geometry.SpareBytesTotal);
            writer.WriteNumber("rawSectors", geometry.DataBytes / FirmwareConfig.SectorBytes);
            var layout = new FtlLayout(geometry);
            FtlCapacity capacity = FtlCapacity.Count(layout, geometry.Blocks, config.Get(FtlConfig.SpareFactor));
            writer.WriteNumber("ftlDataBlocks", capacity.DataBlocks);
            writer.WriteNumber("ftlPhysicalSectors", capacity.PhysicalSectors);
            writer.WriteNumber("ftlLogicalSectors", capacity.LogicalSectors);
            writer.WriteNumber("ftlUserBytes", capacity.LogicalSectors * FirmwareConfig.SectorBytes);
            writer.WriteNumber("ftlSpareFactor", capacity.SpareFactor);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
