using Azure.Storage.Blobs;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// A registry process that dies mid-upload leaves a PENDING version whose idempotency key points at it. Such a
/// version expires to FAILED once it is older than <see cref="RegistryOptions.PendingTimeout"/> (lazily when read or
/// when its key is presented, and by the periodic sweep), and a retry with the same key then registers afresh.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class PendingExpiryTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";
    private static readonly TimeSpan PastTimeout = new RegistryOptions().PendingTimeout + TimeSpan.FromMinutes(1);

    /// <summary>
    /// Registers through a second registry instance (another process) whose storage dies half-way through the
    /// checkpoint: what is left in storage is exactly what a crash leaves — a PENDING version, the key claimed for it.
    /// </summary>
    private async Task CrashMidUploadAsync(BlobContainerClient container, ManualClock clock, string model, TestCheckpoint checkpoint, string key)
    {
        var storage = FaultyStorage.Over(azurite, container);
        var doomed = new ModelRegistry(storage.Container, timeProvider: clock);
        await Assert.ThrowsAnyAsync<Exception>(() => doomed.RegisterVersionAsync(
            model, checkpoint.Request(key), new FailingStream(checkpoint.Bytes, checkpoint.Bytes.Length / 2, storage.Crash), Actor));
    }

    [Fact]
    public async Task A_crash_mid_upload_leaves_PENDING_that_expires_so_the_same_key_registers_afresh()
    {
        var clock = new ManualClock();
        var (registry, container) = await azurite.NewRegistryAsync(new RegistryOptions { IdempotencyWaitTimeout = TimeSpan.FromSeconds(2) }, clock);
        await registry.CreateModelAsync("crashed", Actor);
        var checkpoint = TestCheckpoint.Create(64 * 1024);
        await CrashMidUploadAsync(container, clock, "crashed", checkpoint, "ci:run-1");
        Assert.Equal(ModelVersionStatus.Pending, (await registry.GetVersionAsync("crashed/1")).Status);

        // Within the timeout the first upload might still be running: the key waits for it, then says to retry (a PENDING
        // version is never handed back as if it were registered).
        clock.Advance(TimeSpan.FromMinutes(5));
        var early = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync("crashed", checkpoint.Request("ci:run-1"), checkpoint.Stream(), Actor));
        Assert.Equal(ErrorKind.Aborted, early.Kind);
        Assert.Contains("is registering version 1", early.Message, StringComparison.Ordinal);
        Assert.Contains("expires at 2025-06-01T12:15:00", early.Message, StringComparison.Ordinal);

        clock.Advance(PastTimeout);
        var retried = await registry.RegisterVersionAsync("crashed", checkpoint.Request("ci:run-1"), checkpoint.Stream(), Actor);

        Assert.False(retried.AlreadyRegistered);
        Assert.Equal((2, ModelVersionStatus.Ready), (retried.Version.Version, retried.Version.Status));
        var expired = await registry.GetVersionAsync("crashed/1");
        Assert.Equal(ModelVersionStatus.Failed, expired.Status);
        Assert.Contains("did not complete within 15 minutes", expired.StatusMessage, StringComparison.Ordinal);
        Assert.Contains(await container.BlobNamesAsync("audit/crashed/"), _ => true);
        Assert.Contains((await registry.GetAuditHistoryAsync("crashed")).Items,
            e => e.Action == AuditAction.VersionFailed && e.Version == 1 && e.Details["reason"].Contains("did not complete", StringComparison.Ordinal));
        // The key now belongs to the fresh version for good.
        var again = await registry.RegisterVersionAsync("crashed", checkpoint.Request("ci:run-1"), checkpoint.Stream(), Actor);
        Assert.Equal((2, true), (again.Version.Version, again.AlreadyRegistered));
    }

    [Fact]
    public async Task Reading_a_stale_PENDING_version_expires_it()
    {
        var clock = new ManualClock();
        var (registry, container) = await azurite.NewRegistryAsync(clock: clock);
        await registry.CreateModelAsync("read-expired", Actor);
        var checkpoint = TestCheckpoint.Create();
        await CrashMidUploadAsync(container, clock, "read-expired", checkpoint, "job-1");

        clock.Advance(PastTimeout);

        var read = await registry.GetVersionAsync("read-expired/1");
        Assert.Equal(ModelVersionStatus.Failed, read.Status);
        Assert.Contains("did not complete within", read.StatusMessage, StringComparison.Ordinal);
        var searched = Assert.Single((await registry.SearchVersionsAsync(new VersionFilter { ModelName = "read-expired" })).Items);
        Assert.Equal(ModelVersionStatus.Failed, searched.Status);
        Assert.Empty((await registry.SearchVersionsAsync(new VersionFilter { Status = ModelVersionStatus.Pending })).Items);
    }

    [Fact]
    public async Task The_sweep_expires_only_PENDING_versions_older_than_the_timeout()
    {
        var clock = new ManualClock();
        var (registry, container) = await azurite.NewRegistryAsync(clock: clock);
        await registry.CreateModelAsync("old", Actor);
        await registry.CreateModelAsync("young", Actor);
        var ready = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("old", ready.Request(), ready.Stream(), Actor);
        await CrashMidUploadAsync(container, clock, "old", TestCheckpoint.Create(), "old-key");
        clock.Advance(TimeSpan.FromMinutes(10));
        await CrashMidUploadAsync(container, clock, "young", TestCheckpoint.Create(), "young-key");

        Assert.Empty(await registry.ExpireStalePendingAsync(CancellationToken.None));

        clock.Advance(TimeSpan.FromMinutes(6));
        var expired = await registry.ExpireStalePendingAsync(CancellationToken.None);

        var only = Assert.Single(expired);
        Assert.Equal(("old", 2, ModelVersionStatus.Failed), (only.ModelName, only.Version, only.Status));
        Assert.Equal(ModelVersionStatus.Ready, (await registry.GetVersionAsync("old/1")).Status);
        Assert.Equal(ModelVersionStatus.Pending, (await registry.GetVersionAsync("young/1")).Status);
        Assert.Empty(await registry.ExpireStalePendingAsync(CancellationToken.None));

        clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal([("young", 1)], (await registry.ExpireStalePendingAsync(CancellationToken.None)).Select(v => (v.ModelName, v.Version)));
    }

    [Fact]
    public async Task The_sweep_gives_documents_written_before_the_status_was_mirrored_their_metadata_once()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("legacy", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("legacy", checkpoint.Request(), checkpoint.Stream(), Actor);
        var document = container.GetBlobClient("models/legacy/versions/0000001/version.json");
        await document.SetMetadataAsync(new Dictionary<string, string>()); // as written by an older registry

        Assert.Empty(await registry.ExpireStalePendingAsync(CancellationToken.None));

        Assert.Equal("ready", (await document.GetPropertiesAsync()).Value.Metadata["status"]);
        Assert.Equal(ModelVersionStatus.Ready, (await registry.GetVersionAsync("legacy/1")).Status);
    }

    [Fact]
    public async Task A_stalled_upload_fails_at_its_deadline_instead_of_holding_PENDING()
    {
        var (registry, container) = await azurite.NewRegistryAsync(new RegistryOptions { UploadTimeout = TimeSpan.FromSeconds(2) });
        await registry.CreateModelAsync("stalled", Actor);
        var checkpoint = TestCheckpoint.Create(64 * 1024);

        var error = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync(
            "stalled", checkpoint.Request("k"), new StallingStream(checkpoint.Bytes, 1000), Actor).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Equal(ErrorKind.DeadlineExceeded, error.Kind);
        Assert.Contains("did not finish within 2 seconds", error.Message, StringComparison.Ordinal);
        var version = await registry.GetVersionAsync("stalled/1");
        Assert.Equal(ModelVersionStatus.Failed, version.Status);
        Assert.DoesNotContain(await container.BlobNamesAsync("models/stalled/"), name => name.EndsWith(".ifcbmodel", StringComparison.Ordinal));
        // The key is free for a retry at once.
        Assert.Equal(2, (await registry.RegisterVersionAsync("stalled", checkpoint.Request("k"), checkpoint.Stream(), Actor)).Version.Version);
    }

    [Fact]
    public void The_pending_timeout_must_exceed_the_upload_deadline()
    {
        var container = new BlobContainerClient(azurite.Azurite.ConnectionString, "unused");
        var error = Assert.Throws<ArgumentException>(() => new ModelRegistry(container,
            new RegistryOptions { UploadTimeout = TimeSpan.FromMinutes(20), PendingTimeout = TimeSpan.FromMinutes(15) }));
        Assert.Contains("PendingTimeout", error.Message, StringComparison.Ordinal);
    }
}
