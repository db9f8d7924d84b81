using BenchmarkDotNet.Running;

namespace Controller.Benchmarks;

/// <summary>
/// Runs the micro-benchmarks: <c>dotnet run -c Release --project tests/Controller.Benchmarks -- --filter '*'</c>.
/// Results and the commands that produced them are recorded in docs/PERFORMANCE.md.
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
