namespace Ifcb.Cli.Tests;

/// <summary>Runs the CLI in-process with captured stdout/stderr and a fixed environment (no IFCB_* leaking in from the machine).</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static async Task<Result> RunAsync(params string[] args) => await RunAsync(new Dictionary<string, string>(), args);

    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, name => environment.TryGetValue(name, out var value) ? value : null);
        var code = await CliApp.RunAsync(args, context);
        return new Result(code, output.ToString(), error.ToString());
    }

    public static System.CommandLine.ParseResult Parse(params string[] args) =>
        CliApp.BuildRoot(new CliContext(TextWriter.Null, TextWriter.Null, _ => null)).Parse(args);
}
