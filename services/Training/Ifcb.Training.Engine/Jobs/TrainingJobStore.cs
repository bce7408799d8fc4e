using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Platform.Jobs;
using Ifcb.Platform.Storage;

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

/// <summary>
/// An <see cref="IArtifactSink"/> over blobs under a prefix. Every artifact blob carries the SHA-256 of its bytes in its
/// metadata (<see cref="BlobChecksum.Sha256Metadata"/>), computed from the bytes being uploaded and written in the same request, so
/// whoever hands an artifact on (the best checkpoint to the Registry) knows its hash without downloading it again.
/// </summary>
public sealed class BlobArtifactSink(BlobContainerClient container, string prefix) : IArtifactSink
{
    public string Prefix => prefix;

    public async Task WriteAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        await container.GetBlobClient(prefix + name).UploadAsync(new BinaryData(content), new BlobUploadOptions
        {
            Metadata = new Dictionary<string, string>
            {
                [BlobChecksum.Sha256Metadata] = Convert.ToHexStringLower(SHA256.HashData(content.Span)),
            },
        }, cancellationToken);

    /// <summary>
    /// The SHA-256 and size recorded when the artifact was written (one metadata request, no download); the SHA-256 is
    /// null for a blob written without it (by an earlier build). Throws RequestFailedException 404 when it does not exist.
    /// </summary>
    public async Task<(string? Sha256, long Size)> RecordedChecksumAsync(string name, CancellationToken cancellationToken)
    {
        var properties = (await container.GetBlobClient(prefix + name).GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
        return (properties.Metadata.TryGetValue(BlobChecksum.Sha256Metadata, out var sha256) ? sha256 : null, properties.ContentLength);
    }

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
