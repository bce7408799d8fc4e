using Ifcb.Protos;

namespace Ifcb.Cli;

/// <summary>A training job's state as the CLI writes and reads it (<c>--state</c>, tables, reports).</summary>
public static class JobStateNames
{
    public static string Of(JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.Cancelled => "cancelled",
        _ => "unspecified",
    };

    public static JobState Parse(string? state) => state switch
    {
        "queued" => JobState.Queued,
        "running" => JobState.Running,
        "succeeded" => JobState.Succeeded,
        "failed" => JobState.Failed,
        "cancelled" => JobState.Cancelled,
        _ => JobState.Unspecified,
    };
}
