using System.Collections.Immutable;
using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// UpdateVersion (metadata outside the checkpoint's identity) and RenameModel (everything moves; the old name redirects
/// by its NotFound message), including a rename that races registrations.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class UpdateAndRenameTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    [Fact]
    public async Task UpdateVersion_changes_description_metrics_and_CI_lineage_and_nothing_else()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("updated", Actor);
        var checkpoint = TestCheckpoint.Create();
        var registered = (await registry.RegisterVersionAsync("updated",
            checkpoint.Request(metrics: new Dictionary<string, double> { ["f1_weighted"] = 0.8, ["val_loss"] = 0.3 }),
            checkpoint.Stream(), Actor)).Version;

        // Searched once before the update, so this process holds the old document: the search after it must not serve that.
        Assert.Equal("", Assert.Single((await registry.SearchVersionsAsync("name = 'updated'", "")).Items).Description);
        var update = new VersionUpdate
        {
            Description = "re-evaluated on the 2024 holdout",
            SetMetrics = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal,
                [new KeyValuePair<string, double>("f1_weighted", 0.85), new("accuracy", 0.9)]),
            RemoveMetrics = ["val_loss", "absent"],
            SourcePipelineUrl = "https://ci.example/run/7",
        };
        var updated = await registry.UpdateVersionAsync("updated", 1, update, "bob");

        Assert.Equal("re-evaluated on the 2024 holdout", updated.Description);
        Assert.Equal(new Dictionary<string, double> { ["accuracy"] = 0.9, ["f1_weighted"] = 0.85 }, updated.Metrics);
        Assert.Equal(("abc123", "https://ci.example/run/7"), (updated.Source.Commit, updated.Source.PipelineUrl));
        Assert.Equal((registered.Arch, registered.Sha256, registered.Status, registered.Source.TrainingJobId, registered.DatasetFingerprint),
            (updated.Arch, updated.Sha256, updated.Status, updated.Source.TrainingJobId, updated.DatasetFingerprint));
        Assert.Equal(registered.Classes.ToArray(), updated.Classes.ToArray());
        Assert.Equal("bob", updated.UpdatedBy);
        var stored = await registry.GetVersionAsync("updated/1");
        Assert.Equal((updated.Description, updated.UpdatedAt), (stored.Description, stored.UpdatedAt));
        Assert.Equal(updated.Metrics, stored.Metrics);
        var found = Assert.Single((await registry.SearchVersionsAsync("metrics.accuracy >= 0.9 AND metrics.f1_weighted = 0.85", "")).Items);
        Assert.Equal(("updated", 1, "re-evaluated on the 2024 holdout"), (found.ModelName, found.Version, found.Description));

        // The same update again changes nothing: nothing is written or audited.
        await registry.UpdateVersionAsync("updated", 1, update, "bob");
        var history = (await registry.GetAuditHistoryAsync("updated")).Items;
        var entry = Assert.Single(history, e => e.Action == AuditAction.VersionUpdated);
        Assert.Equal(new Dictionary<string, string>
        {
            ["description"] = "re-evaluated on the 2024 holdout", ["metrics.accuracy"] = "0.9", ["metrics.f1_weighted"] = "0.85",
            ["metrics.val_loss"] = "(removed)", ["source_pipeline_url"] = "https://ci.example/run/7",
        }, entry.Details);
    }

    [Theory]
    [InlineData("nothing", "The update changes nothing")]
    [InlineData("both", "Metric 'f1' is both set and removed")]
    [InlineData("nan", "Metric 'f1' is NaN; metrics must be finite numbers.")]
    [InlineData("long", "Description is 5001 characters; the limit is 5000.")]
    [InlineData("control", "Commit contains control characters.")]
    public async Task UpdateVersion_refuses_bad_updates_with_a_message(string kind, string message)
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        var f1 = ImmutableSortedDictionary<string, double>.Empty.Add("f1", 0.5);
        var update = kind switch
        {
            "nothing" => new VersionUpdate(),
            "both" => new VersionUpdate { SetMetrics = f1, RemoveMetrics = ["f1"] },
            "nan" => new VersionUpdate { SetMetrics = f1.SetItem("f1", double.NaN) },
            "long" => new VersionUpdate { Description = new string('x', 5001) },
            _ => new VersionUpdate { SourceCommit = "abc\u0001" },
        };

        var error = await Assert.ThrowsAsync<IfcbException>(() => registry.UpdateVersionAsync("absent", 1, update, Actor));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UpdateVersion_of_a_missing_version_is_NotFound()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("present", Actor);
        var update = new VersionUpdate { Description = "x" };

        Assert.Equal("Version 3 of model 'present' does not exist.",
            (await Assert.ThrowsAsync<IfcbException>(() => registry.UpdateVersionAsync("present", 3, update, Actor))).Message);
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.UpdateVersionAsync("absent", 1, update, Actor))).Kind);
    }

    [Fact]
    public async Task Rename_moves_versions_checkpoints_aliases_tags_keys_and_history_and_the_old_name_redirects()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("old-name", Actor, "plankton", new Dictionary<string, string> { ["team"] = "whoi" });
        var first = TestCheckpoint.Create();
        var second = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("old-name", first.Request("ci:1"), first.Stream(), Actor);
        await registry.RegisterVersionAsync("old-name", second.Request("ci:2"), second.Stream(), Actor);
        await registry.SetAliasAsync("old-name", "production", 1, Actor);
        // A blob kept beside a version (as derived files are) moves with it.
        await container.GetBlobClient("models/old-name/versions/0000002/derived/notes.json").UploadAsync(BinaryData.FromString("{}"));

        var renamed = await registry.RenameModelAsync("old-name", "new-name", "alice");
        Assert.Equal("{}", (await container.GetBlobClient("models/new-name/versions/0000002/derived/notes.json").DownloadContentAsync())
            .Value.Content.ToString());

        Assert.Equal(("new-name", "plankton", "whoi", 2), (renamed.Name, renamed.Description, renamed.Tags["team"], renamed.LatestVersion));
        Assert.Equal(1, renamed.Aliases["production"]);
        var production = await registry.GetVersionAsync("new-name@production");
        Assert.Equal(("new-name", 1, first.Sha256, ModelVersionStatus.Ready), (production.ModelName, production.Version, production.Sha256, production.Status));
        Assert.Equal(["production"], production.Aliases.ToArray());
        await using (var download = await registry.OpenCheckpointAsync(ModelRef.Parse("new-name/1")))
        {
            using var bytes = new MemoryStream();
            await download.Content.CopyToAsync(bytes);
            Assert.Equal(first.Bytes, bytes.ToArray());
        }

        // Idempotency keys moved with the versions; the search index and history are the new name's.
        var repeat = await registry.RegisterVersionAsync("new-name", second.Request("ci:2"), second.Stream(), Actor);
        Assert.True(repeat.AlreadyRegistered);
        Assert.Equal(2, repeat.Version.Version);
        Assert.Equal(["new-name/1", "new-name/2"], (await registry.SearchVersionsAsync("", "")).Items.Select(v => $"{v.ModelName}/{v.Version}"));
        var history = (await registry.GetAuditHistoryAsync("new-name")).Items;
        Assert.Equal(AuditAction.ModelCreated, history[0].Action);
        Assert.Equal((AuditAction.ModelRenamed, "alice", "old-name"), (history[^1].Action, history[^1].Actor, history[^1].Details["from"]));
        Assert.All(history, e => Assert.Equal("new-name", e.ModelName));

        // The old name answers NotFound naming the new one, for reads and writes alike, and keeps nothing but its redirect.
        const string Redirect = "Registered model 'old-name' was renamed to 'new-name'; use 'new-name'.";
        Func<Task>[] oldNameCalls =
        [
            () => registry.GetModelAsync("old-name"),
            () => registry.GetVersionAsync("old-name/1"),
            () => registry.GetVersionAsync("old-name@production"),
            () => registry.SetAliasAsync("old-name", "staging", 2, Actor),
            () => registry.SetModelTagAsync("old-name", "k", "v", Actor),
            () => registry.RegisterVersionAsync("old-name", first.Request(), first.Stream(), Actor),
            () => registry.RenameModelAsync("old-name", "third-name", Actor),
        ];
        foreach (var call in oldNameCalls)
        {
            var error = await Assert.ThrowsAsync<IfcbException>(call);
            Assert.Equal((ErrorKind.NotFound, Redirect), (error.Kind, error.Message));
        }

        Assert.Equal(["models/old-name/model.json"], await container.BlobNamesAsync("models/old-name/"));
        Assert.Empty((await registry.SearchModelsAsync("name = 'old-name'", "")).Items);
        Assert.Equal(AuditAction.ModelRenamed, (await registry.GetAuditHistoryAsync("old-name")).Items[^1].Action);

        // Re-creating the old name needs its redirect deleted first.
        var recreate = await Assert.ThrowsAsync<IfcbException>(() => registry.CreateModelAsync("old-name", Actor));
        Assert.Equal(ErrorKind.FailedPrecondition, recreate.Kind);
        Assert.Contains("delete 'old-name' (its redirect)", recreate.Message, StringComparison.Ordinal);
        await registry.DeleteModelAsync("old-name", Actor);
        Assert.Equal(0, (await registry.CreateModelAsync("old-name", Actor)).LatestVersion);

        Assert.Equal(ErrorKind.AlreadyExists,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.RenameModelAsync("old-name", "new-name", Actor))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.RenameModelAsync("new-name", "new-name", Actor))).Kind);
    }

    [Fact]
    public async Task A_rename_during_an_upload_fails_that_registration_naming_the_new_name()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("racing", Actor);
        var done = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("racing", done.Request(), done.Stream(), Actor);

        // Version 2 is allocated (PENDING) and its upload waits at the gate while a second replica renames the model.
        var slow = TestCheckpoint.Create();
        var gate = new GatedStream(slow.Bytes);
        var uploading = registry.RegisterVersionAsync("racing", slow.Request(), gate, Actor);
        await gate.Reading.WaitAsync(TimeSpan.FromSeconds(30));
        await new ModelRegistry(container).RenameModelAsync("racing", "raced", Actor);
        gate.Open();

        var failed = await Assert.ThrowsAsync<IfcbException>(() => uploading);
        Assert.Equal(ErrorKind.NotFound, failed.Kind);
        Assert.Contains("'racing' was renamed to 'raced'", failed.Message, StringComparison.Ordinal);
        var moved = await registry.GetVersionAsync("raced/2");
        Assert.Equal(ModelVersionStatus.Failed, moved.Status);
        Assert.Contains("renamed from 'racing' to 'raced'", moved.StatusMessage, StringComparison.Ordinal);
        Assert.Equal(ModelVersionStatus.Ready, (await registry.GetVersionAsync("raced/1")).Status);
        Assert.Equal(["models/racing/model.json"], await container.BlobNamesAsync("models/racing/"));
        Assert.DoesNotContain(await container.BlobNamesAsync("models/raced/"), name => name.EndsWith("0000002/checkpoint.ifcbmodel", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Registrations_racing_a_rename_either_land_under_the_new_name_or_fail_naming_it()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("busy", Actor);
        var replica = new ModelRegistry(container);
        var checkpoints = Enumerable.Range(0, 8).Select(_ => TestCheckpoint.Create(256)).ToArray();

        var registrations = checkpoints.Select(c => Task.Run(() => replica.RegisterVersionAsync("busy", c.Request(), c.Stream(), Actor))).ToArray();
        await Task.Delay(50);
        await registry.RenameModelAsync("busy", "calm", Actor);
        var outcomes = await Task.WhenAll(registrations.Select(OutcomeAsync));

        foreach (var (version, error) in outcomes)
        {
            if (error is not null)
            {
                Assert.Contains(error.Kind, new[] { ErrorKind.NotFound, ErrorKind.Aborted });
                Assert.Contains("'calm'", error.Message, StringComparison.Ordinal);
                continue;
            }

            // Succeeded: READY, and now found under the new name with the same checkpoint.
            var moved = await registry.GetVersionAsync(ModelRef.ToVersion("calm", version!.Version));
            Assert.Equal((ModelVersionStatus.Ready, version.Sha256), (moved.Status, moved.Sha256));
        }

        var succeeded = outcomes.Where(o => o.Error is null).Select(o => o.Version!.Version).ToHashSet();
        var readyUnderNewName = (await registry.SearchVersionsAsync("name = 'calm' AND status = 'READY'", "")).Items.Select(v => v.Version);
        Assert.Equal(succeeded.Order(), readyUnderNewName.Order());
        Assert.Equal(["models/busy/model.json"], await container.BlobNamesAsync("models/busy/"));
    }

    private static async Task<(ModelVersion? Version, IfcbException? Error)> OutcomeAsync(Task<VersionRegistration> registration)
    {
        try
        {
            return ((await registration).Version, null);
        }
        catch (IfcbException e)
        {
            return (null, e);
        }
    }

    /// <summary>Checkpoint bytes whose first read waits until <see cref="Open"/>; <see cref="Reading"/> completes at that read.</summary>
    private sealed class GatedStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _bytes = new(bytes, writable: false);
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Reading => _reading.Task;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => _bytes.Position;
            set => throw new NotSupportedException();
        }

        public void Open() => _open.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _reading.TrySetResult();
            await _open.Task.WaitAsync(cancellationToken);
            return _bytes.Read(buffer.Span);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
