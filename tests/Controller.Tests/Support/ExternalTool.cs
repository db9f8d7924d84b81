using System.Diagnostics;

namespace Controller.Tests.Support;

/// <summary>
/// The standard clients the interop tests run. A missing tool fails the test under CI=true (CI
/// installs them all) and skips it elsewhere, naming the Debian package that has it.
/// </summary>
internal static class ExternalTool
{
    /// <summary>
    /// The full path of <paramref name="tool"/>, or a failure or skip that names <paramref name="package"/>.
    /// </summary>
    public static string Require(string tool, string package)
    {
        string? found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Prepend("/usr/bin")
            .Select(directory => Path.Combine(directory, tool))
            .FirstOrDefault(File.Exists);
        if (found is not null)
        {
            return found;
        }

        Missing($"{tool} is not installed; install the Debian package {package}");
        return tool;
    }

    /// <summary>
    /// Fails (CI) or skips unless <paramref name="path"/> exists, naming the <paramref name="packages"/> that bring it.
    /// </summary>
    public static string RequireFile(string path, string packages)
    {
        if (!File.Exists(path))
        {
            Missing($"{path} is missing; install the Debian packages {packages}");
        }

        return path;
    }

    private static void Missing(string message)
    {
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            Assert.Fail($"{message} (CI must have it: add it to .ci/run)");
        }

        Skip.If(true, message);
    }

    /// <summary>Runs <paramref name="path"/> with <paramref name="args"/>; returns its exit code and output.</summary>
    public static (int ExitCode, string Output, string Error) Run(string path, params string[] args) =>
        RunIn(null, path, args);

    /// <summary>
    /// As <see cref="Run"/>, in the working directory <paramref name="directory"/> (null: this process's).
    /// </summary>
    public static (int ExitCode, string Output, string Error) RunIn(
        string? directory,
        string path,
        params string[] args
    )
    {
        var start = new ProcessStartInfo(path)
        {
            WorkingDirectory = directory ?? string.Empty,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // /usr/bin first: nbdsh must find the system's python3 with the libnbd module.
        start.Environment["PATH"] = "/usr/bin:" + Environment.GetEnvironmentVariable("PATH");
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"{path} did not start");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{path} {string.Join(' ', args)} did not finish in 5 minutes");
        }

        return (process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }
}
