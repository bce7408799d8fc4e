using System.Diagnostics;
using System.Security.Cryptography;
using Aspire.Hosting.Testing;
using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Protos;
using Ifcb.Testing;
using MassTransit;
using static TorchSharp.torch;

namespace Ifcb.EndToEnd.Tests;

/// <summary>The Registry service under the real AppHost: CI uploads, aliases, tags, search, downloads, deletion, events and training.</summary>
[Collection(PlatformCollection.Name)]
public sealed class RegistryTests(PlatformFixture platform)
{
    private static readonly Lazy<byte[]> RealCheckpoint = new(SaveUntrainedResnet18);

    private Ifcb.Protos.Registry.RegistryClient Registry => new(platform.Channel("registry"));

    /// <summary>Model names unique to one run, so tests never see each other's versions.</summary>
    private static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private static byte[] SaveUntrainedResnet18()
    {
        using var model = ModelZoo.Create("resnet18", 2, false);
        // The img-norm the CI header declares (the registry checks the checkpoint's hparams against the declaration).
        var hparams = new ModelHparams("resnet18", ["Mesodinium_major", "Strombidium-like"], 32, new Ifcb.Contracts.ImgNorm([0.667], [0.161]),
            false, 7, "ci-model", "ci", null, DateTimeOffset.UtcNow, "e2e");
        using var stream = new MemoryStream();
        Checkpoint.Save(stream, hparams, model);
        return stream.ToArray();
    }

    private static RegisterVersionHeader Header(string name, double f1 = 0.8, string idempotencyKey = "") => new()
    {
        Name = name,
        IdempotencyKey = idempotencyKey,
        Metadata = new VersionMetadata
        {
            Arch = "resnet18", Classes = { "Mesodinium_major", "Strombidium-like" }, Resize = 32, Metrics = { ["f1_weighted"] = f1 },
            SourceCommit = "0123abc", SourcePipelineUrl = "https://ci.example/pipelines/42", DatasetFingerprint = "fp-1",
            ImgNorm = new ImgNormValues { Mean = { 0.667 }, Std = { 0.161 } },
        },
    };

    private Task<Ifcb.Protos.ModelVersion> UploadAsync(RegisterVersionHeader header, byte[] bytes, Metadata? headers = null) =>
        RegistryUpload.RegisterCheckpointAsync(Registry, header, new MemoryStream(bytes), headers ?? PlatformFixture.Auth);

    private async Task<RpcException> RefusedAsync(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

    /// <summary>Blob names in the registry's container under a version's folder, read straight from Azurite.</summary>
    private async Task<string[]> StoredBlobsAsync(string model, int version)
    {
        var blobs = new BlobServiceClient(await platform.App.GetConnectionStringAsync("blobs")).GetBlobContainerClient("registry");
        var names = new List<string>();
        await foreach (var blob in blobs.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"models/{model}/versions/{version:D7}/", CancellationToken.None))
            names.Add(blob.Name[(blob.Name.LastIndexOf('/') + 1)..]);
        return [.. names];
    }

    private async Task<(byte[] Bytes, string Sha256)> DownloadAsync(VersionRef reference)
    {
        using var destination = new MemoryStream();
        using var call = Registry.DownloadCheckpoint(reference);
        var (sha, _) = await ChunkedDownload.CopyToAsync(call.ResponseStream, destination, c => (c.Data.Memory, c.TotalSize, c.Sha256));
        return (destination.ToArray(), sha);
    }

    [Fact]
    public async Task Ci_upload_registers_a_ready_version_that_downloads_and_loads_and_repeats_idempotently()
    {
        var name = UniqueName("ci");
        var bytes = RealCheckpoint.Value;
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var version = await UploadAsync(Header(name, idempotencyKey: "ci:run-1"), bytes);

        Assert.Equal(VersionStatus.Ready, version.Status);
        Assert.Equal(1, version.Version);
        Assert.Equal(sha, version.CheckpointSha256);
        Assert.Equal(bytes.LongLength, version.CheckpointSize);
        Assert.Equal("bootstrap", version.CreatedBy);
        Assert.Equal([0.667, 0.667, 0.667], version.Metadata.ImgNorm.Mean.ToArray());
        Assert.Equal("https://ci.example/pipelines/42", version.Metadata.SourcePipelineUrl);
        Assert.Equal(32, version.Metadata.Resize);
        var registered = await platform.Events.WaitForAsync<ModelVersionRegistered>(e => e.Model == name, TimeSpan.FromSeconds(30));
        Assert.Equal((1, sha, "bootstrap"), (registered.Version, registered.Sha256, registered.Actor));

        // A re-run pipeline with the same key gets the same version back, not a second one. The registry needs none of
        // the bytes then but reads them all before answering: an answer racing data in flight once made Kestrel reset
        // the connection and the client lost it (or waited forever). Three repeats to give such a race a chance.
        for (var repeat = 0; repeat < 3; repeat++)
        {
            var again = await UploadAsync(Header(name, idempotencyKey: "ci:run-1"), bytes).WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(1, again.Version);
        }
        Assert.Equal(1, (await Registry.GetModelAsync(new GetModelRequest { Name = name })).LatestVersion);

        var (downloaded, downloadedSha) = await DownloadAsync(new VersionRef { Name = name, Version = 1 });
        Assert.Equal(sha, downloadedSha);
        var loaded = Checkpoint.Load(new MemoryStream(downloaded));
        using var model = loaded.Model;
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], loaded.Hparams.Classes);
    }

    [Fact]
    public async Task A_corrupted_or_truncated_upload_is_data_loss_and_never_ready()
    {
        var name = UniqueName("corrupt");
        // Larger than the service's 4 MiB upload block, so the bad bytes arrive after blocks were already staged.
        var bytes = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 1000);
        var header = Header(name);
        header.Sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        header.Size = bytes.Length;
        var corrupted = (byte[])bytes.Clone();
        corrupted[^17] ^= 0xFF; // one corrupted byte in the last chunk

        var dataLoss = await RefusedAsync(() => UploadAsync(header, corrupted));
        Assert.Equal(StatusCode.DataLoss, dataLoss.StatusCode);
        Assert.Contains("sha256", dataLoss.Status.Detail, StringComparison.Ordinal);
        var truncated = await RefusedAsync(() => UploadAsync(header, bytes[..^1]));
        Assert.Equal(StatusCode.DataLoss, truncated.StatusCode);

        var failed = await Registry.GetVersionAsync(new VersionRef { Name = name, Version = 1 });
        Assert.Equal(VersionStatus.Failed, failed.Status);
        Assert.NotEmpty(failed.StatusMessage);
        var ready = await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = name, Status = VersionStatus.Ready });
        Assert.Empty(ready.Versions);
        var download = await RefusedAsync(() => DownloadAsync(new VersionRef { Name = name, Version = 1 }));
        Assert.Equal(StatusCode.FailedPrecondition, download.StatusCode);
        Assert.Equal(["version.json"], await StoredBlobsAsync(name, 1)); // no checkpoint bytes were committed
    }

    [Fact]
    public async Task An_oversized_declaration_is_refused_before_anything_is_stored()
    {
        var name = UniqueName("huge");
        var header = Header(name);
        header.Sha256 = new string('a', 64);
        header.Size = 3L * 1024 * 1024 * 1024;

        // Refused on the header: the client sends none of the data (it waits for the registry's go-ahead header).
        var sent = new LastProgress();
        var refused = await RefusedAsync(() => RegistryUpload.RegisterCheckpointAsync(Registry, header,
            new MemoryStream(RandomNumberGenerator.GetBytes(8 * 1024 * 1024)), PlatformFixture.Auth, sent).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal(0, sent.Value);
        var missing = await RefusedAsync(async () => await Registry.GetModelAsync(new GetModelRequest { Name = name }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Writes_need_the_api_key_and_reads_do_not()
    {
        var name = UniqueName("auth");
        var anonymous = await RefusedAsync(async () => await Registry.CreateModelAsync(new CreateModelRequest { Name = name }));
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        var wrong = await RefusedAsync(async () =>
            await Registry.CreateModelAsync(new CreateModelRequest { Name = name }, new Metadata { { "authorization", "Bearer wrong" } }));
        Assert.Equal(StatusCode.PermissionDenied, wrong.StatusCode);
        var upload = await RefusedAsync(() => UploadAsync(Header(name), RandomNumberGenerator.GetBytes(1024), new Metadata()));
        Assert.Equal(StatusCode.Unauthenticated, upload.StatusCode);

        var read = await RefusedAsync(async () => await Registry.GetModelAsync(new GetModelRequest { Name = name }));
        Assert.Equal(StatusCode.NotFound, read.StatusCode);
        var badName = await RefusedAsync(async () => await Registry.CreateModelAsync(new CreateModelRequest { Name = "../escape" }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, badName.StatusCode);
    }

    [Fact]
    public async Task Aliases_tags_search_deletion_and_history()
    {
        var name = UniqueName("lifecycle");
        var created = await Registry.CreateModelAsync(new CreateModelRequest { Name = name, Description = "e2e", Tags = { ["team"] = "plankton" } },
            PlatformFixture.Auth);
        Assert.Equal("plankton", created.Tags["team"]);
        foreach (var f1 in new[] { 0.5, 0.7, 0.9 })
            await UploadAsync(Header(name, f1), RealCheckpoint.Value);

        // Alias: set, move (atomically, announced with the previous target), resolve.
        await Registry.SetAliasAsync(new SetAliasRequest { Name = name, Alias = "production", Version = 1 }, PlatformFixture.Auth);
        var moved = await Registry.SetAliasAsync(new SetAliasRequest { Name = name, Alias = "production", Version = 2 }, PlatformFixture.Auth);
        Assert.Equal(2, moved.Aliases["production"]);
        var production = await Registry.GetVersionAsync(new VersionRef { Name = name, Alias = "production" });
        Assert.Equal((2, "production"), (production.Version, production.Aliases.Single()));
        await platform.Events.WaitForAsync<ModelAliasChanged>(e => e.Model == name && e.Version == 2 && e.PreviousVersion == 1, TimeSpan.FromSeconds(30));
        var missingVersion = await RefusedAsync(async () =>
            await Registry.SetAliasAsync(new SetAliasRequest { Name = name, Alias = "staging", Version = 9 }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, missingVersion.StatusCode);

        // Tags on versions and models.
        var tagged = await Registry.SetVersionTagAsync(new SetTagRequest { Name = name, Version = 3, Key = "stage", Value = "candidate" }, PlatformFixture.Auth);
        Assert.Equal("candidate", tagged.Metadata.Tags["stage"]);
        var byTag = await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = name, Tags = { ["stage"] = "candidate" } });
        Assert.Equal([3], byTag.Versions.Select(v => v.Version));
        await Registry.DeleteVersionTagAsync(new DeleteTagRequest { Name = name, Version = 3, Key = "stage" }, PlatformFixture.Auth);
        Assert.Empty((await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = name, Tags = { ["stage"] = "candidate" } })).Versions);
        await Registry.SetModelTagAsync(new SetTagRequest { Name = name, Key = "owner", Value = "whoi" }, PlatformFixture.Auth);
        var untagged = await Registry.DeleteModelTagAsync(new DeleteTagRequest { Name = name, Key = "team" }, PlatformFixture.Auth);
        Assert.Equal(["owner"], untagged.Tags.Keys);

        // Search by metric threshold, one version per page.
        var threshold = new SearchVersionsRequest { Name = name, Metrics = { new MetricThreshold { Metric = "f1_weighted", Op = ">=", Value = 0.7 } }, PageSize = 1 };
        var first = await Registry.SearchVersionsAsync(threshold);
        Assert.Equal([2], first.Versions.Select(v => v.Version));
        threshold.PageToken = first.NextPageToken;
        var second = await Registry.SearchVersionsAsync(threshold);
        Assert.Equal([3], second.Versions.Select(v => v.Version));
        Assert.Empty(second.NextPageToken);
        var badOp = await RefusedAsync(async () => await Registry.SearchVersionsAsync(new SearchVersionsRequest
        {
            Metrics = { new MetricThreshold { Metric = "f1_weighted", Op = "~", Value = 1 } },
        }));
        Assert.Equal(StatusCode.InvalidArgument, badOp.StatusCode);

        // Deleting an aliased version is refused unless forced; a forced delete takes the alias and the blobs with it.
        var refused = await RefusedAsync(async () =>
            await Registry.DeleteVersionAsync(new DeleteVersionRequest { Name = name, Version = 2 }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        var deleted = await Registry.DeleteVersionAsync(new DeleteVersionRequest { Name = name, Version = 2, Force = true }, PlatformFixture.Auth);
        Assert.Equal(["production"], deleted.Aliases.ToArray());
        var gone = await RefusedAsync(async () => await Registry.GetVersionAsync(new VersionRef { Name = name, Version = 2 }));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.Empty(await StoredBlobsAsync(name, 2));
        Assert.Equal(["checkpoint.ifcbmodel", "version.json"], (await StoredBlobsAsync(name, 3)).Order(StringComparer.Ordinal));
        var noCheckpoint = await RefusedAsync(() => DownloadAsync(new VersionRef { Name = name, Version = 2 }));
        Assert.Equal(StatusCode.NotFound, noCheckpoint.StatusCode);
        Assert.Empty((await Registry.GetModelAsync(new GetModelRequest { Name = name })).Aliases);
        await platform.Events.WaitForAsync<ModelVersionDeleted>(e => e.Model == name && e.Version == 2, TimeSpan.FromSeconds(30));
        await platform.Events.WaitForAsync<ModelAliasChanged>(e => e.Model == name && e.Version == null && e.PreviousVersion == 2, TimeSpan.FromSeconds(30));

        // The audit log has every alias move with its before and after.
        var history = await Registry.GetHistoryAsync(new GetHistoryRequest { Name = name });
        var aliasMoves = history.Entries.Where(e => e.Action.StartsWith("alias.", StringComparison.Ordinal))
            .Select(e => (e.Action, e.Details["previous_version"], e.Details["new_version"], e.Actor)).ToArray();
        Assert.Equal([("alias.set", "", "1", "bootstrap"), ("alias.moved", "1", "2", "bootstrap"), ("alias.deleted", "2", "", "bootstrap")], aliasMoves);
        Assert.Equal(3, history.Entries.Count(e => e.Action == "version.registered"));
        Assert.Contains(history.Entries, e => e.Action == "version.deleted" && e.Version == 2);

        // A model with versions is only deleted by force.
        var notEmpty = await RefusedAsync(async () => await Registry.DeleteModelAsync(new DeleteModelRequest { Name = name }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.FailedPrecondition, notEmpty.StatusCode);
        await Registry.DeleteModelAsync(new DeleteModelRequest { Name = name, Force = true }, PlatformFixture.Auth);
        await platform.Events.WaitForAsync<ModelVersionDeleted>(e => e.Model == name && e.Version == 3, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_finished_training_job_is_registered_once_and_its_checkpoint_runs()
    {
        var datasets = new Datasets.DatasetsClient(platform.Channel("training"));
        await DatasetUpload.UploadFolderAsync(datasets, "sample-registry", Path.Combine(RepoPaths.Root, "testdata", "training-sample"), PlatformFixture.Auth);
        var training = new Ifcb.Protos.Training.TrainingClient(platform.Channel("training"));
        var job = await training.StartTrainingAsync(new StartTrainingRequest
        {
            Dataset = "sample-registry", Model = "resnet18", TrainId = "e2e-registry", Untrain = true, Seed = 7, Resize = 32, Batch = 8,
            Emax = 2, Emin = 1, RegisterAs = "e2e-auto",
        }, PlatformFixture.Auth);

        var registered = await platform.Events.WaitForAsync<ModelVersionRegistered>(
            e => e.Model == "e2e-auto" && e.SourceTrainingJob == job.JobId, TimeSpan.FromMinutes(5));
        Assert.Equal("training-service", registered.Actor);
        var version = await Registry.GetVersionAsync(new VersionRef { Name = "e2e-auto", Version = registered.Version });
        Assert.Equal(VersionStatus.Ready, version.Status);
        Assert.Equal(job.JobId, version.Metadata.SourceTrainingJob);
        Assert.Equal(("resnet18", 32, false), (version.Metadata.Arch, version.Metadata.Resize, version.Metadata.Pretrained));
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], version.Metadata.Classes);
        Assert.Contains("f1_weighted", version.Metadata.Metrics.Keys);
        Assert.Equal("training:" + job.JobId, version.IdempotencyKey);

        var (bytes, sha) = await DownloadAsync(new VersionRef { Name = "e2e-auto", Version = registered.Version });
        Assert.Equal(registered.Sha256, sha);
        var loaded = Checkpoint.Load(new MemoryStream(bytes));
        using (var model = loaded.Model)
        using (var scope = NewDisposeScope())
        using (no_grad())
            Assert.Equal([1L, 2L], model.Logits(rand(1, 3, 32, 32)).shape);

        // Redelivery of the same ModelTrained (published again here) registers nothing new.
        var trained = await platform.Events.WaitForAsync<ModelTrained>(e => e.JobId == job.JobId, TimeSpan.FromSeconds(30));
        await RepublishAsync(trained);
        var watch = Stopwatch.StartNew();
        while (platform.Events.All<ModelVersionRegistered>().Count(e => e.SourceTrainingJob == job.JobId) < 2)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "the redelivered ModelTrained was not handled within 60 s");
            await Task.Delay(200);
        }
        Assert.All(platform.Events.All<ModelVersionRegistered>().Where(e => e.SourceTrainingJob == job.JobId),
            e => Assert.Equal(registered.Version, e.Version));
        Assert.Single((await Registry.SearchVersionsAsync(new SearchVersionsRequest { Name = "e2e-auto" })).Versions,
            v => v.Metadata.SourceTrainingJob == job.JobId);
    }

    private async Task RepublishAsync(ModelTrained message)
    {
        var connection = await platform.App.GetConnectionStringAsync("messaging")
            ?? throw new InvalidOperationException("The AppHost has no 'messaging' connection string.");
        var bus = Bus.Factory.CreateUsingRabbitMq(rabbit => rabbit.Host(new Uri(connection), h =>
        {
            h.Username("guest");
            h.Password("guest");
        }));
        await bus.StartAsync();
        try
        {
            await bus.Publish(message);
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    /// <summary>Keeps the last reported value, synchronously (Progress&lt;T&gt; would post it later).</summary>
    private sealed class LastProgress : IProgress<long>
    {
        public long Value { get; private set; }

        public void Report(long value) => Value = value;
    }
}
