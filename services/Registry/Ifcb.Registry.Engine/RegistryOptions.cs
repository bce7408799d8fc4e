using Azure.Storage;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>Limits and retry tuning for <see cref="ModelRegistry"/>. The defaults suit a production blob account.</summary>
public sealed record RegistryOptions
{
    /// <summary>Largest checkpoint accepted; larger declared sizes are refused before anything is stored.</summary>
    public long MaxCheckpointBytes { get; init; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Read-modify-write attempts on one JSON blob before giving up with <see cref="ErrorKind.Aborted"/>.</summary>
    public int MaxWriteAttempts { get; init; } = 25;

    /// <summary>First backoff step after an ETag conflict; doubles per attempt, with full jitter.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Upper bound on one backoff step.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How many consecutive version slots one registration may find taken before giving up. Every taken slot means
    /// another registration succeeded, so this only bounds pathological contention.
    /// </summary>
    public int MaxVersionAllocationProbes { get; init; } = 10_000;

    /// <summary>How long a duplicate registration waits for the first one (same idempotency key) to pick its version.</summary>
    public TimeSpan IdempotencyWaitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A claim on an idempotency key that never got a version after this long is treated as abandoned.</summary>
    public TimeSpan IdempotencyClaimTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Longest a registration may spend from allocating its version to storing and checking the checkpoint; past it the
    /// upload is cancelled and the version ends FAILED (DeadlineExceeded). This is what makes <see cref="PendingTimeout"/>
    /// safe: no upload can still be running when its version expires.
    /// </summary>
    public TimeSpan UploadTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A version still PENDING this long after it was created was left by a registry that died mid-upload (its own
    /// upload would have hit <see cref="UploadTimeout"/>); it expires to FAILED, and its idempotency key may be retried.
    /// Must be longer than <see cref="UploadTimeout"/>.
    /// </summary>
    public TimeSpan PendingTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Check sha256 and size while a checkpoint is downloaded; a mismatch fails the read with DataLoss.</summary>
    public bool VerifyDownloads { get; init; } = true;

    /// <summary>Block size and parallelism for checkpoint uploads; null uses the Azure SDK defaults.</summary>
    public StorageTransferOptions? UploadTransferOptions { get; init; }

    /// <summary>Most aliases one model may have (model.json holds them all and is rewritten on every change).</summary>
    public int MaxAliasesPerModel { get; init; } = Ifcb.Platform.Limits.MaxListItems;

    /// <summary>
    /// A search-index intent (a writer's notice that it is changing a version) older than this was left by a writer that
    /// died; the next search rebuilds that model's index and drops it. Far longer than any single document write.
    /// </summary>
    public TimeSpan IndexIntentTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How often a registry-wide search looks for models without a search index (made before indexes existed).</summary>
    public TimeSpan IndexDiscoveryInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a search may reuse its last listing of the indexes, and the model documents it read, while the
    /// <see cref="SearchChanges"/> marker is unchanged. Only a writer that died between its write and its touch of the
    /// marker can make searches miss a change, and then for at most this long.
    /// </summary>
    public TimeSpan SearchSnapshotMaxAge { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Most named API keys the registry keeps, revoked ones included (<see cref="ApiKeys"/>).</summary>
    public int MaxApiKeys { get; init; } = 1000;

    /// <summary>How many JSON blobs list and search operations read at once.</summary>
    public int ListReadConcurrency { get; init; } = 16;
}
