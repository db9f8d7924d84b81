using Controller.Common;
using Controller.Firmware.Loop;

namespace Controller.Tests.Support;

/// <summary>Seeded random and mutated byte streams for the protocol fuzz tests.</summary>
internal static class FuzzBytes
{
    /// <summary><paramref name="length"/> random bytes.</summary>
    public static byte[] Noise(Prng prng, int length)
    {
        byte[] noise = new byte[length];
        for (int i = 0; i < length; i++)
        {
            noise[i] = (byte)prng.NextInt(256);
        }

        return noise;
    }

    /// <summary>A copy of <paramref name="valid"/> with <paramref name="flips"/> bytes changed.</summary>
    public static byte[] Mutate(Prng prng, byte[] valid, int flips)
    {
        byte[] mutated = (byte[])valid.Clone();
        for (int i = 0; i < flips; i++)
        {
            mutated[prng.NextInt(mutated.Length)] ^= (byte)(1 + prng.NextInt(255));
        }

        return mutated;
    }
}

/// <summary>A stream that reads a fixed script and swallows what is written to it.</summary>
internal sealed class ScriptedStream(byte[] script) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = Math.Min(count, script.Length - _position);
        script.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset));
        _position += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) { }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
