namespace Controller.Cli;

/// <summary>A command-line mistake; the message is one line naming the bad option or value. Exit code 2.</summary>
public sealed class UsageException : Exception
{
    /// <summary>Creates the error.</summary>
    public UsageException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers.</summary>
    public UsageException() { }

    /// <summary>Required by the analyzers.</summary>
    public UsageException(string message, Exception innerException)
        : base(message, innerException) { }
}
