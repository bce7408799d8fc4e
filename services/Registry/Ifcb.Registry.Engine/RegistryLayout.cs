using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Blob names inside the registry's container. Blob storage is the system of record; there is no database.
/// <code>
/// models/{name}/model.json                              RegisteredModel: description, tags, aliases (alias → version),
///                                                       latest version number, revision
/// models/{name}/versions/{0000003}/version.json         ModelVersion: status PENDING|READY|FAILED, arch, classes,
///                                                       img_norm, metrics, tags, lineage, sha256, size, ...
/// models/{name}/versions/{0000003}/checkpoint.ifcbmodel the checkpoint bytes, committed only once verified
/// models/{name}/versions/{0000003}/exports/model.onnx   cached exports of the checkpoint (VersionExports)
/// models/{name}/versions/{0000003}/evaluations/{fp}.json scores on a labelled dataset, per content (VersionEvaluations)
/// models/{name}/versions/{0000003}/uses/{job}.json      platform jobs that used the version (VersionLineage)
/// models/{name}/versions/{0000003}/children/{n}@{v}.json versions fine-tuned from it (VersionLineage)
/// models/{name}/idempotency/{sha256(key)}.json          claim of an idempotency key → version number
/// audit/{name}/{utc ticks, 19 digits}-{guid}.json       AuditEntry, append-only (created once, never rewritten)
/// indexes/{name}.json                                   ModelSearchIndex: every version's searchable fields (see SearchIndex)
/// search/changes.json                                   rewritten after every index or model.json write (SearchChanges)
/// keys/{name}.json                                      ApiKeyRecord: a named API key's role and SHA-256, never the key (ApiKeys)
/// webhooks/hooks/{id}.json                              Webhook: URL, model filter, event filter, secret (RegistryWebhooks)
/// webhooks/deliveries/{hook}/{delivery}.json            WebhookDelivery: payload, status, attempts, last error
/// webhooks/due/{hook}/{delivery}.json                   DueMarker: a delivery with an attempt still to make, and when
/// </code>
/// Version numbers are zero-padded so that blob listings come back in numeric order. The audit log lives outside
/// models/{name}/ so that deleting a model (which removes everything under models/{name}/) keeps its history.
/// </summary>
internal static class RegistryLayout
{
    public const string ModelsRoot = "models/";
    public const string IndexesRoot = "indexes/";
    public const string KeysRoot = "keys/";
    private const string AuditRoot = "audit/";

    public static string ModelPrefix(string model) => $"{ModelsRoot}{model}/";

    public static string ModelDocument(string model) => $"{ModelPrefix(model)}model.json";

    public static string VersionsPrefix(string model) => $"{ModelPrefix(model)}versions/";

    public static string VersionDocument(string model, int version) => $"{VersionFolder(model, version)}version.json";

    public static string Checkpoint(string model, int version) => $"{VersionFolder(model, version)}checkpoint.ifcbmodel";

    /// <summary>Where a version's exports are cached (<see cref="VersionExports"/>).</summary>
    public static string ExportsPrefix(string model, int version) => $"{VersionFolder(model, version)}exports/";

    public static string Export(string model, int version, string fileName) => ExportsPrefix(model, version) + fileName;

    /// <summary>Where a version's evaluations are kept (<see cref="VersionEvaluations"/>).</summary>
    public static string EvaluationsPrefix(string model, int version) => $"{VersionFolder(model, version)}evaluations/";

    public static string Evaluation(string model, int version, string fingerprint) =>
        $"{EvaluationsPrefix(model, version)}{fingerprint}.json";

    /// <summary>Where the jobs that used a version are recorded (<see cref="VersionLineage"/>).</summary>
    public static string UsesPrefix(string model, int version) => $"{VersionFolder(model, version)}uses/";

    public static string Use(string model, int version, string jobId) => $"{UsesPrefix(model, version)}{jobId}.json";

    /// <summary>Where the versions fine-tuned from a version are recorded (<see cref="VersionLineage"/>).</summary>
    public static string ChildrenPrefix(string model, int version) => $"{VersionFolder(model, version)}children/";

    public static string Child(string model, int version, string childModel, int childVersion) =>
        $"{ChildrenPrefix(model, version)}{childModel}@{childVersion.ToString("D7", CultureInfo.InvariantCulture)}.json";

    public static string IdempotencyPrefix(string model) => $"{ModelPrefix(model)}idempotency/";

    /// <summary>The key is hashed so any string (URLs, slashes) can be a key without escaping path rules.</summary>
    public static string IdempotencyClaim(string model, string idempotencyKey) =>
        $"{IdempotencyPrefix(model)}{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(idempotencyKey)))}.json";

    public static string SearchIndex(string model) => $"{IndexesRoot}{model}.json";

    /// <summary>The blob whose ETag tells searches whether indexes or model documents changed (<see cref="SearchChanges"/>).</summary>
    public const string SearchChanges = "search/changes.json";

    /// <summary>The model a <see cref="SearchIndex"/> blob belongs to; null for any other blob.</summary>
    public static string? ModelOfSearchIndex(string blobName) =>
        blobName.StartsWith(IndexesRoot, StringComparison.Ordinal) && blobName.EndsWith(".json", StringComparison.Ordinal)
            && blobName.Length > IndexesRoot.Length + ".json".Length
            ? blobName[IndexesRoot.Length..^".json".Length]
            : null;

    /// <summary>A named API key's record (<see cref="ApiKeys"/>); the name follows the model-name rule.</summary>
    public static string Key(string name) => $"{KeysRoot}{name}.json";

    public const string WebhooksPrefix = "webhooks/hooks/";
    public const string DueMarkersPrefix = "webhooks/due/";

    public static string Webhook(string id) => $"{WebhooksPrefix}{id}.json";

    public static string DeliveriesPrefix(string webhookId) => $"webhooks/deliveries/{webhookId}/";

    public static string Delivery(string webhookId, string deliveryId) => $"{DeliveriesPrefix(webhookId)}{deliveryId}.json";

    public static string DueMarker(string webhookId, string deliveryId) => $"{DueMarkersPrefix}{webhookId}/{deliveryId}.json";

    /// <summary>The webhook and delivery a <see cref="DueMarker"/> name belongs to; null for any other blob.</summary>
    public static (string WebhookId, string DeliveryId)? ParseDueMarker(string blobName) =>
        blobName.StartsWith(DueMarkersPrefix, StringComparison.Ordinal)
            && blobName[DueMarkersPrefix.Length..].Split('/') is [var hook, var delivery]
            && delivery.EndsWith(".json", StringComparison.Ordinal)
            ? (hook, delivery[..^".json".Length])
            : null;

    public static string AuditPrefix(string model) => $"{AuditRoot}{model}/";

    public static string AuditEntry(string model, DateTimeOffset timestamp) =>
        $"{AuditPrefix(model)}{timestamp.UtcTicks.ToString("D19", CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.json";

    /// <summary>Reads the version number back from a <see cref="VersionDocument"/> name; null for other blobs.</summary>
    public static int? VersionFromDocument(string model, string blobName)
    {
        var prefix = VersionsPrefix(model);
        const string suffix = "/version.json";
        if (!blobName.StartsWith(prefix, StringComparison.Ordinal) || !blobName.EndsWith(suffix, StringComparison.Ordinal))
            return null;

        var digits = blobName.AsSpan(prefix.Length, blobName.Length - prefix.Length - suffix.Length);
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
    }

    /// <summary>The model and version a <see cref="VersionDocument"/> name belongs to; null for any other blob.</summary>
    public static (string Model, int Version)? ParseVersionDocument(string blobName)
    {
        // models/{name}/versions/{0000003}/version.json: model names never contain '/', so the segments are fixed.
        var segments = blobName.Split('/');
        if (segments is not [var root, var model, "versions", _, "version.json"] || root + "/" != ModelsRoot)
            return null;

        return VersionFromDocument(model, blobName) is { } version ? (model, version) : null;
    }

    public static string VersionFolder(string model, int version) =>
        $"{VersionsPrefix(model)}{version.ToString("D7", CultureInfo.InvariantCulture)}/";
}
