using System.Diagnostics;

namespace Controller.Tests.Support;

/// <summary>Runs the emulator's command line in a child process, as a user would.</summary>
internal static class EmulatorProcess
{
    /// <summary>The emulator assembly copied beside the tests by the project reference.</summary>
    public static string AssemblyPath => System.IO.Path.Combine(AppContext.BaseDirectory, "ssd-emulator.dll");

    /// <summary>Starts <c>ssd-emulator ARGS</c> with its output redirected.</summary>
    public static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(AssemblyPath);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>Runs <c>ssd-emulator ARGS</c> to the end and returns its exit code and output.</summary>
    public static (int ExitCode, string Output, string Error) Run(params string[] args) =>
        Run(TimeSpan.FromMinutes(2), args);

    /// <summary>As <see cref="Run(string[])"/>, killing the process after <paramref name="timeout"/>.</summary>
    public static (int ExitCode, string Output, string Error) Run(TimeSpan timeout, params string[] args)
    {
        using Process process = Start(args);
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException(
                $"ssd-emulator {string.Join(' ', args)} did not finish in {timeout.TotalMinutes} minutes"
            );
        }

        return (process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }
}
