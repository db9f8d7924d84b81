namespace Controller.Tests.Support;

/// <summary>Headless Chromium: a page's screenshot, and where its charts are drawn on it.</summary>
internal static class Browser
{
    private const int Width = 1100;

    /// <summary>
    /// Renders <paramref name="html"/> into <paramref name="png"/> (the page's top <paramref name="height"/> pixels).
    /// </summary>
    public static Png Screenshot(string html, string png, int height)
    {
        string chromium = ExternalTool.Require("chromium", "chromium");
        var run = ExternalTool.Run(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            $"--window-size={Width},{height}",
            $"--screenshot={png}",
            new Uri(html).AbsoluteUri
        );
        if (!File.Exists(png))
        {
            throw new InvalidOperationException($"chromium made no screenshot (exit {run.ExitCode}): {run.Error}");
        }

        return Png.Read(png);
    }

    /// <summary>
    /// The boxes the page's images occupy: the page rendered again with every image moved out of
    /// its box and the box painted magenta, so each chart's box is exactly the magenta rectangle.
    /// </summary>
    public static IReadOnlyList<(int Left, int Top, int Right, int Bottom)> ImageBoxes(
        string html,
        string png,
        int height
    )
    {
        string boxes = Path.ChangeExtension(html, ".boxes.html");
        File.WriteAllText(
            boxes,
            File.ReadAllText(html)
                .Replace(
                    "</head>",
                    "<style>img { object-fit: none; object-position: 100000px 100000px; background: #ff00ff; }</style></head>",
                    StringComparison.Ordinal
                )
        );
        Png shot = Screenshot(boxes, png, height);
        var found = new List<(int, int, int, int)>();
        int top = -1;
        for (int y = 0; y <= shot.Height; y++)
        {
            int left = y < shot.Height ? FirstMagenta(shot, y) : -1;
            if (left >= 0 && top < 0)
            {
                top = y;
            }
            else if (left < 0 && top >= 0)
            {
                int x0 = FirstMagenta(shot, top);
                int x1 = x0;
                while (x1 + 1 < shot.Width && shot[x1 + 1, top] == (255, 0, 255))
                {
                    x1++;
                }

                found.Add((x0, top, x1, y - 1));
                top = -1;
            }
        }

        return found;
    }

    /// <summary>The fraction of the pixels in <paramref name="box"/> that are not the page's white.</summary>
    public static double Ink(Png shot, (int Left, int Top, int Right, int Bottom) box)
    {
        long ink = 0,
            all = 0;
        for (int y = box.Top; y <= box.Bottom && y < shot.Height; y++)
        {
            for (int x = box.Left; x <= box.Right && x < shot.Width; x++)
            {
                all++;
                (byte r, byte g, byte b) = shot[x, y];
                ink += r < 240 || g < 240 || b < 240 ? 1 : 0;
            }
        }

        return all == 0 ? 0 : (double)ink / all;
    }

    /// <summary>Whether the box holds colour (a plotted series), not only black and grey (axes, text).</summary>
    public static bool HasColour(Png shot, (int Left, int Top, int Right, int Bottom) box)
    {
        for (int y = box.Top; y <= box.Bottom && y < shot.Height; y++)
        {
            for (int x = box.Left; x <= box.Right && x < shot.Width; x++)
            {
                (byte r, byte g, byte b) = shot[x, y];
                if (Math.Max(r, Math.Max(g, b)) - Math.Min(r, Math.Min(g, b)) > 60)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static int FirstMagenta(Png shot, int y)
    {
        for (int x = 0; x < shot.Width; x++)
        {
            if (shot[x, y] == (255, 0, 255))
            {
                return x;
            }
        }

        return -1;
    }
}
