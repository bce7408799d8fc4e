using System.Diagnostics;
using Azure;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Idempotency keys (<c>models/{name}/idempotency/…</c>): a registration claims its key, publishes the version number
/// it got, and gives the claim up if it fails before it has one; a repeat of the key finds the earlier version instead.
/// </summary>
internal sealed class IdempotencyClaims(BlobDocumentStore store, RegistryOptions options, TimeProvider time, PendingExpiry expiry)
{
    /// <summary>Claim of an idempotency key; <see cref="Version"/> is null until the claimant has its number.</summary>
    internal sealed record Claim(string Name, string Key, int? Version, DateTimeOffset ClaimedAt);

    /// <summary>
    /// Either the version an earlier registration with <paramref name="key"/> holds (READY, same checkpoint), or this
    /// registration's own claim on the key. Waits (up to <see cref="RegistryOptions.IdempotencyWaitTimeout"/>, then
    /// Aborted) while another registration with the key is still choosing its number or uploading; takes over a claim
    /// that failed, was abandoned or deleted. FailedPrecondition when the key registered a different checkpoint.
    /// </summary>
    public async Task<(ModelVersion? Existing, Stored<Claim>? Claim)> ClaimAsync(
        string modelName, string key, string sha256, CancellationToken cancellationToken)
    {
        var claimName = RegistryLayout.IdempotencyClaim(modelName, key);
        var waited = Stopwatch.StartNew();
        // What running out of time says: the answer for what the last wait was for (a claim still without a number, or
        // a PENDING version), so the deadline says the same whether it is noticed before a wait or after it.
        Func<IfcbException> timedOut = InProgress;
        for (var attempt = 1; ; attempt++)
        {
            if (waited.Elapsed > options.IdempotencyWaitTimeout)
                throw timedOut();

            var fresh = new Claim(claimName, key, null, time.GetUtcNow());
            var current = await store.ReadAsync<Claim>(claimName, cancellationToken);
            if (current is null)
            {
                if (await store.TryCreateAsync(claimName, fresh, cancellationToken) is { } created)
                    return (null, new Stored<Claim>(fresh, created));

                continue; // Another registration claimed it first; read its claim.
            }

            bool takeOver;
            if (current.Value.Version is { } number)
            {
                var stored = await store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument(modelName, number), cancellationToken);
                var existing = stored is null ? null : await expiry.ExpireIfStaleAsync(stored.Value, cancellationToken);
                if (existing is not null && existing.Status != ModelVersionStatus.Failed)
                {
                    if (existing.Sha256 != sha256)
                    {
                        throw new IfcbException(ErrorKind.FailedPrecondition,
                            $"Idempotency key '{key}' already registered version {number} of '{modelName}' with a different checkpoint " +
                            $"(sha256 {existing.Sha256}); use a new key for a different checkpoint.");
                    }

                    if (existing.Status != ModelVersionStatus.Pending)
                        return (existing, null);

                    // A PENDING version is not a registration to hand back: its upload is still running (wait for it, as
                    // for a claim without a number), or was abandoned by a crash and expires at the time named.
                    timedOut = () => new IfcbException(ErrorKind.Aborted,
                        $"Idempotency key '{key}' is registering version {number} of '{modelName}' " +
                        $"(PENDING since {existing.CreatedAt:O}); retry in a moment: it becomes READY when that upload finishes, " +
                        $"or expires at {existing.CreatedAt + options.PendingTimeout:O} if it was abandoned.");
                    var backoff = store.Backoff(attempt);
                    if (waited.Elapsed + backoff > options.IdempotencyWaitTimeout)
                        throw timedOut();

                    await Task.Delay(backoff, cancellationToken);
                    continue;
                }

                // The earlier attempt failed, was abandoned (expired above) or deleted: a retry with the same key may try again.
                takeOver = true;
            }
            else
            {
                takeOver = time.GetUtcNow() - current.Value.ClaimedAt > options.IdempotencyClaimTimeout;
            }

            if (takeOver)
            {
                if (await store.TryReplaceAsync(claimName, fresh, current.ETag, cancellationToken) is { } replaced)
                    return (null, new Stored<Claim>(fresh, replaced));

                continue;
            }

            // The first registration is between claiming the key and allocating its number: give it a moment.
            timedOut = InProgress;
            await Task.Delay(store.Backoff(attempt), cancellationToken);
        }

        IfcbException InProgress() => new(ErrorKind.Aborted,
            $"Another registration of '{modelName}' with idempotency key '{key}' is still in progress; retry later.");
    }

    /// <summary>
    /// Publishes the number the claimant got, so duplicates return that version. If the claim was taken over meanwhile
    /// (it was stale), the other registration owns the key and the claimant's version is simply one without it.
    /// </summary>
    public async Task PublishVersionAsync(Stored<Claim> claim, int version, CancellationToken cancellationToken) =>
        await store.TryReplaceAsync(claim.Value.Name, claim.Value with { Version = version }, claim.ETag, cancellationToken);

    /// <summary>
    /// Gives up a claim no version holds yet (opening the checkpoint or allocating failed), so that a retry with the
    /// key does not wait <see cref="RegistryOptions.IdempotencyClaimTimeout"/> for it. Best effort: the caller is
    /// already failing with the error that matters, and a claim left behind only delays retries.
    /// </summary>
    public async Task ReleaseAsync(Stored<Claim> claim)
    {
        try
        {
            await store.DeleteAsync(claim.Value.Name, CancellationToken.None, claim.ETag);
        }
        catch (RequestFailedException)
        {
        }
    }

    /// <summary>Deletes the key's claim if it still names <paramref name="version"/> (that version is being deleted).</summary>
    public async Task ForgetAsync(string modelName, string key, int version, CancellationToken cancellationToken)
    {
        var claimName = RegistryLayout.IdempotencyClaim(modelName, key);
        var claim = await store.ReadAsync<Claim>(claimName, cancellationToken);
        if (claim?.Value.Version == version)
            await store.DeleteAsync(claimName, cancellationToken, claim.ETag);
    }
}
