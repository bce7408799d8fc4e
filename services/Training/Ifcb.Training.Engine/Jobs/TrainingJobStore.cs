using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform.Jobs;

namespace Ifcb.Training.Engine.Jobs;

/// <summary>Training jobs: <c>jobs/{id}/job.json</c> and <c>jobs/{id}/artifacts/…</c> in the Training service's container.</summary>
public sealed class TrainingJobStore(BlobContainerClient container, TimeProvider? time = null)
    : JobStore<TrainingJobRecord>(container, "jobs/", TrainingOutputs.Json, time)
{
    public BlobArtifactSink Artifacts(string jobId) => new(Container, ArtifactsPrefix(jobId));
}

/// <summary>RUN jobs (classifying bins or images on the platform): <c>runs/{id}/…</c> in the same container.</summary>
public sealed class RunJobStore(BlobContainerClient container, TimeProvider? time = null)
    : JobStore<RunJobRecord>(container, "runs/", TrainingOutputs.Json, time)
{
    public BlobArtifactSink Artifacts(string jobId) => new(Container, ArtifactsPrefix(jobId));
}

/// <summary>An <see cref="IArtifactSink"/> over blobs under a prefix.</summary>
public sealed class BlobArtifactSink(BlobContainerClient container, string prefix) : IArtifactSink
{
    public string Prefix => prefix;

    public async Task WriteAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        await container.GetBlobClient(prefix + name).UploadAsync(new BinaryData(content), overwrite: true, cancellationToken);

    public async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var content = await container.GetBlobClient(prefix + name).DownloadContentAsync(cancellationToken);
            return content.Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Artifact names and sizes (resume state excluded).</summary>
    public async IAsyncEnumerable<(string Name, long Size)> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            var name = item.Name[prefix.Length..];
            if (!name.StartsWith("resume/", StringComparison.Ordinal))
                yield return (name, item.Properties.ContentLength ?? 0);
        }
    }

    public BlobClient Blob(string name) => container.GetBlobClient(prefix + name);
}
