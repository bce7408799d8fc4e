using Ifcb.Client;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>A platform RUN from the CLI's side: start it, follow it to the end, download its outputs.</summary>
internal static class PlatformRuns
{
    /// <summary>
    /// Starts <paramref name="request"/>, follows the job (a broken watch is resumed, see ResumableWatch) and downloads
    /// every output into <paramref name="outputs"/>, refusing any name that would land outside it.
    /// </summary>
    /// <returns>The job as it ended and the number of files downloaded.</returns>
    public static async Task<(RunJob Run, int Files)> RunAndDownloadAsync(PlatformConnection platform, CliContext context,
        StartRunRequest request, string outputs, bool quiet, CancellationToken ct)
    {
        var run = await platform.Runs.StartRunAsync(request, platform.Auth, cancellationToken: ct);
        context.Warn($"run {run.JobId} queued with {run.ModelVersion}");
        var runs = platform.Runs;
        var runRef = new JobRef { JobId = run.JobId };
        run = await ResumableWatch.FollowAsync("Runs.WatchRun", token => runs.GetRunAsync(runRef, cancellationToken: token).ResponseAsync,
            token => runs.WatchRun(runRef, cancellationToken: token),
            r => r.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled,
            update =>
            {
                if (!quiet)
                    context.Console.MarkupLine(Markup.Escape(
                        $"{update.State}: {update.ItemsDone}/{update.ItemsTotal} items, {update.ImagesClassified} images"));
            }, platform.Retry, ct);
        var listing = await platform.Runs.ListRunOutputsAsync(runRef, cancellationToken: ct);
        foreach (var artifact in listing.Artifacts)
        {
            var path = Path.GetFullPath(Path.Combine(outputs, artifact.Name));
            if (!path.StartsWith(outputs + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidDataException($"The server listed an output outside the run folder: {artifact.Name}");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using var file = File.Create(path);
            var output = new DownloadArtifactRequest { JobId = run.JobId, Name = artifact.Name };
            await ChunkedDownload.DownloadAsync("Runs.DownloadRunOutput", token => runs.DownloadRunOutput(output, cancellationToken: token),
                file, platform.Retry, cancellationToken: ct);
        }
        return (run, listing.Artifacts.Count);
    }
}
