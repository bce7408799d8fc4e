using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// A registered version scored on a labelled dataset (a platform evaluation): the headline figures, and the whole report
/// as JSON (per-class precision/recall/F1/support, confusion matrix) as the evaluation wrote it.
/// </summary>
public sealed record EvaluationRecord(
    string Dataset,
    string DatasetFingerprint,
    string JobId,
    DateTimeOffset EvaluatedAt,
    int Images,
    double Accuracy,
    double F1Weighted,
    double F1Macro,
    string ReportJson);

/// <summary>
/// The evaluations of each version, one blob per dataset content:
/// <c>models/{name}/versions/{0000003}/evaluations/{fingerprint}.json</c>. A newer evaluation of the same content replaces
/// the older one (a redelivered event writes the same record again); deleting the version deletes them
/// (<see cref="Deletions"/>).
/// </summary>
public sealed class VersionEvaluations(BlobContainerClient container, ModelRegistry registry, RegistryOptions? options = null)
{
    private readonly BlobDocumentStore store = RegistryStore.Create(container, options ?? new RegistryOptions());

    /// <summary>Largest report kept (150 classes: about 0.2 MB).</summary>
    public const int MaxReportBytes = 4 * 1024 * 1024;

    /// <summary>Stores <paramref name="record"/> on the version <paramref name="version"/> names (NotFound if it is gone).</summary>
    public async Task<EvaluationRecord> RecordAsync(ModelRef version, EvaluationRecord record,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        VersionLineage.Named(() => ResourceName.ValidateDatasetName(record.Dataset));
        if (record.DatasetFingerprint.Length is 0 or > 128 || !record.DatasetFingerprint.All(char.IsAsciiLetterOrDigit))
            throw IfcbException.InvalidArgument("dataset_fingerprint must be 1..128 letters or digits.");
        if (record.ReportJson.Length > MaxReportBytes)
            throw IfcbException.InvalidArgument(
                $"The evaluation report is {record.ReportJson.Length} characters; the limit is {MaxReportBytes}.");
        var resolved = await registry.GetVersionAsync(version, cancellationToken);
        await store.PutAsync(RegistryLayout.Evaluation(resolved.ModelName, resolved.Version, record.DatasetFingerprint), record,
            cancellationToken);
        return record;
    }

    /// <summary>The version's evaluations, newest first.</summary>
    public async Task<IReadOnlyList<EvaluationRecord>> ListAsync(ModelRef version, CancellationToken cancellationToken = default)
    {
        var resolved = await registry.GetVersionAsync(version, cancellationToken);
        var records = await store.ReadAllAsync<EvaluationRecord>(
            RegistryLayout.EvaluationsPrefix(resolved.ModelName, resolved.Version), cancellationToken);
        return [.. records.OrderByDescending(r => r.EvaluatedAt)];
    }
}
