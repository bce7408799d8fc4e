using System.CommandLine;

namespace Ifcb.Cli;

/// <summary>The <c>--priority</c> option of the verbs that queue platform jobs (train, run, evaluate).</summary>
internal static class PriorityOption
{
    public static Option<string> Create() => new Option<string>("--priority")
    {
        Description = "With a platform: low, normal or high. A free worker starts the highest-priority queued job first " +
            "(a running job is never stopped).",
        DefaultValueFactory = _ => "normal",
    }.AcceptOnlyFromAmong("low", "normal", "high");
}
