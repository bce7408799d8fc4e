using System.Security.Cryptography;
using Grpc.Core;
using Ifcb.Platform.Checkpoints;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>What a registration adds to the checkpoint's own hparams: metrics, tags, lineage and the idempotency key.</summary>
public sealed record VersionDetails
{
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    /// <summary>Default (null or blank): <see cref="CheckpointRegistration.DefaultIdempotencyKey"/> of the file.</summary>
    public string? IdempotencyKey { get; init; }

    public string? Description { get; init; }
    public string? Commit { get; init; }
    public string? PipelineUrl { get; init; }
}

/// <summary>
/// Registers a checkpoint file through Registry.RegisterVersion with the metadata in its hparams.json (architecture,
/// classes, img-norm, input size, pretrained, dataset fingerprint). Only the zip's directory and hparams.json are read,
/// never the weights, so this needs no libtorch; the Registry checks the upload.
/// </summary>
public static class CheckpointRegistration
{
    /// <summary>The idempotency key sent when none is given: the same file under the same name is one version.</summary>
    public static string DefaultIdempotencyKey(string checkpointSha256) => "sha256:" + checkpointSha256;

    /// <summary>
    /// Registers <paramref name="checkpointPath"/> as a new version of <paramref name="name"/>. Always sent with an
    /// idempotency key (<see cref="DefaultIdempotencyKey"/> unless <see cref="VersionDetails.IdempotencyKey"/> is set), so a
    /// failed attempt is sent again as <paramref name="retry"/> allows and a repeated registration returns the version
    /// registered before.
    /// </summary>
    /// <param name="headers">Call metadata (the API key).</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">
    /// Not a checkpoint, or its hparams are malformed or out of bounds; the message names the file and the field.
    /// </exception>
    /// <exception cref="RpcException">The registry refused or failed the registration.</exception>
    public static async Task<ModelVersion> RegisterAsync(Registry.RegistryClient registry, string checkpointPath, string name,
        VersionDetails details, Metadata? headers, CallRetry retry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(details);
        if (!File.Exists(checkpointPath))
            throw new FileNotFoundException($"Checkpoint {checkpointPath} does not exist.", checkpointPath);
        await using var file = File.OpenRead(checkpointPath);
        CheckpointHeader hparams;
        try
        {
            hparams = CheckpointHeader.Read(file);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{checkpointPath}: {e.Message}", e);
        }
        file.Position = 0;
        var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
        var size = file.Position;
        file.Position = 0;
        var header = Header(hparams, name, sha256, size, details);
        return await RegistryUpload.RegisterCheckpointAsync(registry, header, file, headers, retry: retry,
            cancellationToken: cancellationToken);
    }

    /// <summary>The RegisterVersion header for a checkpoint with these hparams, SHA-256 and size.</summary>
    public static RegisterVersionHeader Header(CheckpointHeader hparams, string name, string sha256, long size, VersionDetails details)
    {
        ArgumentNullException.ThrowIfNull(hparams);
        ArgumentNullException.ThrowIfNull(details);
        var metadata = new VersionMetadata
        {
            Arch = hparams.Arch, Pretrained = hparams.Pretrained, Resize = hparams.Resize, Description = details.Description ?? "",
            SourceCommit = details.Commit ?? "", SourcePipelineUrl = details.PipelineUrl ?? "",
            DatasetFingerprint = hparams.DatasetFingerprint ?? "",
        };
        metadata.Classes.AddRange(hparams.Classes);
        if (hparams.ImgNorm is { } norm)
            metadata.ImgNorm = norm.ToImgNorm().ToProto();
        foreach (var (metric, value) in details.Metrics)
            metadata.Metrics[metric] = value;
        foreach (var (tag, value) in details.Tags)
            metadata.Tags[tag] = value;
        return new RegisterVersionHeader
        {
            Name = name, Metadata = metadata, Sha256 = sha256, Size = size,
            IdempotencyKey = string.IsNullOrWhiteSpace(details.IdempotencyKey) ? DefaultIdempotencyKey(sha256) : details.IdempotencyKey,
        };
    }
}
