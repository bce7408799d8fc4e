using System.Collections.Immutable;
using System.IO.Compression;
using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Checkpoint bytes with their true sha256, and registration requests built from them. <see cref="Create"/> builds a
/// real <c>.ifcbmodel</c> zip (hparams.json + a state_dict.pth entry of random bytes: the registry reads only the
/// hparams, never the weights) whose hparams match <see cref="Request"/>; <see cref="Random"/> is bytes that are no checkpoint.
/// </summary>
internal sealed record TestCheckpoint(byte[] Bytes, string Sha256)
{
    public static readonly string[] Classes = ["Mesodinium_major", "Strombidium-like"];

    /// <summary>The hparams that <see cref="Request"/> declares.</summary>
    public static CheckpointHeader Hparams() => new()
    {
        Arch = "resnet18",
        Classes = [.. Classes],
        Resize = 224,
        ImgNorm = new CheckpointImgNorm([0.667, 0.667, 0.667], [0.161, 0.161, 0.161]),
        Pretrained = false,
        Seed = 7,
        ModelId = "test-model",
        TrainingId = "test-train",
        Created = DateTimeOffset.UnixEpoch,
        PlatformVersion = "tests",
    };

    /// <summary>A valid checkpoint zip with <paramref name="weightBytes"/> random bytes of weights, stored uncompressed.</summary>
    public static TestCheckpoint Create(int weightBytes = 4096, CheckpointHeader? hparams = null) =>
        Zip(new Dictionary<string, byte[]>
        {
            [CheckpointHeader.HparamsEntry] = (hparams ?? Hparams()).ToJson(),
            [CheckpointHeader.WeightsEntry] = RandomNumberGenerator.GetBytes(weightBytes),
        });

    /// <summary>A zip of exactly these entries (to build checkpoints that lack an entry or hold a broken hparams.json).</summary>
    public static TestCheckpoint Zip(IReadOnlyDictionary<string, byte[]> entries)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                using var entry = zip.CreateEntry(name, name == CheckpointHeader.WeightsEntry ? CompressionLevel.NoCompression : CompressionLevel.Optimal).Open();
                entry.Write(content);
            }
        }

        return Of(buffer.ToArray());
    }

    /// <summary>Random bytes: not a checkpoint at all.</summary>
    public static TestCheckpoint Random(int size = 4096) => Of(RandomNumberGenerator.GetBytes(size));

    public static TestCheckpoint Of(byte[] bytes) => new(bytes, Convert.ToHexStringLower(SHA256.HashData(bytes)));

    public NewModelVersion Request(string? idempotencyKey = null, IReadOnlyDictionary<string, double>? metrics = null,
        IReadOnlyDictionary<string, string>? tags = null) => new()
        {
            Arch = "resnet18",
            Classes = [.. Classes],
            ImgNorm = ImgNorm.Parse("0.667 0.161"),
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
