using System.Globalization;
using System.IO.Compression;

namespace Controller.Traces;

/// <summary>
/// Reads a block trace as a stream of <see cref="TraceRequest"/>s in file order, one pass, without
/// holding the file in memory. Times are moved so the first record is at 0. A line that is
/// not a record of the format (a header, a blkparse summary, a comment) is passed over; a record
/// with a bad field stops the read with a <see cref="TraceFormatException"/> naming the file, the
/// line and the field.
/// </summary>
public static class TraceReader
{
    private const long SectorBytes = 512;

    /// <summary>Reads the file at <paramref name="path"/> (gzip-compressed when its name ends in <c>.gz</c>).</summary>
    public static IEnumerable<TraceRequest> Open(string path, TraceFormat format)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"trace file '{path}' does not exist", path);
        }

        return OpenIterator(path, format);
    }

    /// <summary>Reads <paramref name="text"/>; <paramref name="source"/> names it in messages.</summary>
    public static IEnumerable<TraceRequest> Read(TextReader text, TraceFormat format, string source)
    {
        long origin = -1;
        foreach (TraceRequest raw in Records(text, format, source))
        {
            if (origin < 0)
            {
                origin = raw.TimeNanoseconds;
            }

            yield return raw with
            {
                TimeNanoseconds = Math.Max(0, raw.TimeNanoseconds - origin),
            };
        }

        if (origin < 0)
        {
            // Formats whose readers pass over lines that are not requests (blkparse's summaries,
            // CSV headers) would otherwise read a file of another format as an empty trace.
            throw new TraceFormatException(
                $"{source}: not a single {TraceFormats.NameOf(format)} request in it; is the file in another format?"
            );
        }
    }

    private static IEnumerable<TraceRequest> OpenIterator(string path, TraceFormat format)
    {
        using Stream file = File.OpenRead(path);
        using Stream data = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new GZipStream(file, CompressionMode.Decompress)
            : file;
        using var text = new StreamReader(data);
        foreach (TraceRequest request in Read(text, format, path))
        {
            yield return request;
        }
    }

    private static IEnumerable<TraceRequest> Records(TextReader text, TraceFormat format, string source) =>
        format switch
        {
            TraceFormat.Blkparse => Blkparse(text, source),
            TraceFormat.FioIolog => FioIolog(text, source),
            TraceFormat.MqSim => MqSim(text, source),
            TraceFormat.Msr => Msr(text, source),
            TraceFormat.Spc => Spc(text, source),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "no such trace format"),
        };

    /// <summary>
    /// blkparse's default output, e.g. <c>8,0 3 1 0.000000000 697 D WS 223490 + 8 [jbd2]</c>:
    /// device, CPU, sequence, seconds, PID, action, RWBS, sector + count. Only D events count.
    /// </summary>
    private static IEnumerable<TraceRequest> Blkparse(TextReader text, string source)
    {
        long line = 0;
        while (text.ReadLine() is { } content)
        {
            line++;
            string[] f = content.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (
                f.Length < 7
                || !f[0].Contains(',', StringComparison.Ordinal)
                || !char.IsAsciiDigit(f[0][0])
                || f[5] != "D"
            )
            {
                continue;
            }

            var at = new Where(source, line);
            long time = Seconds(f[3], "time", at);
            string rwbs = f[6];
            bool preflush = rwbs.Length > 1 && rwbs[0] == 'F' && "WRDNF".Contains(rwbs[1], StringComparison.Ordinal);
            int position = preflush ? 1 : 0;
            char op = rwbs[position];
            bool fua = rwbs.AsSpan(position + 1).Contains('F');
            bool extent = f.Length >= 10 && f[8] == "+";
            long offset = extent ? Number(f[7], "sector", at) * SectorBytes : 0;
            long length = extent ? Number(f[9], "sector count", at) * SectorBytes : 0;
            TraceOperation? operation = op switch
            {
                'R' => TraceOperation.Read,
                'W' => TraceOperation.Write,
                'D' => TraceOperation.Trim,
                'F' => TraceOperation.Flush,
                'N' => preflush ? TraceOperation.Flush : null,
                _ => throw at.Error($"RWBS '{rwbs}' has no operation blkparse writes (R, W, D, F or N)"),
            };
            if (operation is not { } o)
            {
                continue;
            }

            if (o == TraceOperation.Flush)
            {
                yield return new TraceRequest(line, time, TraceOperation.Flush, 0, 0);
                continue;
            }

            if (preflush)
            {
                yield return new TraceRequest(line, time, TraceOperation.Flush, 0, 0);
            }

            if (length > 0)
            {
                yield return new TraceRequest(line, time, o, offset, length, fua);
            }
            else if (fua)
            {
                // A FUA request without data has nothing to write through: it flushes.
                yield return new TraceRequest(line, time, TraceOperation.Flush, 0, 0);
            }
        }
    }

    /// <summary>
    /// fio's iolog: a first line <c>fio version 2 iolog</c> or <c>fio version 3 iolog</c>, then
    /// <c>[time-us] file action [offset length]</c>. Version 2 has no times: a record's time is the
    /// sum of the <c>wait</c> lines before it (0 in a log without waits: every record arrives at once).
    /// </summary>
    private static IEnumerable<TraceRequest> FioIolog(TextReader text, string source)
    {
        string? header = text.ReadLine();
        int version = header?.Trim() switch
        {
            "fio version 2 iolog" => 2,
            "fio version 3 iolog" => 3,
            _ => throw new Where(source, 1).Error(
                $"the first line is '{header}', not 'fio version 2 iolog' or 'fio version 3 iolog' (version 1 logs are not read)"
            ),
        };
        int first = version == 3 ? 1 : 0;
        long line = 1;
        long waited = 0;
        while (text.ReadLine() is { } content)
        {
            line++;
            string[] f = content.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0)
            {
                continue;
            }

            var at = new Where(source, line);
            if (f.Length < first + 2)
            {
                throw at.Error(
                    $"'{content}' is not '{(version == 3 ? "time " : string.Empty)}file action [offset length]'"
                );
            }

            long time = version == 3 ? Number(f[0], "time", at) * 1000 : waited;
            string action = f[first + 1];
            long Field(int i, string what) =>
                f.Length > first + i ? Number(f[first + i], what, at) : throw at.Error($"'{action}' needs its {what}");
            switch (action)
            {
                case "add" or "open" or "close":
                    break;
                case "wait" when version == 2:
                    waited += Field(2, "wait in microseconds") * 1000;
                    break;
                case "read":
                    yield return new TraceRequest(
                        line,
                        time,
                        TraceOperation.Read,
                        Field(2, "offset"),
                        Field(3, "length")
                    );
                    break;
                case "write":
                    yield return new TraceRequest(
                        line,
                        time,
                        TraceOperation.Write,
                        Field(2, "offset"),
                        Field(3, "length")
                    );
                    break;
                case "trim":
                    yield return new TraceRequest(
                        line,
                        time,
                        TraceOperation.Trim,
                        Field(2, "offset"),
                        Field(3, "length")
                    );
                    break;
                case "sync" or "datasync":
                    yield return new TraceRequest(line, time, TraceOperation.Flush, 0, 0);
                    break;
                default:
                    throw at.Error(
                        $"action '{action}' is not one fio writes (add, open, close, read, write, trim, sync, datasync{(version == 2 ? ", wait" : string.Empty)})"
                    );
            }
        }
    }

    /// <summary>MQSim's ASCII trace: <c>time-ns device lba sectors type</c> (0 write, 1 read).</summary>
    private static IEnumerable<TraceRequest> MqSim(TextReader text, string source)
    {
        long line = 0;
        while (text.ReadLine() is { } content)
        {
            line++;
            string[] f = content.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0 || f[0].StartsWith('#'))
            {
                continue;
            }

            var at = new Where(source, line);
            if (f.Length < 5)
            {
                throw at.Error($"'{content}' is not 'time device lba sectors type'");
            }

            TraceOperation operation = f[4] switch
            {
                "0" => TraceOperation.Write,
                "1" => TraceOperation.Read,
                _ => throw at.Error($"type '{f[4]}' is neither 0 (write) nor 1 (read)"),
            };
            yield return new TraceRequest(
                line,
                Number(f[0], "time", at),
                operation,
                Number(f[2], "lba", at) * SectorBytes,
                Number(f[3], "size in sectors", at) * SectorBytes
            );
        }
    }

    /// <summary>The MSR Cambridge CSV: <c>Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime</c>.</summary>
    private static IEnumerable<TraceRequest> Msr(TextReader text, string source)
    {
        long line = 0;
        long firstTicks = -1;
        while (text.ReadLine() is { } content)
        {
            line++;
            string[] f = content.Split(',');
            if (content.Length == 0 || (line == 1 && !char.IsAsciiDigit(content[0])))
            {
                continue;
            }

            var at = new Where(source, line);
            if (f.Length < 6)
            {
                throw at.Error($"'{content}' is not 'Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime'");
            }

            TraceOperation operation = f[3].Trim().ToUpperInvariant() switch
            {
                "READ" => TraceOperation.Read,
                "WRITE" => TraceOperation.Write,
                _ => throw at.Error($"type '{f[3]}' is neither Read nor Write"),
            };
            // Windows file times (100 ns ticks since 1601) overflow nanoseconds: count from the first.
            long ticks = Number(f[0].Trim(), "timestamp", at, long.MaxValue);
            firstTicks = firstTicks < 0 ? ticks : firstTicks;
            long since = ticks - firstTicks;
            yield return new TraceRequest(
                line,
                since > long.MaxValue / 100
                    ? throw at.Error($"timestamp '{f[0]}' is out of range")
                    : Math.Max(0, since) * 100,
                operation,
                Number(f[4].Trim(), "offset", at),
                Number(f[5].Trim(), "size", at)
            );
        }
    }

    /// <summary>The SPC format: <c>ASU,LBA,Size,Opcode,Timestamp</c> (further fields ignored).</summary>
    private static IEnumerable<TraceRequest> Spc(TextReader text, string source)
    {
        long line = 0;
        while (text.ReadLine() is { } content)
        {
            line++;
            if (content.Length == 0 || content[0] == '#')
            {
                continue;
            }

            string[] f = content.Split(',');
            var at = new Where(source, line);
            if (f.Length < 5)
            {
                throw at.Error($"'{content}' is not 'ASU,LBA,Size,Opcode,Timestamp'");
            }

            TraceOperation operation = f[3].Trim() switch
            {
                "r" or "R" => TraceOperation.Read,
                "w" or "W" => TraceOperation.Write,
                _ => throw at.Error($"opcode '{f[3]}' is neither r nor w"),
            };
            _ = Number(f[0].Trim(), "ASU", at);
            yield return new TraceRequest(
                line,
                Seconds(f[4].Trim(), "timestamp", at),
                operation,
                Number(f[1].Trim(), "LBA", at) * SectorBytes,
                Number(f[2].Trim(), "size", at)
            );
        }
    }

    private static long Number(string field, string what, Where at, long max = long.MaxValue / SectorBytes) =>
        long.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out long value) && value <= max
            ? value
            : throw at.Error($"{what} '{field}' is not a whole number of at most {max}");

    /// <summary>Seconds written as digits, a point and up to nine decimals, exactly, in nanoseconds.</summary>
    private static long Seconds(string field, string what, Where at)
    {
        int point = field.IndexOf('.', StringComparison.Ordinal);
        string whole = point < 0 ? field : field[..point];
        string fraction = point < 0 ? string.Empty : field[(point + 1)..];
        if (
            whole.Length == 0
            || whole.Length > 9
            || fraction.Length > 9
            || !long.TryParse(whole, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds)
            || (fraction.Length > 0 && !long.TryParse(fraction, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        )
        {
            throw at.Error($"{what} '{field}' is not seconds such as 12.000345");
        }

        long nanoseconds =
            fraction.Length == 0
                ? 0
                : long.Parse(fraction.PadRight(9, '0'), NumberStyles.None, CultureInfo.InvariantCulture);
        return (seconds * 1_000_000_000) + nanoseconds;
    }

    private readonly record struct Where(string Source, long Line)
    {
        public TraceFormatException Error(string message) => new($"{Source}:{Line}: {message}");
    }
}
