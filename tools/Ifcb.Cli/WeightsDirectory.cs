using System.CommandLine;

namespace Ifcb.Cli;

/// <summary>The local weights folder (<c>--weights DIR</c>), shared by <c>weights import</c> and local-mode <c>train</c>.</summary>
public static class WeightsDirectory
{
    public const string Variable = "IFCB_WEIGHTS_DIR";

    public static Option<string?> CreateOption() => new("--weights")
    {
        Description = $"Local weights folder (env {Variable}; default ~/.ifcb/weights).",
    };

    /// <summary>--weights, else IFCB_WEIGHTS_DIR, else ~/.ifcb/weights.</summary>
    public static string Resolve(ParseResult parse, Option<string?> option, CliContext context) =>
        parse.GetValue(option) is { Length: > 0 } given ? given
        : context.Environment(Variable) is { Length: > 0 } configured ? configured
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ifcb", "weights");
}
