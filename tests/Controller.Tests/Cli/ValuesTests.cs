using Controller.Cli;

namespace Controller.Tests.Cli;

/// <summary>
/// The value syntaxes the three programs share: every form accepted, every refusal naming the option and the value.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ValuesTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("4096", 4096L)]
    [InlineData("4k", 4096L)]
    [InlineData("4K", 4096L)]
    [InlineData("4KiB", 4096L)]
    [InlineData("4kB", 4096L)]
    [InlineData("1M", 1L << 20)]
    [InlineData("2G", 2L << 30)]
    [InlineData("3T", 3L << 40)]
    [InlineData(" 8k ", 8192L)]
    [InlineData("8388607T", 8388607L << 40)]
    public void ASizeTakesBinarySuffixes(string text, long expected)
    {
        Assert.Equal(expected, Values.Size(text, "--bs"));
        Assert.True(Values.TrySize(text, out long value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("k")]
    [InlineData("12q")]
    [InlineData("-4k")]
    [InlineData("1.5M")]
    [InlineData("8388608T")]
    [InlineData("4 k")]
    [InlineData("0x10")]
    public void ANonSizeIsRefusedByName(string text)
    {
        var error = Assert.Throws<UsageException>(() => Values.Size(text, "--bs"));
        Assert.Equal($"--bs '{text}' is not a size (bytes, or a number with k, M, G or T)", error.Message);
        Assert.False(Values.TrySize(text, out long value));
        Assert.Equal(0, value);
    }

    [Theory]
    [InlineData("10", 10.0)]
    [InlineData("10s", 10.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("2m", 120.0)]
    [InlineData("1h", 3600.0)]
    [InlineData("1.5s", 1.5)]
    public void ADurationTakesItsUnit(string text, double seconds) =>
        Assert.Equal(seconds, Values.Duration(text, "--duration").TotalSeconds, 9);

    [Theory]
    [InlineData("0")]
    [InlineData("-1s")]
    [InlineData("soon")]
    [InlineData("10x")]
    [InlineData("NaNs")]
    [InlineData("Infinity")]
    public void ANonDurationIsRefusedByName(string text) =>
        Assert.Equal(
            $"--duration '{text}' is not a duration (10s, 500ms, 2m)",
            Assert.Throws<UsageException>(() => Values.Duration(text, "--duration")).Message
        );

    [Theory]
    [InlineData("0", 0)]
    [InlineData("255", 255)]
    [InlineData("0xab", 0xab)]
    [InlineData("0XFF", 0xff)]
    public void AByteIsDecimalOrHex(string text, int expected) =>
        Assert.Equal((byte)expected, Values.Byte(text, "--pattern"));

    [Theory]
    [InlineData("256")]
    [InlineData("-1")]
    [InlineData("0x100")]
    [InlineData("ab")]
    [InlineData("0x")]
    public void ANonByteIsRefusedByName(string text) =>
        Assert.Equal(
            $"--pattern '{text}' is not a byte (0 to 255, or 0x00 to 0xff)",
            Assert.Throws<UsageException>(() => Values.Byte(text, "--pattern")).Message
        );

    [Fact]
    public void AWholeNumberIsCheckedAgainstItsRangeAtBothEnds()
    {
        Assert.Equal(1, Values.Integer("1", "--ops", 1, 10));
        Assert.Equal(10, Values.Integer("10", "--ops", 1, 10));
        Assert.Equal(-3, Values.Integer("-3", "--seed", -5, 5));
        Assert.Equal(
            "--ops 0 is out of range; expected 1 to 10",
            Assert.Throws<UsageException>(() => Values.Integer("0", "--ops", 1, 10)).Message
        );
        Assert.Equal(
            "--ops 11 is out of range; expected 1 to 10",
            Assert.Throws<UsageException>(() => Values.Integer("11", "--ops", 1, 10)).Message
        );
        Assert.Equal(
            "--ops '1e3' is not a whole number",
            Assert.Throws<UsageException>(() => Values.Integer("1e3", "--ops", 1, 10_000)).Message
        );
    }

    [Fact]
    public void ANumberIsCheckedAgainstItsRangeAtBothEnds()
    {
        Assert.Equal(0.5, Values.Number("0.5", "--mix", 0, 1));
        Assert.Equal(1, Values.Number("1", "--mix", 0, 1));
        Assert.Equal(0, Values.Number("0", "--mix", 0, 1));
        Assert.Equal(
            "--mix 1.5 is out of range; expected 0 to 1",
            Assert.Throws<UsageException>(() => Values.Number("1.5", "--mix", 0, 1)).Message
        );
        Assert.Equal(
            "--mix -0.1 is out of range; expected 0 to 1",
            Assert.Throws<UsageException>(() => Values.Number("-0.1", "--mix", 0, 1)).Message
        );
        Assert.Equal(
            "--mix 'NaN' is not a number",
            Assert.Throws<UsageException>(() => Values.Number("NaN", "--mix", 0, 1)).Message
        );
        Assert.Equal(
            "--mix 'half' is not a number",
            Assert.Throws<UsageException>(() => Values.Number("half", "--mix", 0, 1)).Message
        );
    }
}
