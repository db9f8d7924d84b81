using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace Controller.Reports;

/// <summary>A named series of points, for <see cref="Charts.Lines"/>.</summary>
public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>The kinds of chart the reports draw, in one look.</summary>
public static class Charts
{
    /// <summary>
    /// Lines over a shared x axis (time, mostly), with vertical marks at <paramref name="marks"/>
    /// (power cuts), labelled <paramref name="markLabel"/>.
    /// </summary>
    public static PlotModel Lines(
        string title,
        string xTitle,
        string yTitle,
        IEnumerable<Series> series,
        IEnumerable<double>? marks = null,
        string markLabel = ""
    )
    {
        ArgumentNullException.ThrowIfNull(series);
        PlotModel model = Model(title);
        model.Axes.Add(
            new LinearAxis
            {
                Position = AxisPosition.Bottom,
                Title = xTitle,
                MajorGridlineStyle = LineStyle.Dot,
            }
        );
        model.Axes.Add(
            new LinearAxis
            {
                Position = AxisPosition.Left,
                Title = yTitle,
                MajorGridlineStyle = LineStyle.Dot,
                Minimum = 0,
            }
        );
        foreach (Series s in series)
        {
            var line = new LineSeries { Title = s.Name, StrokeThickness = 1.5 };
            line.Points.AddRange(s.Points.Select(p => new DataPoint(p.X, p.Y)));
            model.Series.Add(line);
        }

        bool first = true;
        foreach (double x in marks ?? [])
        {
            model.Annotations.Add(
                new LineAnnotation
                {
                    Type = LineAnnotationType.Vertical,
                    X = x,
                    Color = OxyColors.Firebrick,
                    LineStyle = LineStyle.Dash,
                    Text = first ? markLabel : string.Empty,
                }
            );
            first = false;
        }

        return model;
    }

    /// <summary>Cumulative distributions (a latency CDF per operation) on a logarithmic x axis.</summary>
    public static PlotModel Cdf(string title, string xTitle, IEnumerable<Series> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        PlotModel model = Model(title);
        model.Axes.Add(
            new LogarithmicAxis
            {
                Position = AxisPosition.Bottom,
                Title = xTitle,
                MajorGridlineStyle = LineStyle.Dot,
            }
        );
        model.Axes.Add(
            new LinearAxis
            {
                Position = AxisPosition.Left,
                Title = "fraction of commands",
                Minimum = 0,
                Maximum = 1,
                MajorGridlineStyle = LineStyle.Dot,
            }
        );
        foreach (Series s in series)
        {
            var line = new StairStepSeries { Title = s.Name, StrokeThickness = 1.5 };
            line.Points.AddRange(s.Points.Where(p => p.X > 0).Select(p => new DataPoint(p.X, p.Y)));
            model.Series.Add(line);
        }

        return model;
    }

    /// <summary>
    /// One horizontal bar per labelled bucket (a histogram, or counts by class), the labels down the left.
    /// </summary>
    public static PlotModel Bars(
        string title,
        string labelTitle,
        string valueTitle,
        IReadOnlyList<(string Label, double Value)> bars
    )
    {
        ArgumentNullException.ThrowIfNull(bars);
        PlotModel model = Model(title);
        model.IsLegendVisible = false;
        var categories = new CategoryAxis
        {
            Position = AxisPosition.Left,
            Title = labelTitle,
            GapWidth = 0.2,
            IsZoomEnabled = false,
        };
        categories.Labels.AddRange(bars.Select(b => b.Label));
        model.Axes.Add(categories);
        model.Axes.Add(
            new LinearAxis
            {
                Position = AxisPosition.Bottom,
                Title = valueTitle,
                Minimum = 0,
                MinimumRange = 1,
                MajorGridlineStyle = LineStyle.Dot,
            }
        );
        var series = new BarSeries
        {
            FillColor = OxyColor.FromRgb(0x3b, 0x75, 0xaf),
            LabelFormatString = "{0}",
            LabelPlacement = LabelPlacement.Outside,
        };
        series.Items.AddRange(bars.Select(b => new BarItem(b.Value)));
        model.Series.Add(series);
        return model;
    }

    /// <summary>
    /// The cumulative fraction at each bucket's upper edge of a histogram (edges in <paramref name="scale"/> units).
    /// </summary>
    public static IReadOnlyList<(double X, double Y)> CumulativeOf(
        IEnumerable<(long UpperEdge, long Count)> buckets,
        double scale
    )
    {
        ArgumentNullException.ThrowIfNull(buckets);
        var list = buckets.Where(b => b.Count > 0).ToList();
        double total = list.Sum(b => (double)b.Count);
        double sum = 0;
        var points = new List<(double, double)>(list.Count);
        if (list.Count > 0)
        {
            // The curve starts from nothing just below the first bucket, so a single bucket is a step.
            points.Add((list[0].UpperEdge * scale * 0.9, 0));
        }

        foreach ((long edge, long count) in list)
        {
            sum += count;
            points.Add((edge * scale, total == 0 ? 0 : sum / total));
        }

        return points;
    }

    private static PlotModel Model(string title) =>
        new()
        {
            Title = title,
            TitleFontSize = 14,
            DefaultFontSize = 11,
            Background = OxyColors.White,
            IsLegendVisible = true,
            // Distinct colours for up to seven series (the default palette repeats red at five).
            DefaultColors =
            [
                OxyColor.FromRgb(0x1f, 0x77, 0xb4),
                OxyColor.FromRgb(0xff, 0x7f, 0x0e),
                OxyColor.FromRgb(0x2c, 0xa0, 0x2c),
                OxyColor.FromRgb(0xd6, 0x27, 0x28),
                OxyColor.FromRgb(0x94, 0x67, 0xbd),
                OxyColor.FromRgb(0x8c, 0x56, 0x4b),
                OxyColor.FromRgb(0xe3, 0x77, 0xc2),
            ],
            Legends =
            {
                new OxyPlot.Legends.Legend
                {
                    LegendPosition = OxyPlot.Legends.LegendPosition.BottomCenter,
                    LegendPlacement = OxyPlot.Legends.LegendPlacement.Outside,
                    LegendOrientation = OxyPlot.Legends.LegendOrientation.Horizontal,
                },
            },
        };
}
