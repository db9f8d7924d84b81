using System.Globalization;
using System.Net;
using System.Text;
using OxyPlot;

namespace Controller.Reports;

/// <summary>
/// One self-contained HTML page: a title, paragraphs, tables and charts, written to one file with
/// no external resource (each chart an SVG inside the page as a data URI), so it opens offline, by
/// mail or from a CI artifact alike.
/// </summary>
public sealed class HtmlReport(string title)
{
    /// <summary>Width of every chart in CSS pixels.</summary>
    public const int ChartWidth = 960;

    /// <summary>Height of every chart in CSS pixels.</summary>
    public const int ChartHeight = 360;

    private readonly StringBuilder _body = new();

    /// <summary>How many charts the page holds.</summary>
    public int Charts { get; private set; }

    /// <summary>A section heading.</summary>
    public void Heading(string text) => _body.Append(CultureInfo.InvariantCulture, $"<h2>{Encode(text)}</h2>\n");

    /// <summary>A paragraph of text.</summary>
    public void Paragraph(string text) => _body.Append(CultureInfo.InvariantCulture, $"<p>{Encode(text)}</p>\n");

    /// <summary>A table of <paramref name="headers"/> over <paramref name="rows"/>; numbers align right.</summary>
    public void Table(string caption, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(rows);
        _body.Append(CultureInfo.InvariantCulture, $"<table><caption>{Encode(caption)}</caption>\n<tr>");
        foreach (string header in headers)
        {
            _body.Append(CultureInfo.InvariantCulture, $"<th>{Encode(header)}</th>");
        }

        _body.Append("</tr>\n");
        foreach (IReadOnlyList<string> row in rows)
        {
            _body.Append("<tr>");
            foreach (string cell in row)
            {
                bool number = double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
                _body.Append(
                    CultureInfo.InvariantCulture,
                    $"<td{(number ? " class=\"n\"" : string.Empty)}>{Encode(cell)}</td>"
                );
            }

            _body.Append("</tr>\n");
        }

        _body.Append("</table>\n");
    }

    /// <summary>A two-column table of figures: name, value.</summary>
    public void Figures(string caption, IEnumerable<(string Name, string Value)> figures) =>
        Table(caption, ["figure", "value"], figures.Select(f => (IReadOnlyList<string>)[f.Name, f.Value]));

    /// <summary>A chart, drawn as SVG, with a caption under it.</summary>
    public void Chart(PlotModel model, string caption)
    {
        ArgumentNullException.ThrowIfNull(model);
        string svg = SvgExporter.ExportToString(model, ChartWidth, ChartHeight, isDocument: true);
        string data = Convert.ToBase64String(Encoding.UTF8.GetBytes(svg));
        _body.Append(
            CultureInfo.InvariantCulture,
            $"<figure><img width=\"{ChartWidth}\" height=\"{ChartHeight}\" alt=\"{Encode(model.Title ?? caption)}\" src=\"data:image/svg+xml;base64,{data}\"><figcaption>{Encode(caption)}</figcaption></figure>\n"
        );
        Charts++;
    }

    /// <summary>The whole page.</summary>
    public string Render() =>
        $$"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>{{Encode(title)}}</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; max-width: {{ChartWidth
                + 40}}px; }
            h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
            table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
            caption { text-align: left; font-weight: bold; padding: 4px 0; }
            th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
            td.n { text-align: right; font-variant-numeric: tabular-nums; }
            figure { margin: 16px 0; } figcaption { font-size: 13px; color: #555; }
            img { display: block; }
            </style>
            </head>
            <body>
            <h1>{{Encode(title)}}</h1>
            {{_body}}</body>
            </html>
            """;

    /// <summary>Writes the page to <paramref name="path"/>.</summary>
    public void Write(string path) => File.WriteAllText(path, Render());

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
