using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>Downloads a training job's artifacts: checkpoint, epochs.csv, results.json, image lists, plots.</summary>
public static class JobArtifacts
{
    /// <summary>
    /// Downloads a job's artifacts (all, or those named in <paramref name="only"/>) into <paramref name="folder"/>, each
    /// verified by size and SHA-256, written to <c>PATH.partial</c> and moved into place when complete.
    /// </summary>
    /// <returns>The artifacts downloaded.</returns>
    /// <exception cref="FileNotFoundException">The job has no artifact by a name in <paramref name="only"/>.</exception>
    /// <exception cref="InvalidDataException">The server named an artifact outside the folder, or its bytes do not verify.</exception>
    public static async Task<IReadOnlyList<Artifact>> DownloadAsync(Training.TrainingClient training, string jobId, string folder,
        IReadOnlyCollection<string>? only, CallRetry retry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(retry);
        var listed = (await training.ListArtifactsAsync(new JobRef { JobId = jobId }, cancellationToken: cancellationToken)).Artifacts;
        var wanted = only is { Count: > 0 } ? listed.Where(a => only.Contains(a.Name)).ToList() : [.. listed];
        if (only is { Count: > 0 } && only.Except(wanted.Select(a => a.Name)).ToList() is { Count: > 0 } missing)
            throw new FileNotFoundException(
                $"Job {jobId} has no artifact {string.Join(", ", missing)}; it has {string.Join(", ", listed.Select(a => a.Name))}.");
        var root = Path.GetFullPath(folder);
        foreach (var artifact in wanted)
        {
            var path = Path.GetFullPath(Path.Combine(root, artifact.Name));
            if (!path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidDataException($"The server named an artifact '{artifact.Name}' outside the download folder; refusing it.");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var partial = path + ".partial";
            await using (var file = File.Create(partial))
            {
                var request = new DownloadArtifactRequest { JobId = jobId, Name = artifact.Name };
                await ChunkedDownload.DownloadAsync("Training.DownloadArtifact",
                    token => training.DownloadArtifact(request, cancellationToken: token), file,
                    retry, cancellationToken: cancellationToken);
            }
            File.Move(partial, path, overwrite: true);
        }
        return wanted;
    }
}
