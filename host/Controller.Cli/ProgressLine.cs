using System.Diagnostics;
using System.Globalization;

namespace Controller.Cli;

/// <summary>
/// Progress of long work on standard error: on a terminal one line rewritten in place (at most
/// five times a second), redirected a plain line now and then (every <c>plainEvery</c>), so a log
/// shows the work going on without a line per step.
/// </summary>
public sealed class ProgressLine(TextWriter writer, bool terminal, TimeSpan plainEvery)
{
    private readonly Stopwatch _wall = Stopwatch.StartNew();
    private TimeSpan? _last;
    private int _shown;

    /// <summary>Wall time since the work started.</summary>
    public TimeSpan Elapsed => _wall.Elapsed;

    /// <summary>True when a line shown now would be shown (so its text is only made when it is).</summary>
    public bool Due =>
        _last is not { } last || _wall.Elapsed - last >= (terminal ? TimeSpan.FromMilliseconds(200) : plainEvery);

    /// <summary>Shows <paramref name="text"/> if it is time to (or <paramref name="now"/>).</summary>
    public void Show(string text, bool now = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!now && !Due)
        {
            return;
        }

        _last = _wall.Elapsed;
        if (terminal)
        {
            writer.Write($"\r{text.PadRight(_shown)}");
            _shown = text.Length;
        }
        else
        {
            writer.WriteLine(text);
        }

        writer.Flush();
    }

    /// <summary>
    /// Ends the terminal line where it is, keeping the last progress shown above the work's own output.
    /// </summary>
    public void Keep()
    {
        if (terminal && _shown > 0)
        {
            writer.WriteLine();
            writer.Flush();
            _shown = 0;
        }
    }

    /// <summary>Clears the terminal line, before the work's own output.</summary>
    public void Clear()
    {
        if (terminal && _shown > 0)
        {
            writer.Write($"\r{new string(' ', _shown)}\r");
            writer.Flush();
            _shown = 0;
        }
    }

    /// <summary>"about 2m10s left" from the fraction done so far, or empty before there is a rate.</summary>
    public string TimeLeft(double fractionDone)
    {
        if (fractionDone <= 0 || fractionDone >= 1 || _wall.Elapsed < TimeSpan.FromSeconds(1))
        {
            return string.Empty;
        }

        var left = TimeSpan.FromSeconds(_wall.Elapsed.TotalSeconds * (1 - fractionDone) / fractionDone);
        return "about " + Duration(left) + " left";
    }

    /// <summary>A duration as people read it: 45s, 2m10s, 1h05m.</summary>
    public static string Duration(TimeSpan span) =>
        span.TotalSeconds switch
        {
            < 60 => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0}s"),
            < 3600 => string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes}m{span.Seconds:00}s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h{span.Minutes:00}m"),
        };
}
