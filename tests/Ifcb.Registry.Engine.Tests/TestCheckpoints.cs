using System.Collections.Immutable;
using System.Security.Cryptography;
using Azure.Storage.Blobs;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>Random checkpoint bytes with their true sha256, and registration requests built from them.</summary>
internal sealed record TestCheckpoint(byte[] Bytes, string Sha256)
{
    public static TestCheckpoint Random(int size = 4096)
    {
        var bytes = RandomNumberGenerator.GetBytes(size);
        return new TestCheckpoint(bytes, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    public NewModelVersion Request(string? idempotencyKey = null, IReadOnlyDictionary<string, double>? metrics = null,
        IReadOnlyDictionary<string, string>? tags = null) => new()
    {
        Arch = "resnet18",
        Classes = ["Mesodinium_major", "Strombidium-like"],
        ImgNorm = new ImageNormalization("0.667", "0.161"),
        Metrics = (metrics ?? new Dictionary<string, double>()).ToImmutableSortedDictionary(),
        Tags = (tags ?? new Dictionary<string, string>()).ToImmutableSortedDictionary(),
        Source = new VersionSource { TrainingJobId = idempotencyKey ?? "job-1", Commit = "abc123" },
        DatasetFingerprint = "sha256:dataset",
        Sha256 = Sha256,
        SizeBytes = Bytes.Length,
        IdempotencyKey = idempotencyKey,
    };

    public MemoryStream Stream() => new(Bytes, writable: false);
}

internal static class ContainerInspection
{
    public static async Task<List<string>> BlobNamesAsync(this BlobContainerClient container, string prefix = "")
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = prefix }))
        {
            names.Add(blob.Name);
        }

        return names;
    }
}
