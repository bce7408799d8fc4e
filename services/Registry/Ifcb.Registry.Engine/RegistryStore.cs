using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>Outcome of a read-modify-write: the document now stored, and whether this call changed it.</summary>
internal sealed record Updated<T>(T Value, ETag ETag, bool Changed);

/// <summary>
/// The Registry's documents live in the platform's <see cref="BlobDocumentStore"/> (JSON in blobs with ETag
/// concurrency); this is only the Registry's JSON form (snake_case, enum names in upper case) and its write policy.
/// </summary>
internal static class RegistryStore
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseUpper) },
    };

    public static BlobDocumentStore Create(BlobContainerClient container, RegistryOptions options) =>
        new(container, Json, new DocumentWritePolicy(options.MaxWriteAttempts, options.RetryBaseDelay, options.RetryMaxDelay));

    /// <summary>A read-modify-write's outcome in the Registry's shape.</summary>
    public static async Task<Updated<T>> Updated<T>(this Task<(Stored<T> Document, bool Changed)> update)
    {
        var (document, changed) = await update;
        return new Updated<T>(document.Value, document.ETag, changed);
    }

    /// <summary>The numbers of the model's version documents, ascending.</summary>
    public static async Task<List<int>> VersionNumbersAsync(this BlobDocumentStore store, string modelName,
        CancellationToken cancellationToken)
    {
        var names = await store.ListBlobNamesAsync(RegistryLayout.VersionsPrefix(modelName), cancellationToken);
        return names.Select(name => RegistryLayout.VersionFromDocument(modelName, name)).OfType<int>().Order().ToList();
    }
}
