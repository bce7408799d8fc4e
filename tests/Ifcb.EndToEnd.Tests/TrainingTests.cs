using System.Diagnostics;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Protos;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>Training as a platform job: real upload, real RabbitMQ queueing, real TorchSharp training on two workers.</summary>
[Collection(PlatformCollection.Name)]
public sealed class TrainingTests(PlatformFixture platform)
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Datasets.DatasetsClient Datasets => new(platform.Channel("training"));

    private async Task<DatasetInfo> UploadSampleAsync(string name) =>
        await DatasetUpload.UploadFolderAsync(Datasets, name, Sample, PlatformFixture.Auth);

    private static StartTrainingRequest SmallJob(string dataset, string trainId) => new()
    {
        Dataset = dataset, Model = "resnet18", TrainId = trainId, Untrain = true, Seed = 7, Resize = 32, Batch = 8, Emax = 3, Emin = 1,
    };

    private async Task<TrainingJob> WaitAsync(string jobId, Func<TrainingJob, bool> until, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var job = await Training.GetJobAsync(new JobRef { JobId = jobId });
                if (until(job))
                    return job;
                if (watch.Elapsed > timeout)
                    throw new TimeoutException($"Job {jobId} is {job.State} (epoch {job.Epoch}, {job.Epochs.Count} epochs done) after {timeout}.");
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                // A killed replica may still be in the proxy's rotation for a moment.
            }
            await Task.Delay(300);
        }
    }

    [Fact]
    public async Task Upload_train_watch_and_collect_artifacts()
    {
        var uploaded = await UploadSampleAsync("sample-train");
        Assert.Equal(30, uploaded.Images);
        Assert.Equal([("Mesodinium_major", 14), ("Strombidium-like", 16)], uploaded.Classes.Select(c => (c.Name, c.Images)));
        var again = await UploadSampleAsync("sample-train");
        Assert.Equal(uploaded.Fingerprint, again.Fingerprint);
        Assert.Equal(30, again.Skipped);

        var request = SmallJob("sample-train", "e2e-small");
        request.RegisterAs = "e2e-small-model";
        var started = await Training.StartTrainingAsync(request, PlatformFixture.Auth);
        // A free worker may take the job before StartTraining's reply is built (the reply reads the record after the send).
        Assert.Contains(started.State, new[] { JobState.Queued, JobState.Running });
        Assert.Equal(uploaded.Fingerprint, started.DatasetFingerprint);

        var updates = new List<TrainingJob>();
        using (var watch = Training.WatchJob(new JobRef { JobId = started.JobId }, deadline: DateTime.UtcNow.AddMinutes(5)))
        {
            await foreach (var update in watch.ResponseStream.ReadAllAsync())
                updates.Add(update);
        }
        var done = updates[^1];
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Contains(updates, u => u.State == JobState.Running);
        Assert.Equal([0, 1, 2], done.Epochs.Select(e => e.Epoch));
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], done.Classes);
        Assert.Equal(7, done.Seed);

        var artifacts = (await Training.ListArtifactsAsync(new JobRef { JobId = started.JobId })).Artifacts.Select(a => a.Name).ToList();
        foreach (var expected in new[] { "e2e-small.ifcbmodel", "epochs.csv", "results.json", "args.json", "training_images.list", "validation_images.list" })
            Assert.Contains(expected, artifacts);
        Assert.DoesNotContain(artifacts, a => a.StartsWith("resume/", StringComparison.Ordinal));

        var trained = await platform.Events.WaitForAsync<ModelTrained>(m => m.JobId == started.JobId, TimeSpan.FromSeconds(30));
        Assert.Equal("resnet18", trained.Architecture);
        Assert.False(trained.Pretrained);
        Assert.Equal(32, trained.Resize);
        using var checkpoint = new MemoryStream();
        using var download = Training.DownloadArtifact(new DownloadArtifactRequest { JobId = started.JobId, Name = "e2e-small.ifcbmodel" });
        var (sha, size) = await ChunkedDownload.CopyToAsync(download.ResponseStream, checkpoint);
        Assert.Equal(trained.CheckpointSha256, sha);
        Assert.Equal(trained.CheckpointSize, size);

        // The registry registers the checkpoint and the job learns its version from the ModelVersionRegistered event.
        var registered = await WaitAsync(started.JobId, j => j.RegisteredVersion != "", TimeSpan.FromMinutes(1));
        Assert.Equal("e2e-small-model/1", registered.RegisteredVersion);

        var validationList = new MemoryStream();
        using var list = Training.DownloadArtifact(new DownloadArtifactRequest { JobId = started.JobId, Name = "validation_images.list" });
        await ChunkedDownload.CopyToAsync(list.ResponseStream, validationList);
        var lines = System.Text.Encoding.UTF8.GetString(validationList.ToArray()).Split('\n');
        Assert.Equal(6, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("sample-train/", l, StringComparison.Ordinal));

        // The attempt got the dataset's one shard from storage or from the workers' shared cache, then trained.
        var attempt = done.AttemptHistory[^1];
        Assert.Equal((1, uploaded.Shards), (uploaded.Shards, attempt.DatasetShardsDownloaded + attempt.DatasetShardsCached));
        Assert.True(DateTimeOffset.Parse(attempt.FirstBatchAt) >= DateTimeOffset.Parse(attempt.DatasetReadyAt), attempt.ToString());

        // The next job on the same dataset downloads nothing: the workers' shard cache already holds it.
        var next = SmallJob("sample-train", "e2e-small-again");
        next.Emax = 1;
        var second = await Training.StartTrainingAsync(next, PlatformFixture.Auth);
        var secondDone = await WaitAsync(second.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled,
            TimeSpan.FromMinutes(3));
        Assert.True(secondDone.State == JobState.Succeeded, $"job ended {secondDone.State}: {secondDone.Error}");
        var cached = secondDone.AttemptHistory[^1];
        Assert.Equal((0, 0L, 1), (cached.DatasetShardsDownloaded, cached.DatasetBytesDownloaded, cached.DatasetShardsCached));
        Assert.NotEqual("", cached.FirstBatchAt);
    }

    [Fact]
    public async Task Img_norm_auto_asks_NormStats_and_records_the_values_used()
    {
        await UploadSampleAsync("sample-auto-norm");
        var request = SmallJob("sample-auto-norm", "e2e-auto-norm");
        request.ImgNorm = "auto";
        request.Emax = 1;
        var job = await Training.StartTrainingAsync(request, PlatformFixture.Auth);

        var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(4));

        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Equal(3, done.ImgNorm.Mean.Count);
        // The sample's statistics at the job's 32×32 input size, computed by the NormStats service.
        var stats = await new NormStats.NormStatsClient(platform.Channel("normstats")).ComputeAsync(new ComputeNormRequest
        {
            Dataset = "sample-auto-norm", Options = new NormOptions { Resize = 32 },
        }, PlatformFixture.Auth);
        var result = (await WaitForNormAsync(stats.JobId)).Result;
        Assert.Equal(result.Mean, done.ImgNorm.Mean);
        Assert.Equal(result.Std, done.ImgNorm.Std);
        var trained = await platform.Events.WaitForAsync<ModelTrained>(m => m.JobId == job.JobId, TimeSpan.FromSeconds(30));
        Assert.Equal(result.Mean, trained.ImgNorm!.Mean); // through the bus as "MEAN STD" text, unchanged
    }

    [Fact]
    public async Task A_job_is_one_trace_from_the_grpc_call_through_the_bus_to_every_worker_and_blob_and_reports_metrics()
    {
        await UploadSampleAsync("sample-trace");
        var request = SmallJob("sample-trace", "e2e-trace");
        request.ImgNorm = "auto"; // the training worker asks NormStats, whose workers read the images from blobs
        request.Emax = 1;
        request.RegisterAs = "e2e-trace-model"; // the registry consumes ModelTrained and stores the checkpoint
        var job = await Training.StartTrainingAsync(request, PlatformFixture.Auth);
        var done = await WaitAsync(job.JobId, j => j.RegisteredVersion != "" || j.State is JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(4));
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");

        // The job's spans arrive from five processes, each exporting in its own batches, and a parent span ends (and is
        // exported) after its children: wait until the trace is whole — every hop below present, every span's parent in
        // it but the root's — or 30 s have passed, then report what is missing.
        // gRPC → bus → worker → blob, across the three services. MassTransit names a send span after the message type and
        // a consume span after the receive endpoint (queue).
        (string Service, string Name, SpanKind Kind)[] hops =
        [
            ("training", "POST /ifcb.v1.Training/StartTraining", SpanKind.Server),
            ("training", "training-jobs send", SpanKind.Producer),
            ("training", "training-jobs process", SpanKind.Consumer),
            ("training", "train", SpanKind.Internal),
            ("training", "epoch", SpanKind.Internal),
            ("training", "Ifcb.Contracts:ComputeNormStats send", SpanKind.Producer),
            ("normstats", "normstats-compute-norm-stats process", SpanKind.Consumer),
            ("normstats", "normstats-compute-norm-shard process", SpanKind.Consumer),
            ("training", "Ifcb.Contracts:ModelTrained send", SpanKind.Producer),
            ("registry", "registry-model-trained process", SpanKind.Consumer),
            ("training", "training-model-version-registered process", SpanKind.Consumer),
        ];
        List<ReceivedSpan> TraceOf(IReadOnlyList<ReceivedSpan> spans) =>
            spans.FirstOrDefault(s => s.Name == "train" && s.Attributes.GetValueOrDefault("ifcb.job_id") == job.JobId) is { } train
                ? [.. spans.Where(s => s.TraceId == train.TraceId)]
                : [];
        // Spans whose parent is not in the trace (the test's own gRPC client exports nothing, whether or not it sent a
        // traceparent): when the trace is whole, only the StartTraining call.
        static List<ReceivedSpan> Roots(List<ReceivedSpan> trace)
        {
            var ids = trace.Select(s => s.SpanId).ToHashSet();
            return [.. trace.Where(s => s.ParentSpanId is null || !ids.Contains(s.ParentSpanId))];
        }
        ReceivedSpan? StartTraining(List<ReceivedSpan> trace) => trace.FirstOrDefault(s => (s.Service, s.Name, s.Kind) == hops[0]);
        List<string> Missing(List<ReceivedSpan> trace)
        {
            if (trace.Count == 0)
                return [$"no 'train' span for job {job.JobId}"];
            var missing = Roots(trace).Where(s => s != StartTraining(trace)).Select(s => $"the parent of {s}").ToList();
            missing.AddRange(hops.Where(h => !trace.Any(s => (s.Service, s.Name, s.Kind) == h)).Select(h => $"{h.Kind} span '{h.Name}' from {h.Service}"));
            missing.AddRange(new[] { "training", "normstats", "registry" }
                .Where(service => !trace.Any(s => s.Service == service && s.Scope.StartsWith("Azure.Storage.Blobs", StringComparison.Ordinal)))
                .Select(service => $"a blob span from {service}"));
            return missing;
        }
        var trace = TraceOf(await platform.Telemetry.WaitForSpansAsync(spans => Missing(TraceOf(spans)).Count == 0, TimeSpan.FromSeconds(30)));
        var listing = string.Join("\n", trace.Select(s => s.ToString()));
        var missing = Missing(trace);
        Assert.True(missing.Count == 0, $"missing from the job's trace: {string.Join("; ", missing)}\ntrace:\n{listing}");

        // One root: the StartTraining call on the Training service.
        Assert.Equal(StartTraining(trace), Assert.Single(Roots(trace)));
        Assert.Equal(0, platform.Telemetry.Malformed);

        // Training metrics reach the dashboard's OTLP endpoint from the Training service.
        string[] expected = ["ifcb.training.epochs", "ifcb.training.train_loss", "ifcb.training.val_loss", "ifcb.training.f1_weighted"];
        HashSet<string> TrainingMetrics() => platform.Telemetry.Metrics.Where(m => m.Service == "training").Select(m => m.Name).ToHashSet();
        for (var wait = 0; wait < 40 && !expected.All(TrainingMetrics().Contains); wait++)
            await Task.Delay(250);
        var metrics = TrainingMetrics();
        foreach (var name in expected)
            Assert.Contains(name, metrics);
    }

    private async Task<NormJob> WaitForNormAsync(string jobId)
    {
        var client = new NormStats.NormStatsClient(platform.Channel("normstats"));
        for (var i = 0; i < 600; i++)
        {
            var job = await client.GetAsync(new JobRef { JobId = jobId });
            if (job.State is NormJobState.Succeeded or NormJobState.Failed)
                return job;
            await Task.Delay(200);
        }
        throw new TimeoutException($"norm job {jobId} did not finish");
    }

    [Theory]
    [InlineData("resnet9000", "", "80:20", 1, 10, StatusCode.InvalidArgument, "Unknown model")]
    [InlineData("resnet18", "", "80:20", 20, 10, StatusCode.InvalidArgument, "emin (20) is greater than emax (10)")]
    [InlineData("resnet18", "", "70:20", 1, 10, StatusCode.InvalidArgument, "100")]
    [InlineData("resnet18", "0.5", "80:20", 1, 10, StatusCode.InvalidArgument, "MEAN and STD")]
    [InlineData("resnet18", "0.5 -1", "80:20", 1, 10, StatusCode.InvalidArgument, "greater than 0")]
    public async Task Bad_options_are_rejected_up_front(string model, string imgNorm, string split, int emin, int emax, StatusCode code, string message)
    {
        await UploadSampleAsync("sample-validation");
        var request = new StartTrainingRequest
        {
            Dataset = "sample-validation", Model = model, TrainId = "bad", Untrain = true, ImgNorm = imgNorm, Split = split, Emin = emin, Emax = emax,
        };
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Training.StartTrainingAsync(request, PlatformFixture.Auth));
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(message, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_dataset_weights_and_keys_get_precise_errors()
    {
        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await Training.StartTrainingAsync(SmallJob("no-such-dataset", "x"), PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        await UploadSampleAsync("sample-weights");
        var pretrained = SmallJob("sample-weights", "x");
        pretrained.Untrain = false;
        var weights = await Assert.ThrowsAsync<RpcException>(async () => await Training.StartTrainingAsync(pretrained, PlatformFixture.Auth));
        Assert.Equal(StatusCode.FailedPrecondition, weights.StatusCode);
        Assert.Contains("weights/resnet18", weights.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("--untrain", weights.Status.Detail, StringComparison.Ordinal);

        var anonymous = await Assert.ThrowsAsync<RpcException>(async () => await Training.StartTrainingAsync(SmallJob("sample-weights", "x")));
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        var wrongKey = await Assert.ThrowsAsync<RpcException>(async () =>
            await Training.StartTrainingAsync(SmallJob("sample-weights", "x"), new Metadata { { "authorization", "Bearer nope" } }));
        Assert.Equal(StatusCode.PermissionDenied, wrongKey.StatusCode);

        // The client refuses a bad name before sending anything; the service refuses it too, for clients that do not check.
        var local = await Assert.ThrowsAsync<ArgumentException>(async () => await UploadSampleAsync("../escape"));
        Assert.Contains("..", local.Message, StringComparison.Ordinal);
        using var upload = Datasets.Upload(PlatformFixture.Auth);
        try
        {
            await upload.RequestStream.WriteAsync(new DatasetUploadChunk { Header = new DatasetUploadHeader { Name = "../escape" } });
            await upload.RequestStream.CompleteAsync();
        }
        catch (RpcException)
        {
            // The service may answer before the stream is complete; the answer is read below.
        }
        var badName = await Assert.ThrowsAsync<RpcException>(async () => await upload.ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badName.StatusCode);
    }

    [Fact]
    public async Task Cancel_stops_a_running_job_and_keeps_partial_artifacts()
    {
        await UploadSampleAsync("sample-cancel");
        var request = SmallJob("sample-cancel", "e2e-cancel");
        request.Emax = 200;
        request.EstopDisabled = true;
        var job = await Training.StartTrainingAsync(request, PlatformFixture.Auth);
        await WaitAsync(job.JobId, j => j.Epochs.Count >= 1, TimeSpan.FromMinutes(3));

        await Training.CancelJobAsync(new JobRef { JobId = job.JobId }, PlatformFixture.Auth);
        var cancelled = await WaitAsync(job.JobId, j => j.State is JobState.Cancelled or JobState.Failed or JobState.Succeeded, TimeSpan.FromMinutes(1));

        Assert.Equal(JobState.Cancelled, cancelled.State);
        Assert.InRange(cancelled.Epochs.Count, 1, 199);
        await platform.Events.WaitForAsync<TrainingCancelled>(c => c.JobId == job.JobId, TimeSpan.FromSeconds(30));
        var artifacts = (await Training.ListArtifactsAsync(new JobRef { JobId = job.JobId })).Artifacts.Select(a => a.Name);
        Assert.Contains("epochs.csv", artifacts);
        Assert.Contains("e2e-cancel.ifcbmodel", artifacts);
    }

    /// <summary>Run by <see cref="TrainingWorkerFailureTests"/> on a platform of its own (it kills a replica).</summary>
    internal async Task KilledWorkerScenarioAsync()
    {
        await UploadSampleAsync("sample-resume");
        var request = SmallJob("sample-resume", "e2e-resume");
        request.Resize = 128;
        request.Batch = 4;
        request.Emax = 6;
        request.EstopDisabled = true;
        var job = await Training.StartTrainingAsync(request, PlatformFixture.Auth);

        var running = await WaitAsync(job.JobId, j => j.State == JobState.Running && j.Epochs.Count >= 2, TimeSpan.FromMinutes(4));
        Assert.True(running.Epochs.Count < 6, "the job finished before the worker could be killed; make it longer");
        var firstWorker = running.Worker;
        var pid = int.Parse(firstWorker.Split('-')[^2], System.Globalization.CultureInfo.InvariantCulture);
        using (var worker = Process.GetProcessById(pid))
            worker.Kill(); // SIGKILL: no graceful shutdown, the message is never acknowledged

        var done = await WaitAsync(job.JobId, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, TimeSpan.FromMinutes(5));
        Assert.True(done.State == JobState.Succeeded, $"job ended {done.State}: {done.Error}");
        Assert.Equal(2, done.Attempts);
        Assert.NotEqual(firstWorker, done.Worker);
        Assert.True(done.ResumedFromEpoch >= 2, $"resumed from epoch {done.ResumedFromEpoch}");
        Assert.Equal([0, 1, 2, 3, 4, 5], done.Epochs.Select(e => e.Epoch));
        // The epochs finished before the kill are the ones the first worker reported, untouched.
        for (var e = 0; e < running.Epochs.Count; e++)
            Assert.Equal(running.Epochs[e].Seconds, done.Epochs[e].Seconds);
    }
}
