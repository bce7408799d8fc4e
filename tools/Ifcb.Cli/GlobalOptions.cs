using System.CommandLine;

namespace Ifcb.Cli;

/// <summary>Options every verb accepts (recursive on the root command): where the platform is, the API key, JSON output.</summary>
public static class GlobalOptions
{
    public const string ServerVariable = "IFCB_SERVER";
    public const string ApiKeyVariable = "IFCB_API_KEY";
    public const string TrainingUrlVariable = "IFCB_TRAINING_URL";
    public const string NormStatsUrlVariable = "IFCB_NORMSTATS_URL";
    public const string RegistryUrlVariable = "IFCB_REGISTRY_URL";
    public const string TimeoutVariable = "IFCB_TIMEOUT";

    public static readonly Option<string?> Server = new("--server")
    {
        Description = $"Platform URL: the Training service (env {ServerVariable}); NormStats and Registry are found through it " +
            "unless given below. Without it, train, norm and run work locally.",
        Recursive = true,
    };

    public static readonly Option<string?> TrainingUrl = new("--training-url")
    {
        Description = $"Training + Datasets service URL (env {TrainingUrlVariable}); default --server.",
        Recursive = true,
    };

    public static readonly Option<string?> NormStatsUrl = new("--normstats-url")
    {
        Description = $"NormStats service URL (env {NormStatsUrlVariable}); default: discovered from --server.",
        Recursive = true,
    };

    public static readonly Option<string?> RegistryUrl = new("--registry-url")
    {
        Description = $"Registry service URL (env {RegistryUrlVariable}); default: discovered from --server.",
        Recursive = true,
    };

    public static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = $"API key for write calls and every Registry call, sent as x-api-key (env {ApiKeyVariable}): the platform's " +
            "key or a named key from 'ifcb keys create'.",
        Recursive = true,
    };

    public static readonly Option<string?> Timeout = new("--timeout")
    {
        Description = $"Seconds each call to the platform may take before it is retried or given up (env {TimeoutVariable}; default 30). " +
            "Reads are retried on Unavailable, DeadlineExceeded and ResourceExhausted: 5 attempts within 60 s (or twice --timeout). " +
            "Watches, downloads and dataset uploads have no overall limit (a checkpoint upload: 2 min + 1 s per MiB); " +
            "keep-alive pings notice a dead server.",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print machine-readable JSON on stdout instead of tables and progress bars.",
        Recursive = true,
    };

    public static void AddTo(RootCommand root)
    {
        foreach (var option in new Option[] { Server, TrainingUrl, NormStatsUrl, RegistryUrl, ApiKey, Timeout, Json })
            root.Options.Add(option);
    }
}
