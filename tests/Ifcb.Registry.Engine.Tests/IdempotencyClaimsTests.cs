using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// <see cref="IdempotencyClaims"/> on its own: who gets a key, what a repeat of it finds, and when a claim left behind
/// by a failed or vanished registration may be taken over.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class IdempotencyClaimsTests(AzuriteFixture azurite)
{
    private const string Sha = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string OtherSha = "2222222222222222222222222222222222222222222222222222222222222222";
    private static readonly RegistryOptions QuickWaits = new() { IdempotencyWaitTimeout = TimeSpan.FromMilliseconds(300) };

    [Fact]
    public async Task A_claim_without_a_number_makes_a_repeat_wait_until_it_is_released_or_stale()
    {
        var parts = await EngineParts.CreateAsync(azurite, QuickWaits);
        var (existing, first) = await parts.Claims.ClaimAsync("keyed", "job-1", Sha, CancellationToken.None);
        Assert.Null(existing);
        Assert.NotNull(first);

        var waited = await Assert.ThrowsAsync<IfcbException>(() => parts.Claims.ClaimAsync("keyed", "job-1", Sha, CancellationToken.None));
        Assert.Equal(ErrorKind.Aborted, waited.Kind);
        Assert.Contains("still in progress", waited.Message, StringComparison.Ordinal);

        // Released (the first registration failed before it had a number): the next one claims the key at once.
        await parts.Claims.ReleaseAsync(first);
        var (_, second) = await parts.Claims.ClaimAsync("keyed", "job-1", Sha, CancellationToken.None);
        Assert.NotNull(second);

        // Never released (that registration vanished): taken over once it is older than IdempotencyClaimTimeout.
        parts.Clock.Advance(parts.Options.IdempotencyClaimTimeout + TimeSpan.FromSeconds(1));
        var (_, third) = await parts.Claims.ClaimAsync("keyed", "job-1", Sha, CancellationToken.None);
        Assert.NotNull(third);
        Assert.NotEqual(second.ETag, third.ETag);
        Assert.Equal(parts.Clock.GetUtcNow(), third.Value.ClaimedAt);
    }

    [Fact]
    public async Task A_repeat_finds_the_READY_version_and_refuses_a_different_checkpoint()
    {
        var parts = await EngineParts.CreateAsync(azurite, QuickWaits);
        var (_, claim) = await parts.Claims.ClaimAsync("keyed", "job-2", Sha, CancellationToken.None);
        var ready = parts.Version("keyed", 4, Sha, ModelVersionStatus.Ready, key: "job-2");
        await parts.Store.TryCreateAsync(RegistryLayout.VersionDocument("keyed", 4), ready, CancellationToken.None);
        await parts.Claims.PublishVersionAsync(claim!, 4, CancellationToken.None);

        var (existing, none) = await parts.Claims.ClaimAsync("keyed", "job-2", Sha, CancellationToken.None);
        Assert.Equal((4, ModelVersionStatus.Ready), (existing!.Version, existing.Status));
        Assert.Null(none);

        var different = await Assert.ThrowsAsync<IfcbException>(() => parts.Claims.ClaimAsync("keyed", "job-2", OtherSha, CancellationToken.None));
        Assert.Equal(ErrorKind.FailedPrecondition, different.Kind);
        Assert.Contains("version 4", different.Message, StringComparison.Ordinal);

        // Forgetting the key for another version leaves it; for its own version, the key is free again.
        await parts.Claims.ForgetAsync("keyed", "job-2", 5, CancellationToken.None);
        Assert.NotNull((await parts.Claims.ClaimAsync("keyed", "job-2", Sha, CancellationToken.None)).Existing);
        await parts.Claims.ForgetAsync("keyed", "job-2", 4, CancellationToken.None);
        var (gone, fresh) = await parts.Claims.ClaimAsync("keyed", "job-2", OtherSha, CancellationToken.None);
        Assert.Null(gone);
        Assert.Null(fresh!.Value.Version);
    }

    [Fact]
    public async Task A_repeat_of_a_key_whose_version_is_PENDING_waits_then_names_when_it_expires_and_a_FAILED_one_is_taken_over()
    {
        var parts = await EngineParts.CreateAsync(azurite, QuickWaits);
        var (_, claim) = await parts.Claims.ClaimAsync("keyed", "job-3", Sha, CancellationToken.None);
        var pending = parts.Version("keyed", 1, Sha, key: "job-3");
        await parts.Store.TryCreateAsync(RegistryLayout.VersionDocument("keyed", 1), pending, CancellationToken.None);
        await parts.Claims.PublishVersionAsync(claim!, 1, CancellationToken.None);

        var waited = await Assert.ThrowsAsync<IfcbException>(() => parts.Claims.ClaimAsync("keyed", "job-3", Sha, CancellationToken.None));
        Assert.Equal(ErrorKind.Aborted, waited.Kind);
        Assert.Contains("is registering version 1", waited.Message, StringComparison.Ordinal);
        Assert.Contains($"expires at {pending.CreatedAt + parts.Options.PendingTimeout:O}", waited.Message, StringComparison.Ordinal);

        // Abandoned: past PendingTimeout the repeat expires the version to FAILED and takes the key over.
        parts.Clock.Advance(parts.Options.PendingTimeout + TimeSpan.FromSeconds(1));
        var (existing, takenOver) = await parts.Claims.ClaimAsync("keyed", "job-3", Sha, CancellationToken.None);
        Assert.Null(existing);
        Assert.Null(takenOver!.Value.Version);
        var expired = await parts.Store.ReadAsync<ModelVersion>(RegistryLayout.VersionDocument("keyed", 1), CancellationToken.None);
        Assert.Equal((ModelVersionStatus.Failed, ModelRegistry.SystemActor), (expired!.Value.Status, expired.Value.UpdatedBy));
    }
}
