using Controller.Board;

namespace Controller.Tests.Board;

/// <summary>
/// Runs an <c>ssd-board</c> command line in this process against a machine of the test's, and captures what it prints.
/// </summary>
internal static class BoardRun
{
    public static (int Code, string Output, string Error) Run(Func<IBoardEnvironment> machine, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = Controller.Board.Program.Run(args, output, error, machine);
        return (code, output.ToString(), error.ToString());
    }
}
