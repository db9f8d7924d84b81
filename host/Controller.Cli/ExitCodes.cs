namespace Controller.Cli;

/// <summary>
/// The exit codes every verb of the three programs keeps (DESIGN.md section 6): a script can tell a
/// mistake on its own command line from a device that failed.
/// </summary>
public static class ExitCodes
{
    /// <summary>Done: the command did what was asked, every check held.</summary>
    public const int Done = 0;

    /// <summary>The device failed (a command, a mount, a self-test) or a check found violations.</summary>
    public const int Failure = 1;

    /// <summary>Bad input: an unknown verb or option, a malformed value, a file or server that is not there.</summary>
    public const int Usage = 2;

    /// <summary>Stopped by Ctrl-C (SIGINT) before the work was done, as a shell reports it.</summary>
    public const int Interrupted = 130;
}
