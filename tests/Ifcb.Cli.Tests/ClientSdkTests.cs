using System.IO.Compression;
using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Net.Client;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Platform.Checkpoints;
using Ifcb.Protos;

namespace Ifcb.Cli.Tests;

/// <summary>
/// The client logic the CLI commands call, used directly against the fake platform as the end-to-end tests and services
/// would use it: <see cref="ModelDownloads"/>, <see cref="CheckpointRegistration"/> and <see cref="TrainingJobs"/>.
/// </summary>
public sealed class ClientSdkTests : IAsyncLifetime
{
    private static readonly CallRetry Retry = CallRetry.Default with { InitialBackoff = TimeSpan.FromMilliseconds(10) };

    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-client-sdk-").FullName;
    private FakePlatform _platform = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _platform = await FakePlatform.StartAsync();
        _channel = GrpcChannel.ForAddress(_platform.Url);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _platform.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private Registry.RegistryClient Registry => new(_channel);

    private static readonly CheckpointHeader Hparams = new()
    {
        Arch = "resnet18", Classes = ["a", "b"], Resize = 64, ImgNorm = new CheckpointImgNorm([0.5], [0.25]), Pretrained = true,
        DatasetFingerprint = "sha256:feed", Created = DateTimeOffset.UnixEpoch,
    };

    private string WriteCheckpoint(string name)
    {
        var path = Path.Combine(_temp, name);
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        using (var entry = zip.CreateEntry(CheckpointHeader.HparamsEntry).Open())
            entry.Write(Hparams.ToJson());
        using (var entry = zip.CreateEntry(CheckpointHeader.WeightsEntry, CompressionLevel.NoCompression).Open())
            entry.Write(RandomNumberGenerator.GetBytes(4096));
        return path;
    }

    [Fact]
    public async Task A_download_resolves_the_reference_names_the_file_after_the_version_and_verifies_the_bytes()
    {
        _platform.CheckpointBytes = RandomNumberGenerator.GetBytes(200 * 1024);
        _platform.Versions[("plankton", 2)] = new ModelVersion { Name = "plankton", Version = 2, Status = VersionStatus.Ready };
        ModelVersion? named = null;

        var downloaded = await ModelDownloads.DownloadAsync(Registry, ModelRef.Parse("plankton/2"),
            version => Path.Combine(_temp, "sub", $"{(named = version).Name}-v{version.Version}.ifcbmodel"), Retry);

        Assert.Equal(2, named?.Version);
        Assert.Equal(Path.Combine(_temp, "sub", "plankton-v2.ifcbmodel"), downloaded.Path);
        Assert.Equal(_platform.CheckpointBytes, await File.ReadAllBytesAsync(downloaded.Path));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(_platform.CheckpointBytes)), downloaded.Sha256);
        Assert.Equal(_platform.CheckpointBytes.Length, downloaded.Size);
        Assert.False(File.Exists(downloaded.Path + ".partial"));
    }

    [Fact]
    public async Task A_download_of_an_unknown_version_writes_nothing()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            ModelDownloads.DownloadAsync(Registry, ModelRef.Parse("plankton/9"), _ => Path.Combine(_temp, "x.ifcbmodel"), Retry));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Empty(Directory.GetFiles(_temp));
    }

    [Fact]
    public void The_header_carries_the_hparams_and_the_details_with_the_file_key_by_default()
    {
        var details = new VersionDetails
        {
            Metrics = new Dictionary<string, double> { ["f1_weighted"] = 0.9 }, Tags = new Dictionary<string, string> { ["team"] = "lab" },
            Description = "d", Commit = "abc", PipelineUrl = "https://ci/1",
        };

        var header = CheckpointRegistration.Header(Hparams, "plankton", "ff00", 123, details);

        Assert.Equal(("plankton", "ff00", 123L, "sha256:ff00"), (header.Name, header.Sha256, header.Size, header.IdempotencyKey));
        var m = header.Metadata;
        Assert.Equal(("resnet18", 64, true, "sha256:feed"), (m.Arch, m.Resize, m.Pretrained, m.DatasetFingerprint));
        Assert.Equal(["a", "b"], m.Classes);
        Assert.Equal([0.5, 0.5, 0.5], m.ImgNorm.Mean);
        Assert.Equal(("d", "abc", "https://ci/1"), (m.Description, m.SourceCommit, m.SourcePipelineUrl));
        Assert.Equal(0.9, m.Metrics["f1_weighted"]);
        Assert.Equal("lab", m.Tags["team"]);
        Assert.Equal("ci:7", CheckpointRegistration.Header(Hparams, "p", "ff00", 1, new VersionDetails { IdempotencyKey = "ci:7" }).IdempotencyKey);
        Assert.Equal("sha256:ff00", CheckpointRegistration.Header(Hparams, "p", "ff00", 1, new VersionDetails { IdempotencyKey = "  " }).IdempotencyKey);
    }

    [Fact]
    public async Task Registering_a_file_twice_returns_one_version()
    {
        var path = WriteCheckpoint("model.ifcbmodel");

        var first = await CheckpointRegistration.RegisterAsync(Registry, path, "plankton", new VersionDetails(), headers: null, Retry);
        var second = await CheckpointRegistration.RegisterAsync(Registry, path, "plankton", new VersionDetails(), headers: null, Retry);

        Assert.Equal((first.Name, first.Version), (second.Name, second.Version));
        var (header, data) = _platform.Registrations.First();
        Assert.Equal(await File.ReadAllBytesAsync(path), data);
        Assert.Equal(CheckpointRegistration.DefaultIdempotencyKey(Convert.ToHexStringLower(SHA256.HashData(data))), header.IdempotencyKey);
    }

    [Fact]
    public async Task Registering_something_that_is_not_a_checkpoint_names_the_file_and_sends_nothing()
    {
        var path = Path.Combine(_temp, "notes.txt");
        await File.WriteAllTextAsync(path, "not a zip");

        var error = await Assert.ThrowsAsync<InvalidDataException>(() =>
            CheckpointRegistration.RegisterAsync(Registry, path, "plankton", new VersionDetails(), headers: null, Retry));
        await Assert.ThrowsAsync<FileNotFoundException>(() =>
            CheckpointRegistration.RegisterAsync(Registry, Path.Combine(_temp, "nope"), "plankton", new VersionDetails(), headers: null, Retry));

        Assert.StartsWith(path + ": ", error.Message, StringComparison.Ordinal);
        Assert.Empty(_platform.Registrations);
    }

    [Fact]
    public async Task Following_a_job_reports_each_epoch_once_and_returns_the_final_state()
    {
        static EpochMetrics Epoch(int n) => new() { Epoch = n, ValLoss = 1.0 / (n + 1) };
        var request = new StartTrainingRequest { TrainId = "t1" };
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Running, Request = request, Epoch = 0, Batch = 1, BatchesPerEpoch = 4 });
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Running, Request = request, Epochs = { Epoch(0) }, Epoch = 1, Batch = 2, BatchesPerEpoch = 4 });
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Succeeded, Request = request, Epochs = { Epoch(0), Epoch(1) }, BestEpoch = 1 });
        var epochs = new List<int>();
        var batches = new List<(int Epoch, int Batch)>();

        var last = await TrainingJobs.FollowAsync(new Ifcb.Protos.Training.TrainingClient(_channel), "job-1", Retry,
            e => epochs.Add(e.Epoch), j => batches.Add((j.Epoch, j.Batch)));

        Assert.Equal(JobState.Succeeded, last.State);
        Assert.True(TrainingJobs.IsFinished(last));
        Assert.Equal([0, 1], epochs);
        Assert.Equal([(0, 1), (1, 2)], batches);
    }
}
