using Controller.Common;
using Controller.Tests.Support;

namespace Controller.Tests.Tidy;

[Trait("Category", "Unit")]
public sealed class DeterminismTidyTests
{
    private static string FirmwareDirectory => Repository.PathOf("firmware", "core");

    [Fact]
    public void TheFirmwareUsesNoWallClockSleepUnseededRandomnessThreadsOrTasks()
    {
        IReadOnlyList<string> findings = DeterminismTidy.ScanDirectory(FirmwareDirectory);

        Assert.True(
            findings.Count == 0,
            "The firmware must stay deterministic (DESIGN.md section 5):\n" + string.Join('\n', findings)
        );
        Assert.True(
            Directory.EnumerateFiles(FirmwareDirectory, "*.cs", SearchOption.AllDirectories).Count() > 5,
            "the scan found the firmware's sources"
        );
    }

    [Theory]
    [InlineData("var t = DateTime.Now;")]
    [InlineData("var t = DateTime.UtcNow;")]
    [InlineData("var t = DateTimeOffset.UtcNow;")]
    [InlineData("var s = Stopwatch.StartNew();")]
    [InlineData("long t = Environment.TickCount64;")]
    [InlineData("int t = Environment.TickCount;")]
    [InlineData("Thread.Sleep(10);")]
    [InlineData("var r = new Random();")]
    [InlineData("var r = new Random(42);")]
    [InlineData("int n = Random.Shared.Next();")]
    [InlineData("Task.Run(() => Work());")]
    [InlineData("await Task.Delay(5);")]
    [InlineData("var t = new Thread(Work);")]
    [InlineData("public async void Handler() { }")]
    [InlineData("ThreadPool.QueueUserWorkItem(_ => Work());")]
    [InlineData("var id = Guid.NewGuid();")]
    [InlineData("Task.Factory.StartNew(Work);")]
    [InlineData("var t = new Task(Work);")]
    [InlineData("Debug.Assert(valid >= 0, \"counted\");")]
    [InlineData("System.Diagnostics.Debug.Assert(ok);")]
    [InlineData("var t = new System.Threading.Timer(_ => Work());")]
    [InlineData("Random r = new();")]
    [InlineData("Thread t = new(Work);")]
    [InlineData("string s = $\"now {DateTime.UtcNow}\";")]
    [InlineData("string s = $@\"now {Random.Shared.Next()}\";")]
    [InlineData("string s = $\"\"\"now {Environment.TickCount64}\"\"\";")]
    public void EachBannedConstructIsFound(string line)
    {
        Assert.Single(DeterminismTidy.ScanSource($"class C {{ void M() {{ {line} }} }}"));
    }

    [Theory]
    [InlineData("// never call DateTime.Now here")]
    [InlineData("/* Thread.Sleep would block the loop */")]
    [InlineData("string s = \"Task.Run is banned\";")]
    [InlineData("string s = @\"new Random() is banned\";")]
    [InlineData("long now = clock.NowNanoseconds;")]
    [InlineData("var prng = new Prng(seed);")]
    [InlineData("async Task HandleAsync() { }")]
    [InlineData("string s = $\"literal DateTime.Now {count} and {{Thread.Sleep}}\";")]
    public void CommentsStringsAndAllowedCodeAreNotFound(string line)
    {
        Assert.Empty(DeterminismTidy.ScanSource($"class C {{ void M() {{ {line} }} }}"));
    }

    [Fact]
    public void ACopyOfTheFirmwareWithOneWallClockReadFailsTheScan()
    {
        // The canary: the same scan over a copy of the firmware with one banned line added must fail.
        using var temp = new TempDirectory();
        foreach (string file in Directory.EnumerateFiles(FirmwareDirectory, "*.cs", SearchOption.AllDirectories))
        {
            string target = Path.Combine(temp.Path, Path.GetRelativePath(FirmwareDirectory, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        Assert.Empty(DeterminismTidy.ScanDirectory(temp.Path));
        string clock = Path.Combine(temp.Path, "Controller.Common", "IClock.cs");
        File.AppendAllText(
            clock,
            "\ninternal static class Leak { public static long Now() => DateTime.UtcNow.Ticks; }\n"
        );

        string finding = Assert.Single(DeterminismTidy.ScanDirectory(temp.Path));
        Assert.StartsWith(Path.Combine("Controller.Common", "IClock.cs") + ":", finding, StringComparison.Ordinal);
        Assert.Contains("DateTime.UtcNow", finding, StringComparison.Ordinal);
    }
}
