using Ifcb.Contracts;
using Ifcb.Platform.Checkpoints;

namespace Ifcb.Models.Checkpoints;

/// <summary>
/// Everything needed to rebuild and run a trained model without the training arguments (neuston's
/// <c>hyper_parameters</c> subset that RUN reads, plus provenance).
/// </summary>
/// <param name="Architecture">Zoo name, e.g. <c>inception_v3</c> (neuston's MODEL).</param>
/// <param name="Classes">Class names in output-index order.</param>
/// <param name="Resize">Square input side the model was trained at.</param>
/// <param name="ImgNorm">The <c>--img-norm</c> applied before the model, or null.</param>
/// <param name="Pretrained">Started from ImageNet weights; for inception_v3 it also switches <c>transform_input</c> on.</param>
/// <param name="Seed">The resolved training seed.</param>
/// <param name="ModelId">neuston's model_id.</param>
/// <param name="TrainingId">neuston's TRAIN_ID.</param>
/// <param name="DatasetFingerprint">Identifies the exact training/validation data, or null.</param>
/// <param name="CreatedUtc">When the checkpoint was written.</param>
/// <param name="PlatformVersion">Version of the platform that trained it.</param>
/// <param name="Extras">Free-form provenance (e.g. best epoch, val_loss); never needed to run the model.</param>
public sealed record ModelHparams(
    string Architecture,
    IReadOnlyList<string> Classes,
    int Resize,
    ImgNorm? ImgNorm,
    bool Pretrained,
    long Seed,
    string ModelId,
    string TrainingId,
    string? DatasetFingerprint,
    DateTimeOffset CreatedUtc,
    string PlatformVersion,
    IReadOnlyDictionary<string, string>? Extras = null)
{
    /// <summary>
    /// Per-class score thresholds in class order (null entries: none), chosen at the end of training; a ROI whose winning
    /// score is below its class's threshold is labelled unclassified. Null when the checkpoint has none.
    /// </summary>
    public IReadOnlyList<double?>? ClassThresholds { get; init; }

    public bool Equals(ModelHparams? other) =>
        other is not null
        && Architecture == other.Architecture
        && Classes.SequenceEqual(other.Classes)
        && Resize == other.Resize
        && Equals(ImgNorm, other.ImgNorm)
        && Pretrained == other.Pretrained
        && Seed == other.Seed
        && ModelId == other.ModelId
        && TrainingId == other.TrainingId
        && DatasetFingerprint == other.DatasetFingerprint
        && CreatedUtc == other.CreatedUtc
        && PlatformVersion == other.PlatformVersion
        && (ClassThresholds ?? []).SequenceEqual(other.ClassThresholds ?? [])
        && (Extras ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .SequenceEqual((other.Extras ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal));

    public override int GetHashCode() => HashCode.Combine(Architecture, Classes.Count, ModelId, TrainingId, CreatedUtc);

    /// <summary>These hparams as the checkpoint's <c>hparams.json</c> document (not yet validated).</summary>
    public CheckpointHeader ToHeader() => new()
    {
        Arch = Architecture,
        Classes = [.. Classes],
        Resize = Resize,
        ImgNorm = ImgNorm is null ? null : new CheckpointImgNorm([.. ImgNorm.Mean], [.. ImgNorm.Std]),
        Pretrained = Pretrained,
        Seed = Seed,
        ModelId = ModelId,
        TrainingId = TrainingId,
        DatasetFingerprint = DatasetFingerprint,
        Created = CreatedUtc,
        PlatformVersion = PlatformVersion,
        Extras = Extras is null ? null : new Dictionary<string, string>(Extras),
        ClassThresholds = ClassThresholds is null ? null : [.. ClassThresholds],
    };

    /// <summary>The hparams of a checkpoint header (read and validated by <see cref="CheckpointHeader.Read"/>).</summary>
    /// <exception cref="InvalidDataException">Its img_norm is not a valid normalisation.</exception>
    public static ModelHparams FromHeader(CheckpointHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        ImgNorm? norm;
        try
        {
            norm = header.ImgNorm?.ToImgNorm();
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{CheckpointHeader.HparamsEntry} holds an invalid img_norm: {e.Message}", e);
        }
        return new ModelHparams(header.Arch, header.Classes, header.Resize, norm, header.Pretrained, header.Seed, header.ModelId,
            header.TrainingId, header.DatasetFingerprint, header.Created, header.PlatformVersion, header.Extras)
        {
            ClassThresholds = header.ClassThresholds,
        };
    }

    /// <summary>Checks every field against the platform's limits (class count and names, resize, img_norm, text lengths).</summary>
    /// <exception cref="InvalidDataException">The field and the limit it breaks.</exception>
    public void Validate() => ToHeader().Validate();
}
