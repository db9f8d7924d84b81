namespace Controller.Firmware.Invariants;

/// <summary>
/// A rule the firmware keeps about its own state was broken: a bug, never an operating error. The
/// message names the rule and the object. Tests and simulation run with the checks on.
/// </summary>
public sealed class InvariantViolationException : InvalidOperationException
{
    /// <summary>Creates the exception for a broken rule.</summary>
    public InvariantViolationException(string message)
        : base(message) { }

    /// <summary>Required by the analyzers.</summary>
    public InvariantViolationException() { }

    /// <summary>Required by the analyzers.</summary>
    public InvariantViolationException(string message, Exception innerException)
        : base(message, innerException) { }
}
