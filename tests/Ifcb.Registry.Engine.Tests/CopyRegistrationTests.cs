using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Platform.Storage;
using Xunit.Abstractions;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// Registering a checkpoint that is already a blob (a training job's best checkpoint) by a server-side copy:
/// <see cref="ModelRegistry.RegisterVersionFromBlobAsync"/>, against Azurite.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class CopyRegistrationTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private const string Actor = "tests";

    /// <summary>The checkpoint where Training leaves it; with the sha256 it records as it writes, unless told not to.</summary>
    private async Task<BlobClient> SourceAsync(TestCheckpoint checkpoint, bool recordSha256 = true, BlobServiceClient? through = null)
    {
        var container = await azurite.Azurite.CreateContainerAsync("training");
        var blob = container.GetBlobClient("jobs/job-1/artifacts/model.ifcbmodel");
        await blob.UploadAsync(new BinaryData(checkpoint.Bytes), new BlobUploadOptions
        {
            Metadata = recordSha256 ? new Dictionary<string, string> { [BlobChecksum.Sha256Metadata] = checkpoint.Sha256 } : null,
        });
        return through is null ? blob : through.GetBlobContainerClient(container.Name).GetBlobClient(blob.Name);
    }

    private async Task<(ModelRegistry Registry, BlobContainerClient Container)> RegistryAsync(string model)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync(model, Actor);
        return (registry, container);
    }

    [Theory]
    [InlineData(true, "recorded when the source was written")]
    [InlineData(false, "read back after the copy")]
    public async Task A_copied_checkpoint_is_READY_with_its_sha256_and_size_and_the_same_bytes(bool recordSha256, string shaCheck)
    {
        var (registry, _) = await RegistryAsync("copied");
        var checkpoint = TestCheckpoint.Create(300_000);
        var source = await SourceAsync(checkpoint, recordSha256);

        var registered = await registry.RegisterVersionFromBlobAsync("copied", checkpoint.Request("job-1"), source, Actor);

        Assert.False(registered.AlreadyRegistered);
        Assert.Equal((1, ModelVersionStatus.Ready), (registered.Version.Version, registered.Version.Status));
        var stored = await registry.GetVersionAsync("copied/1");
        Assert.Equal((checkpoint.Sha256, (long)checkpoint.Bytes.Length), (stored.Sha256, stored.SizeBytes));
        Assert.Equal(224, stored.Resize);
        await using var download = await registry.OpenCheckpointAsync(ModelRef.ToVersion("copied", 1));
        using var bytes = new MemoryStream();
        await download.Content.CopyToAsync(bytes);
        Assert.Equal(checkpoint.Bytes, bytes.ToArray());
        var audit = (await registry.GetAuditHistoryAsync("copied")).Items.Single(e => e.Action == AuditAction.VersionRegistered);
        Assert.Equal("server-side copy", audit.Details["checkpoint_transfer"]);
        Assert.Equal(shaCheck, audit.Details["sha256_check"]);
    }

    [Fact]
    public async Task A_size_other_than_declared_is_DataLoss_and_leaves_a_FAILED_version_without_checkpoint()
    {
        var (registry, container) = await RegistryAsync("sized");
        var checkpoint = TestCheckpoint.Create(5000);
        var source = await SourceAsync(checkpoint);

        var error = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionFromBlobAsync("sized",
            checkpoint.Request() with { SizeBytes = checkpoint.Bytes.Length + 1 }, source, Actor));

        Assert.Equal(ErrorKind.DataLoss, error.Kind);
        Assert.Contains($"is {checkpoint.Bytes.Length} bytes but {checkpoint.Bytes.Length + 1} were declared", error.Message, StringComparison.Ordinal);
        await AssertFailedWithoutCheckpointAsync(registry, container, "sized", "were declared");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_wrong_sha256_is_DataLoss_and_leaves_a_FAILED_version_without_checkpoint(bool recordSha256)
    {
        var (registry, container) = await RegistryAsync("hashed");
        var checkpoint = TestCheckpoint.Create(5000);
        var other = TestCheckpoint.Create(5000);
        var source = await SourceAsync(checkpoint, recordSha256);

        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionFromBlobAsync("hashed", checkpoint.Request() with { Sha256 = other.Sha256 }, source, Actor));

        Assert.Equal(ErrorKind.DataLoss, error.Kind);
        Assert.Contains($"sha256 is {checkpoint.Sha256}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"but {other.Sha256} was declared", error.Message, StringComparison.Ordinal);
        await AssertFailedWithoutCheckpointAsync(registry, container, "hashed", "sha256");
    }

    [Fact]
    public async Task A_checkpoint_contradicting_its_metadata_is_refused_by_its_ranged_header_read()
    {
        var (registry, container) = await RegistryAsync("contradicted");
        var checkpoint = TestCheckpoint.Create(hparams: TestCheckpoint.Hparams() with { Resize = 299 });
        var source = await SourceAsync(checkpoint);

        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionFromBlobAsync("contradicted", checkpoint.Request() with { Resize = 224 }, source, Actor));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        await AssertFailedWithoutCheckpointAsync(registry, container, "contradicted", "resize");
    }

    [Fact]
    public async Task A_missing_source_is_FailedPrecondition_naming_the_training_job_and_uses_no_version_number()
    {
        var (registry, container) = await RegistryAsync("orphan");
        var checkpoint = TestCheckpoint.Create();
        var present = await SourceAsync(checkpoint);
        var source = azurite.Azurite.BlobServiceClient.GetBlobContainerClient(present.BlobContainerName).GetBlobClient("jobs/nobody/model.ifcbmodel");

        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionFromBlobAsync("orphan", checkpoint.Request("job-7"), source, Actor));

        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal($"The checkpoint of training job job-7 ({source.BlobContainerName}/jobs/nobody/model.ifcbmodel) does not exist; " +
            "nothing was registered. Train again, or register the checkpoint by hand if you have it.", error.Message);
        Assert.Empty((await registry.SearchVersionsAsync(new VersionFilter { ModelName = "orphan" })).Items);
        // The idempotency claim was released: the same key registers once the checkpoint is there.
        var registered = await registry.RegisterVersionFromBlobAsync("orphan", checkpoint.Request("job-7"), await SourceAsync(checkpoint), Actor);
        Assert.Equal(1, registered.Version.Version);
        Assert.Single(await container.BlobNamesAsync("models/orphan/versions/"), n => n.EndsWith(".ifcbmodel", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repeat_of_the_idempotency_key_returns_the_version_without_looking_at_the_source()
    {
        var (registry, _) = await RegistryAsync("repeated");
        var checkpoint = TestCheckpoint.Create();
        var source = await SourceAsync(checkpoint);
        var first = await registry.RegisterVersionFromBlobAsync("repeated", checkpoint.Request("training:job-1"), source, Actor);
        await source.DeleteAsync();

        var again = await registry.RegisterVersionFromBlobAsync("repeated", checkpoint.Request("training:job-1"), source, Actor);

        Assert.True(again.AlreadyRegistered);
        Assert.Equal(first.Version.Version, again.Version.Version);
        Assert.Equal(ModelVersionStatus.Ready, again.Version.Status);
        Assert.Single((await registry.SearchVersionsAsync(new VersionFilter { ModelName = "repeated" })).Items);
    }

    /// <summary>
    /// The measurement behind the handover: bytes that pass through the registry process (request and response bodies
    /// of every storage call it makes) to register a 50 MB checkpoint, streamed as before and copied now.
    /// </summary>
    [Fact]
    public async Task A_50_MB_checkpoint_is_registered_with_only_a_few_KiB_through_the_registry_process()
    {
        var checkpoint = TestCheckpoint.Create(50 * 1024 * 1024);
        var streamed = new StorageTraffic(azurite);
        var copied = new StorageTraffic(azurite);
        var (_, streamedContainer) = await RegistryAsync("streamed");
        var (_, copiedContainer) = await RegistryAsync("copied");
        var streamedSource = await SourceAsync(checkpoint, through: streamed.Service);
        var copiedSource = await SourceAsync(checkpoint, through: copied.Service);
        var streamedVia = new ModelRegistry(streamed.Service.GetBlobContainerClient(streamedContainer.Name));
        var copiedVia = new ModelRegistry(copied.Service.GetBlobContainerClient(copiedContainer.Name));

        // Before: the consumer downloaded Training's blob and uploaded it through the engine.
        await streamedVia.RegisterVersionAsync("streamed", checkpoint.Request("job-1"),
            async token => (await streamedSource.DownloadStreamingAsync(cancellationToken: token)).Value.Content, Actor);
        await copiedVia.RegisterVersionFromBlobAsync("copied", checkpoint.Request("job-1"), copiedSource, Actor);

        output.WriteLine($"checkpoint: {checkpoint.Bytes.Length:N0} bytes");
        output.WriteLine($"streamed (download + upload): {streamed.Describe()}");
        output.WriteLine($"server-side copy:             {copied.Describe()}");
        Assert.True(streamed.Total >= 2L * checkpoint.Bytes.Length);
        Assert.True(copied.Total < 256 * 1024, copied.Describe());
    }

    private static async Task AssertFailedWithoutCheckpointAsync(ModelRegistry registry, BlobContainerClient container, string model, string reason)
    {
        var version = await registry.GetVersionAsync(ModelRef.ToVersion(model, 1));
        Assert.Equal(ModelVersionStatus.Failed, version.Status);
        Assert.Contains(reason, version.StatusMessage, StringComparison.Ordinal);
        Assert.DoesNotContain(await container.BlobNamesAsync($"models/{model}/"), n => n.EndsWith(".ifcbmodel", StringComparison.Ordinal));
    }

    /// <summary>Counts the request and response body bytes of every storage call made through <see cref="Service"/>.</summary>
    private sealed class StorageTraffic : HttpPipelinePolicy
    {
        private long _sent;
        private long _received;
        private int _requests;

        public StorageTraffic(AzuriteFixture azurite)
        {
            var options = new BlobClientOptions();
            options.AddPolicy(this, HttpPipelinePosition.PerRetry);
            Service = new BlobServiceClient(azurite.Azurite.ConnectionString, options);
        }

        public BlobServiceClient Service { get; }

        public long Total => Interlocked.Read(ref _sent) + Interlocked.Read(ref _received);

        public string Describe() =>
            $"{_requests} requests, {_sent:N0} bytes sent + {_received:N0} bytes received = {Total:N0} bytes";

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            ProcessNext(message, pipeline);
            Count(message);
        }

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
            Count(message);
        }

        private void Count(HttpMessage message)
        {
            Interlocked.Increment(ref _requests);
            if (message.Request.Content is { } content && content.TryComputeLength(out var sent))
            {
                Interlocked.Add(ref _sent, sent);
            }

            // A HEAD (Get Blob Properties) reports the blob's length but carries no body.
            if (message.Request.Method != RequestMethod.Head && message.HasResponse && message.Response.Headers.ContentLength is { } received)
            {
                Interlocked.Add(ref _received, received);
            }
        }
    }
}
