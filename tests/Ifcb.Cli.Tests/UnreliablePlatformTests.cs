using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Grpc.Core;
using Ifcb.Platform.Checkpoints;
using Ifcb.Protos;

namespace Ifcb.Cli.Tests;

/// <summary>
/// The CLI against services that are down, hang, fail for a moment or are crowded, as a CI pipeline meets them: every
/// call has a deadline, a dead service is named with its address and exits 5 within seconds, idempotent calls are
/// retried with backoff and others are not, and <c>models register</c> reads only the checkpoint's hparams.
/// </summary>
public sealed class UnreliablePlatformTests : IAsyncLifetime
{
    /// <summary>How long a dead service may take to be reported (retries of a refused connection included).</summary>
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(10);

    private readonly string _temp = Directory.CreateTempSubdirectory("ifcb-cli-faults-").FullName;
    private FakePlatform _platform = null!;

    public async Task InitializeAsync() => _platform = await FakePlatform.StartAsync();

    public async Task DisposeAsync()
    {
        await _platform.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private static async Task<(CliRunner.Result Result, TimeSpan Elapsed)> TimedAsync(params string[] args)
    {
        var watch = Stopwatch.StartNew();
        var result = await CliRunner.RunAsync(args);
        return (result, watch.Elapsed);
    }

    private static void AssertNoStack(CliRunner.Result result) =>
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);

    [Theory]
    [InlineData("status")]
    [InlineData("jobs", "list")]
    [InlineData("models", "versions")]
    public async Task A_dead_platform_exits_5_within_seconds_naming_the_Training_service_and_its_address(params string[] verb)
    {
        var dead = FakePlatform.DeadUrl();

        var (result, elapsed) = await TimedAsync([.. verb, "--server", dead]);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        Assert.Matches($@"error: the Training service at {Regex.Escape(dead)} is unavailable \(connection refused; {Ifcb.Client.CallRetry.Default.MaxAttempts} attempts in \d+\.\d s\)", result.Error);
        if (verb[0] != "status")
            Assert.Contains("is the platform running? (ifcb status)", result.Error, StringComparison.Ordinal);
        AssertNoStack(result);
    }

    [Fact]
    public async Task A_dead_registry_is_named_with_its_own_address()
    {
        var dead = FakePlatform.DeadUrl();

        var (result, elapsed) = await TimedAsync("models", "versions", "--registry-url", dead);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        Assert.Contains($"the Registry service at {dead} is unavailable (connection refused;", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_accepts_connections_but_never_answers_times_out_with_a_message()
    {
        // A listener that completes the TCP handshake and then says nothing: a hung process, or a proxy whose backend is gone.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";

        var (result, elapsed) = await TimedAsync("jobs", "list", "--server", url, "--timeout", "0.5");

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        Assert.Contains($"the Training service at {url} did not answer Training.ListJobs within 0.5 s", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("DeadlineExceeded:\n", result.Error.Replace("\r", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_service_that_stays_unavailable_is_tried_a_bounded_number_of_times_and_named()
    {
        _platform.On("Registry.SearchVersions", FakePlatform.AlwaysFail(StatusCode.Unavailable));

        var (result, elapsed) = await TimedAsync("models", "versions", "--registry-url", _platform.Url);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        Assert.Equal(Ifcb.Client.CallRetry.Default.MaxAttempts, _platform.Calls("Registry.SearchVersions"));
        // The server said nothing about why: the message still names the service, the address and the call.
        Assert.Contains($"the Registry service at {_platform.Url} is unavailable (Registry.SearchVersions answered Unavailable", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_reports_every_service_when_one_is_down()
    {
        var dead = FakePlatform.DeadUrl();
        _platform.TrainingDetails["registry_url"] = dead;

        var (result, elapsed) = await TimedAsync("status", "--server", _platform.Url, "--json");

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        using var json = JsonDocument.Parse(result.Output);
        var services = json.RootElement.EnumerateArray().ToDictionary(s => s.GetProperty("service").GetString()!, s => s);
        Assert.True(services["training"].GetProperty("up").GetBoolean());
        Assert.True(services["normstats"].GetProperty("up").GetBoolean());
        Assert.False(services["registry"].GetProperty("up").GetBoolean());
        Assert.Equal(dead, services["registry"].GetProperty("url").GetString());
        Assert.Contains($"the Registry service at {dead} is unavailable (connection refused;", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Training service", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_with_Training_down_still_asks_the_services_whose_address_is_known()
    {
        var dead = FakePlatform.DeadUrl();

        var (result, elapsed) = await TimedAsync("status", "--server", dead, "--registry-url", _platform.Url, "--json");

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.True(elapsed < Promptly, $"took {elapsed}");
        using var json = JsonDocument.Parse(result.Output);
        var services = json.RootElement.EnumerateArray().ToDictionary(s => s.GetProperty("service").GetString()!, s => s);
        Assert.False(services["training"].GetProperty("up").GetBoolean());
        Assert.True(services["registry"].GetProperty("up").GetBoolean());
        Assert.False(services["normstats"].GetProperty("up").GetBoolean());
        Assert.Contains("address unknown", services["normstats"].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, _platform.Calls("Registry.GetInfo"));
    }

    [Theory]
    [InlineData("Training.ListJobs", StatusCode.Unavailable, "jobs", "list")]
    [InlineData("Registry.SearchVersions", StatusCode.DeadlineExceeded, "models", "versions")]
    [InlineData("Registry.GetVersion", StatusCode.ResourceExhausted, "models", "show", "plankton/1")]
    [InlineData("Training.GetInfo", StatusCode.Unavailable, "status")]
    public async Task Reads_are_retried_after_transient_failures(string method, StatusCode code, params string[] verb)
    {
        _platform.Versions[("plankton", 1)] = new ModelVersion { Name = "plankton", Version = 1, Status = VersionStatus.Ready };
        _platform.On(method, FakePlatform.FailFirst(2, code));

        var result = await CliRunner.RunAsync([.. verb, "--server", _platform.Url]);

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(3, _platform.Calls(method));
        Assert.Contains($"{method}: {code}", result.Error, StringComparison.Ordinal); // each retry is noted on stderr
    }

    [Theory]
    [InlineData("Registry.SetAlias", "models", "alias", "plankton", "production", "1")]
    [InlineData("Training.CancelJob", "jobs", "cancel", "job-1")]
    public async Task Writes_without_an_idempotency_key_are_not_retried(string method, params string[] verb)
    {
        _platform.On(method, FakePlatform.FailFirst(2, StatusCode.Unavailable, "storage is restarting"));

        var result = await CliRunner.RunAsync([.. verb, "--server", _platform.Url, "--api-key", "k"]);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Equal(1, _platform.Calls(method));
        Assert.Contains("storage is restarting", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_watch_that_breaks_reconnects_and_follows_the_job_to_its_end()
    {
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Running, Request = new StartTrainingRequest { TrainId = "t1" }, BestEpoch = -1 });
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Succeeded, Request = new StartTrainingRequest { TrainId = "t1" }, BestEpoch = -1 });
        _platform.On("Training.WatchJob", FakePlatform.FailFirst(1, StatusCode.Unavailable));

        var result = await CliRunner.RunAsync("jobs", "watch", "job-1", "--server", _platform.Url, "--json");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(1, _platform.Calls("Training.WatchJob"));
        Assert.True(_platform.Calls("Training.GetJob") >= 2);
        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal("succeeded", json.RootElement.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_watch_notices_a_server_that_stops_answering_and_resumes()
    {
        // The watch's connection goes silent (the host died, or the network drops everything): without keep-alive
        // pings the client would wait for the next update forever.
        using var relay = new FreezableRelay(_platform.Url);
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Running, Request = new StartTrainingRequest { TrainId = "t1" }, BestEpoch = -1 });
        _platform.JobUpdates.Add(new TrainingJob { JobId = "job-1", State = JobState.Succeeded, Request = new StartTrainingRequest { TrainId = "t1" }, BestEpoch = -1 });
        _platform.On("Training.WatchJob", async (call, context) =>
        {
            if (call > 1)
                return;
            await Task.Delay(300, context.CancellationToken);
            relay.FreezeOpenConnections();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        });
        PlatformConnection.KeepAliveOverride.Value = (TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        var result = await CliRunner.RunAsync("jobs", "watch", "job-1", "--server", relay.Url, "--json").WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Contains("Training.WatchJob: Unavailable", result.Error, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal("succeeded", json.RootElement.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_download_that_breaks_is_downloaded_again_from_the_start()
    {
        _platform.CheckpointBytes = RandomNumberGenerator.GetBytes(300 * 1024);
        _platform.Versions[("plankton", 1)] = new ModelVersion { Name = "plankton", Version = 1, Status = VersionStatus.Ready };
        _platform.On("Registry.DownloadCheckpoint", FakePlatform.FailFirst(1, StatusCode.Unavailable));
        var path = Path.Combine(_temp, "downloaded.ifcbmodel");

        var result = await CliRunner.RunAsync("models", "download", "plankton/1", "-o", path, "--registry-url", _platform.Url);

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(2, _platform.Calls("Registry.DownloadCheckpoint"));
        Assert.Equal(_platform.CheckpointBytes, await File.ReadAllBytesAsync(path));
    }

    private static readonly CheckpointHeader Hparams = new()
    {
        Arch = "resnet18", Classes = ["Mesodinium_major", "detritus", "Ditylum"], Resize = 64,
        ImgNorm = new CheckpointImgNorm([0.66], [0.22]), Pretrained = true, Seed = 7, ModelId = "m1", TrainingId = "t1",
        DatasetFingerprint = "sha256:0123abcd", Created = DateTimeOffset.UnixEpoch, PlatformVersion = "test",
    };

    /// <summary>A checkpoint zip whose hparams.json is <paramref name="hparams"/> and whose weights entry is random bytes, not a state dict.</summary>
    private string WriteCheckpoint(string name, CheckpointHeader? hparams = null, int weightBytes = 300 * 1024)
    {
        var path = Path.Combine(_temp, name);
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        using (var entry = zip.CreateEntry(CheckpointHeader.HparamsEntry).Open())
            entry.Write((hparams ?? Hparams).ToJson());
        using (var entry = zip.CreateEntry(CheckpointHeader.WeightsEntry, CompressionLevel.NoCompression).Open())
            entry.Write(RandomNumberGenerator.GetBytes(weightBytes));
        return path;
    }

    private static string Sha256Of(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public async Task Register_reads_only_the_hparams_and_sends_them_as_metadata_with_a_key_derived_from_the_file()
    {
        var checkpoint = WriteCheckpoint("garbage-weights.ifcbmodel");

        var result = await CliRunner.RunAsync("models", "register", checkpoint, "--name", "plankton", "--server", _platform.Url, "--api-key", "k", "--json");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var (header, data) = Assert.Single(_platform.Registrations);
        var m = header.Metadata;
        Assert.Equal("resnet18", m.Arch);
        Assert.Equal(["Mesodinium_major", "detritus", "Ditylum"], m.Classes);
        Assert.Equal(64, m.Resize);
        Assert.True(m.Pretrained);
        Assert.Equal("sha256:0123abcd", m.DatasetFingerprint);
        // Through the one ImgNorm type: three values per channel, a single neuston value repeated (as the proto documents).
        Assert.Equal([0.66, 0.66, 0.66], m.ImgNorm.Mean);
        Assert.Equal([0.22, 0.22, 0.22], m.ImgNorm.Std);
        Assert.Equal(Sha256Of(checkpoint), header.Sha256);
        Assert.Equal(new FileInfo(checkpoint).Length, header.Size);
        Assert.Equal("sha256:" + Sha256Of(checkpoint), header.IdempotencyKey);
        Assert.Equal(await File.ReadAllBytesAsync(checkpoint), data);
    }

    [Fact]
    public async Task Register_sends_the_metadata_of_a_checkpoint_as_training_writes_it()
    {
        var path = Path.Combine(_temp, "trained.ifcbmodel");
        using (var model = Ifcb.Models.ModelZoo.Create("squeezenet1_1", 3, false))
        await using (var file = File.Create(path))
        {
            var hparams = new Ifcb.Models.Checkpoints.ModelHparams("squeezenet1_1", ["a", "b", "c"], 96, new Ifcb.Contracts.ImgNorm([0.5, 0.4, 0.3], [0.2, 0.2, 0.2]),
                false, 3, "m", "t", "fp", DateTimeOffset.UtcNow, "test");
            Ifcb.Models.Checkpoints.Checkpoint.Save(file, hparams, model);
        }

        var result = await CliRunner.RunAsync("models", "register", path, "--name", "plankton", "--registry-url", _platform.Url, "--metric", "f1_weighted=0.9");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        var m = Assert.Single(_platform.Registrations).Header.Metadata;
        Assert.Equal(("squeezenet1_1", 96, false, "fp"), (m.Arch, m.Resize, m.Pretrained, m.DatasetFingerprint));
        Assert.Equal(["a", "b", "c"], m.Classes);
        Assert.Equal([0.5, 0.4, 0.3], m.ImgNorm.Mean);
        Assert.Equal(0.9, m.Metrics["f1_weighted"]);
    }

    [Fact]
    public async Task Registering_the_same_file_again_returns_the_same_version()
    {
        var checkpoint = WriteCheckpoint("same.ifcbmodel");
        string[] register = ["models", "register", checkpoint, "--name", "plankton", "--registry-url", _platform.Url, "--json"];

        var first = await CliRunner.RunAsync(register);
        var second = await CliRunner.RunAsync(register);

        Assert.True(first.ExitCode == ExitCodes.Success, first.Error);
        Assert.True(second.ExitCode == ExitCodes.Success, second.Error);
        Assert.Single(_platform.Versions);
        using var a = JsonDocument.Parse(first.Output);
        using var b = JsonDocument.Parse(second.Output);
        Assert.Equal(1, a.RootElement.GetProperty("version").GetInt32());
        Assert.Equal(1, b.RootElement.GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task Register_with_a_key_is_sent_again_whole_after_transient_failures()
    {
        var checkpoint = WriteCheckpoint("retried.ifcbmodel");
        _platform.On("Registry.RegisterVersion", FakePlatform.FailFirst(2, StatusCode.Unavailable));

        var result = await CliRunner.RunAsync("models", "register", checkpoint, "--name", "plankton", "--idempotency-key", "ci:42",
            "--registry-url", _platform.Url, "--json");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(3, _platform.Registrations.Count);
        var bytes = await File.ReadAllBytesAsync(checkpoint);
        Assert.All(_platform.Registrations, r =>
        {
            Assert.Equal("ci:42", r.Header.IdempotencyKey);
            Assert.Equal(bytes, r.Data);
        });
        Assert.Single(_platform.Versions);
    }

    [Fact]
    public async Task Peer_discovery_that_times_out_is_retried()
    {
        // The first GetInfo hangs (a crowded Training); the next answers.
        _platform.On("Training.GetInfo", async (call, context) =>
        {
            if (call == 1)
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
        });
        var checkpoint = WriteCheckpoint("discovered.ifcbmodel");
        var environment = new Dictionary<string, string> { [GlobalOptions.TimeoutVariable] = "1" };

        var result = await CliRunner.RunAsync(environment, "models", "register", checkpoint, "--name", "plankton", "--server", _platform.Url);

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(2, _platform.Calls("Training.GetInfo"));
        Assert.Single(_platform.Versions);
    }

    [Fact]
    public async Task Twenty_four_registers_at_once_against_a_slow_and_flaky_Training_all_succeed()
    {
        // Seen live: 24 `ifcb models register` started together; two died in peer discovery and nothing retried them.
        _platform.On("Training.GetInfo", async (call, context) =>
        {
            if (call <= 3)
                await Task.Delay(Timeout.Infinite, context.CancellationToken); // slower than the deadline
            else if (call <= 16 && call % 2 == 0)
                throw new RpcException(new Status(StatusCode.Unavailable, ""));
            await Task.Delay(100, context.CancellationToken);
        });
        var checkpoints = Enumerable.Range(1, 24).Select(i => WriteCheckpoint($"c{i}.ifcbmodel", weightBytes: 20 * 1024 + i)).ToList();
        var environment = new Dictionary<string, string> { [GlobalOptions.TimeoutVariable] = "3" };

        var results = await Task.WhenAll(checkpoints.Select(c => Task.Run(() =>
            CliRunner.RunAsync(environment, "models", "register", c, "--name", "plankton", "--server", _platform.Url, "--api-key", "k", "--json"))));

        Assert.All(results, r => Assert.True(r.ExitCode == ExitCodes.Success, r.Error));
        Assert.Equal(Enumerable.Range(1, 24), _platform.Versions.Keys.Select(k => k.Version).Order());
        Assert.Equal(24, _platform.Registrations.Count);
    }

    [Fact]
    public async Task Register_of_a_file_that_is_not_a_checkpoint_exits_1_with_a_clear_error()
    {
        var path = Path.Combine(_temp, "notes.ifcbmodel");
        await File.WriteAllTextAsync(path, "not a zip at all");

        var result = await CliRunner.RunAsync("models", "register", path, "--name", "plankton", "--registry-url", _platform.Url);

        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        Assert.Contains("notes.ifcbmodel", result.Error, StringComparison.Ordinal);
        Assert.Contains("Not a model checkpoint", result.Error, StringComparison.Ordinal);
        AssertNoStack(result);
        Assert.Empty(_platform.Registrations);
    }

    [Fact]
    public async Task Register_of_a_checkpoint_with_out_of_range_hparams_names_the_field_and_sends_nothing()
    {
        var path = WriteCheckpoint("huge-resize.ifcbmodel", Hparams with { Resize = 100_000 });

        var result = await CliRunner.RunAsync("models", "register", path, "--name", "plankton", "--registry-url", _platform.Url);

        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        Assert.Contains("resize 100000 is out of range", result.Error, StringComparison.Ordinal);
        AssertNoStack(result);
        Assert.Empty(_platform.Registrations);
    }

    [Fact]
    public async Task Register_of_a_missing_file_exits_3()
    {
        var result = await CliRunner.RunAsync("models", "register", Path.Combine(_temp, "nope.ifcbmodel"), "--name", "plankton", "--registry-url", _platform.Url);

        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("nope.ifcbmodel", result.Error, StringComparison.Ordinal);
    }
}
