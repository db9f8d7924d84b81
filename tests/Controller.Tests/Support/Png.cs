using System.Buffers.Binary;
using System.IO.Compression;

namespace Controller.Tests.Support;

/// <summary>
/// Just enough of PNG to read a browser's screenshot: 8-bit RGB or RGBA, not interlaced (what
/// Chromium writes). Written here because the tests need pixels, not an imaging library.
/// </summary>
internal sealed class Png
{
    private readonly byte[] _pixels;
    private readonly int _channels;

    private Png(int width, int height, int channels, byte[] pixels)
    {
        Width = width;
        Height = height;
        _channels = channels;
        _pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>The pixel at (<paramref name="x"/>, <paramref name="y"/>) as RGB.</summary>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = ((y * Width) + x) * _channels;
            return (_pixels[i], _pixels[i + 1], _pixels[i + 2]);
        }
    }

    public static Png Read(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        if (!file.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }))
        {
            throw new InvalidDataException($"{path} is not a PNG");
        }

        int width = 0,
            height = 0,
            channels = 0;
        using var compressed = new MemoryStream();
        for (int at = 8; at < file.Length; )
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
            ReadOnlySpan<byte> data = file.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                (byte depth, byte color, byte interlace) = (data[8], data[9], data[12]);
                channels = color switch
                {
                    2 => 3,
                    6 => 4,
                    _ => 0,
                };
                if (depth != 8 || channels == 0 || interlace != 0)
                {
                    throw new InvalidDataException(
                        $"{path}: PNG of depth {depth}, color type {color}, interlace {interlace} is not read here"
                    );
                }
            }
            else if (type == "IDAT")
            {
                compressed.Write(data);
            }

            at += 12 + length;
        }

        compressed.Position = 0;
        using var inflate = new ZLibStream(compressed, CompressionMode.Decompress);
        int stride = width * channels;
        byte[] raw = new byte[(stride + 1) * height];
        inflate.ReadExactly(raw);
        byte[] pixels = new byte[stride * height];
        for (int y = 0; y < height; y++)
        {
            byte filter = raw[y * (stride + 1)];
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? pixels[(y * stride) + x - channels] : 0;
                int b = y > 0 ? pixels[((y - 1) * stride) + x] : 0;
                int c = x >= channels && y > 0 ? pixels[((y - 1) * stride) + x - channels] : 0;
                int value = raw[(y * (stride + 1)) + 1 + x];
                pixels[(y * stride) + x] = (byte)(
                    filter switch
                    {
                        0 => value,
                        1 => value + a,
                        2 => value + b,
                        3 => value + ((a + b) / 2),
                        4 => value + Paeth(a, b, c),
                        _ => throw new InvalidDataException($"{path}: unknown PNG filter {filter}"),
                    }
                );
            }
        }

        return new Png(width, height, channels, pixels);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a),
            pb = Math.Abs(p - b),
            pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a
            : pb <= pc ? b
            : c;
    }
}
