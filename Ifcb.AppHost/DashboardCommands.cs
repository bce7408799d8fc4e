using System.Diagnostics;

/// <summary>
/// Buttons in the Aspire dashboard that run the ifcb CLI against this platform: "Train demo model" (on training) and
/// "Compute norm stats for sample" (on normstats). They use the shipped IFCB sample in testdata/training-sample.
/// </summary>
internal static class DashboardCommands
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    public static IResourceBuilder<ProjectResource> WithTrainDemoCommand(this IResourceBuilder<ProjectResource> training,
        IResourceBuilder<ParameterResource> apiKey, string repoRoot) =>
        training.WithCommand("train-demo", "Train demo model", async context =>
            await RunCliAsync(repoRoot, training.GetEndpoint("grpc").Url, await apiKey.Resource.GetValueAsync(context.CancellationToken),
                ["train", "testdata/training-sample", "resnet18", $"demo-{DateTime.UtcNow:yyyyMMddTHHmmss}", "--dataset", "ifcb-sample",
                 "--untrain", "--img-norm", "auto", "--resize", "64", "--batch", "8", "--emax", "8", "--emin", "3", "--estop", "3",
                 "--register", "plankton-demo", "--no-wait"], context.CancellationToken),
            new CommandOptions
            {
                Description = "Uploads the IFCB sample, queues a small resnet18 training job (img-norm auto) and registers the result " +
                    "as plankton-demo.",
                IconName = "BrainCircuit",
                UpdateState = context =>
                    context.ResourceSnapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy
                    ? ResourceCommandState.Enabled
                    : ResourceCommandState.Disabled,
            });

    public static IResourceBuilder<ProjectResource> WithNormDemoCommand(this IResourceBuilder<ProjectResource> normStats,
        IResourceBuilder<ProjectResource> training, IResourceBuilder<ParameterResource> apiKey, string repoRoot) =>
        normStats.WithCommand("norm-demo", "Compute norm stats for sample", async context =>
            await RunCliAsync(repoRoot, training.GetEndpoint("grpc").Url, await apiKey.Resource.GetValueAsync(context.CancellationToken),
                ["norm", "testdata/training-sample", "--dataset", "ifcb-sample", "--resize", "299"], context.CancellationToken),
            new CommandOptions
            {
                Description = "Uploads the IFCB sample and computes its exact MEAN/STD at 299×299 on the NormStats workers.",
                IconName = "DataHistogram",
                UpdateState = context =>
                    context.ResourceSnapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy
                    ? ResourceCommandState.Enabled
                    : ResourceCommandState.Disabled,
            });

    private static async Task<ExecuteCommandResult> RunCliAsync(string repoRoot, string trainingUrl, string? apiKey, string[] args,
        CancellationToken cancellationToken)
    {
        var cli = Path.Combine(repoRoot, "tools", "Ifcb.Cli", "bin", Configuration, "net10.0", "linux-x64", "ifcb.dll");
        if (!File.Exists(cli))
            return new ExecuteCommandResult { Success = false, Message = $"{cli} is missing; build the solution first (./run.sh does)." };
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = repoRoot, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.ArgumentList.Add(cli);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["IFCB_SERVER"] = trainingUrl;
        start.Environment["IFCB_API_KEY"] = apiKey ?? "";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode == 0
            ? CommandResults.Success()
            : new ExecuteCommandResult
            {
                Success = false, Message = $"ifcb {args[0]} exited {process.ExitCode}: {(await error).Trim()} {(await output).Trim()}",
            };
    }
}
