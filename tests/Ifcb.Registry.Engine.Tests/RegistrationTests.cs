using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class RegistrationTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task Hundred_parallel_registrations_get_versions_1_to_100_exactly()
    {
        var (first, container) = await azurite.NewRegistryAsync();
        await first.CreateModelAsync("race", Actor);
        var checkpoint = TestCheckpoint.Create(256);

        // Five registry instances stand for five service replicas (they share nothing but the container), each
        // serving twenty concurrent registrations: 100 in flight, racing both within and across instances.
        var replicas = Enumerable.Range(0, 5).Select(_ => new ModelRegistry(container)).ToArray();
        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(() =>
            replicas[i % replicas.Length].RegisterVersionAsync("race", checkpoint.Request(), checkpoint.Stream(), $"actor-{i}"))));

        Assert.Equal(Enumerable.Range(1, 100), results.Select(r => r.Version.Version).Order());
        Assert.All(results, r => Assert.Equal(ModelVersionStatus.Ready, r.Version.Status));
        Assert.Equal(100, (await first.GetModelAsync("race")).LatestVersion);
        var all = await first.SearchVersionsAsync(new VersionFilter { ModelName = "race" }, pageSize: 1000);
        Assert.Equal(Enumerable.Range(1, 100), all.Items.Select(v => v.Version));
        Assert.All(all.Items, v => Assert.Equal(ModelVersionStatus.Ready, v.Status));
    }

    [Fact]
    public async Task Registers_metadata_and_round_trips_the_checkpoint()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("roundtrip", Actor, "IFCB classifier");
        var checkpoint = TestCheckpoint.Create(3 * 1024 * 1024 + 17);
        var request = checkpoint.Request(metrics: new Dictionary<string, double> { ["f1_weighted"] = 0.91 });

        var registered = (await registry.RegisterVersionAsync("roundtrip", request, checkpoint.Stream(), "ci")).Version;

        Assert.Equal(1, registered.Version);
        Assert.Equal(ModelVersionStatus.Ready, registered.Status);
        var fetched = await registry.GetVersionAsync("roundtrip/1");
        Assert.Equal("resnet18", fetched.Arch);
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], fetched.Classes.ToArray());
        Assert.Equal(ImgNorm.Parse("0.667 0.161"), fetched.ImgNorm);
        Assert.Equal(0.91, fetched.Metrics["f1_weighted"]);
        Assert.Equal("abc123", fetched.Source.Commit);
        Assert.Equal(checkpoint.Sha256, fetched.Sha256);
        Assert.Equal("ci", fetched.CreatedBy);

        await using var download = await registry.OpenCheckpointAsync(ModelRef.Parse("roundtrip/latest"));
        using var copy = new MemoryStream();
        await download.Content.CopyToAsync(copy);
        Assert.Equal(checkpoint.Bytes, copy.ToArray());
        Assert.Equal(checkpoint.Sha256, download.Sha256);
    }

    [Fact]
    public async Task Wrong_sha256_is_DataLoss_and_leaves_a_FAILED_version_without_checkpoint()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("corrupt", Actor);
        var checkpoint = TestCheckpoint.Create(5000);
        var other = TestCheckpoint.Create(5000);

        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync("corrupt", checkpoint.Request() with { Sha256 = other.Sha256 }, checkpoint.Stream(), Actor));

        Assert.Equal(ErrorKind.DataLoss, error.Kind);
        Assert.Contains("sha256", error.Message, StringComparison.Ordinal);
        var version = await registry.GetVersionAsync("corrupt/1");
        Assert.Equal(ModelVersionStatus.Failed, version.Status);
        Assert.Contains("sha256", version.StatusMessage, StringComparison.Ordinal);
        Assert.DoesNotContain(await container.BlobNamesAsync("models/corrupt/"), name => name.EndsWith(".ifcbmodel", StringComparison.Ordinal));
        Assert.Empty((await registry.SearchVersionsAsync(new VersionFilter { Status = ModelVersionStatus.Ready })).Items);
        await Assert.ThrowsAsync<IfcbException>(() => registry.GetVersionAsync("corrupt/latest"));
        var download = await Assert.ThrowsAsync<IfcbException>(() => registry.OpenCheckpointAsync(ModelRef.Parse("corrupt/1")));
        Assert.Equal(ErrorKind.FailedPrecondition, download.Kind);
    }

    [Theory]
    [InlineData(-1)] // stream shorter than declared
    [InlineData(+1)] // stream longer than declared
    public async Task Wrong_size_is_DataLoss(int sizeError)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("sized", Actor);
        var checkpoint = TestCheckpoint.Create(9000);

        var error = await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync(
            "sized", checkpoint.Request() with { SizeBytes = checkpoint.Bytes.Length - sizeError }, checkpoint.Stream(), Actor));

        Assert.Equal(ErrorKind.DataLoss, error.Kind);
        Assert.Equal(ModelVersionStatus.Failed, (await registry.GetVersionAsync("sized/1")).Status);
        Assert.DoesNotContain(await container.BlobNamesAsync("models/sized/"), name => name.EndsWith(".ifcbmodel", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Oversized_checkpoint_is_rejected_before_anything_is_stored()
    {
        var (registry, container) = await azurite.NewRegistryAsync(new RegistryOptions { MaxCheckpointBytes = 1000 });
        await registry.CreateModelAsync("big", Actor);
        var checkpoint = TestCheckpoint.Create(1001);
        var before = await container.BlobNamesAsync();
        var stream = checkpoint.Stream();

        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync("big", checkpoint.Request("job-big"), stream, Actor));

        Assert.Equal(ErrorKind.ResourceExhausted, error.Kind);
        Assert.Contains("at most 1000 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, stream.Position);
        Assert.Equal(before, await container.BlobNamesAsync());
    }

    [Fact]
    public async Task Same_idempotency_key_twice_returns_the_first_version()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("idem", Actor);
        var checkpoint = TestCheckpoint.Create();

        var first = await registry.RegisterVersionAsync("idem", checkpoint.Request("train-42"), checkpoint.Stream(), Actor);
        var second = await registry.RegisterVersionAsync("idem", checkpoint.Request("train-42"), checkpoint.Stream(), Actor);

        Assert.False(first.AlreadyRegistered);
        Assert.True(second.AlreadyRegistered);
        Assert.Equal(first.Version.Version, second.Version.Version);
        Assert.Single((await registry.SearchVersionsAsync(new VersionFilter { ModelName = "idem" })).Items);

        var differentBytes = TestCheckpoint.Create();
        var conflict = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync("idem", differentBytes.Request("train-42"), differentBytes.Stream(), Actor));
        Assert.Equal(ErrorKind.FailedPrecondition, conflict.Kind);
    }

    [Fact]
    public async Task Concurrent_duplicates_with_one_idempotency_key_create_one_version()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("idem-race", Actor);
        var checkpoint = TestCheckpoint.Create(64 * 1024);

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() =>
            registry.RegisterVersionAsync("idem-race", checkpoint.Request("pipeline-7"), checkpoint.Stream(), Actor))));

        Assert.Single(results.Select(r => r.Version.Version).Distinct());
        Assert.Single(results, r => !r.AlreadyRegistered);
        var versions = (await registry.SearchVersionsAsync(new VersionFilter { ModelName = "idem-race" })).Items;
        Assert.Equal(1, Assert.Single(versions).Version);
        Assert.Equal(ModelVersionStatus.Ready, versions[0].Status);
    }

    [Fact]
    public async Task A_failed_attempt_does_not_block_a_retry_with_the_same_key()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("retry", Actor);
        var checkpoint = TestCheckpoint.Create();

        await Assert.ThrowsAsync<IfcbException>(() => registry.RegisterVersionAsync(
            "retry", checkpoint.Request("job-9") with { SizeBytes = checkpoint.Bytes.Length + 1 }, checkpoint.Stream(), Actor));
        var retried = await registry.RegisterVersionAsync("retry", checkpoint.Request("job-9"), checkpoint.Stream(), Actor);

        Assert.False(retried.AlreadyRegistered);
        Assert.Equal(2, retried.Version.Version);
        Assert.Equal(ModelVersionStatus.Ready, retried.Version.Status);
        Assert.Equal(2, (await registry.RegisterVersionAsync("retry", checkpoint.Request("job-9"), checkpoint.Stream(), Actor)).Version.Version);
    }

    [Fact]
    public async Task Corrupted_checkpoint_bytes_fail_the_download_with_DataLoss()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("rot", Actor);
        var checkpoint = TestCheckpoint.Create(2048);
        var version = (await registry.RegisterVersionAsync("rot", checkpoint.Request(), checkpoint.Stream(), Actor)).Version;
        var tampered = (byte[])checkpoint.Bytes.Clone();
        tampered[100] ^= 0xFF;
        await container.GetBlobClient(version.CheckpointBlob).UploadAsync(new BinaryData(tampered), overwrite: true);

        await using var download = await registry.OpenCheckpointAsync(ModelRef.ToVersion("rot", 1));
        var error = await Assert.ThrowsAsync<IfcbException>(() => download.Content.CopyToAsync(Stream.Null));
        Assert.Equal(ErrorKind.DataLoss, error.Kind);
    }

    [Fact]
    public async Task Registering_into_a_missing_model_is_NotFound()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        var checkpoint = TestCheckpoint.Create();
        var error = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync("nobody", checkpoint.Request(), checkpoint.Stream(), Actor));
        Assert.Equal(ErrorKind.NotFound, error.Kind);
        Assert.Contains("create it first", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("models/../escape")]
    [InlineData("a/b")]
    [InlineData("bell\a")]
    [InlineData("x12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678")]
    public async Task Unsafe_model_names_are_rejected_before_touching_storage(string name)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        var checkpoint = TestCheckpoint.Create();

        var create = await Assert.ThrowsAsync<IfcbException>(() => registry.CreateModelAsync(name, Actor));
        var register = await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync(name, checkpoint.Request(), checkpoint.Stream(), Actor));
        var alias = await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("fine", name, 1, Actor));

        Assert.All(new[] { create, register, alias }, e => Assert.Equal(ErrorKind.InvalidArgument, e.Kind));
        Assert.Empty(await container.BlobNamesAsync());
    }
}
