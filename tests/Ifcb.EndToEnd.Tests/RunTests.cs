using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Protos;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>neuston RUN as a platform job: real bins uploaded, a registered model by alias, outputs in blob storage.</summary>
[Collection(PlatformCollection.Name)]
public sealed class RunTests(PlatformFixture platform)
{
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Runs.RunsClient Runs => new(platform.Channel("training"));
    private Datasets.DatasetsClient Datasets => new(platform.Channel("training"));

    private async Task<string> RegisteredModelAsync(string name)
    {
        await DatasetUpload.UploadFolderAsync(Datasets, "sample-run", Path.Combine(RepoPaths.Root, "testdata", "training-sample"), PlatformFixture.Auth);
        var job = await Training.StartTrainingAsync(new StartTrainingRequest
        {
            Dataset = "sample-run", Model = "resnet18", TrainId = "e2e-run", Untrain = true, Seed = 3, Resize = 32, Batch = 8, Emax = 1, Emin = 1,
            ImgNorm = "0.66 0.22", RegisterAs = name,
        }, PlatformFixture.Auth);
        var registered = await platform.Events.WaitForAsync<ModelVersionRegistered>(e => e.SourceTrainingJob == job.JobId, TimeSpan.FromMinutes(4));
        await new Registry.RegistryClient(platform.Channel("registry")).SetAliasAsync(
            new SetAliasRequest { Name = name, Alias = "production", Version = registered.Version }, PlatformFixture.Auth);
        return $"{name}/{registered.Version}";
    }

    private async Task<RunJob> WaitAsync(string jobId)
    {
        for (var i = 0; i < 1200; i++)
        {
            var run = await Runs.GetRunAsync(new JobRef { JobId = jobId });
            if (run.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled)
                return run;
            await Task.Delay(250);
        }
        throw new TimeoutException($"run {jobId} did not finish");
    }

    [Fact]
    public async Task Bins_are_classified_on_a_worker_with_outputs_in_blob_storage_and_an_event_per_bin()
    {
        var version = await RegisteredModelAsync("e2e-run-model");
        // Every real and broken bin in testdata except partial/, whose lid repeats data/'s (a bin set is flat).
        var files = BinSetUpload.FindBinFiles(Path.Combine(RepoPaths.Root, "testdata", "bins"))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}partial{Path.DirectorySeparatorChar}", StringComparison.Ordinal)).ToList();
        var set = await BinSetUpload.UploadAsync(Datasets, "e2e-bins", files, PlatformFixture.Auth);
        Assert.Equal(files.Count, set.Files);

        var started = await Runs.StartRunAsync(new StartRunRequest
        {
            // ONNX Runtime on the worker (auto picks it on a CPU too; named here so a change of default cannot hide it).
            Model = "e2e-run-model@production", RunId = "e2e-run", BinSet = set.Id, Engine = "onnx",
            Outfile = { "D{BIN_YEAR}/D{BIN_DATE}/{BIN_ID}_class.h5", "{BIN_ID}.csv" },
        }, PlatformFixture.Auth);
        Assert.Equal(version, started.ModelVersion);
        var run = await WaitAsync(started.JobId);

        Assert.True(run.State == JobState.Succeeded, $"run ended {run.State}: {run.Error}");
        Assert.Contains("D20130526T095207_IFCB013", run.Completed);
        Assert.Contains("IFCB5_2012_028_081515", run.Completed);
        Assert.NotEmpty(run.Failed); // the broken bins in testdata/bins are reported, not fatal
        Assert.All(run.Failed, f => Assert.False(string.IsNullOrWhiteSpace(f.Reason)));

        var outputs = (await Runs.ListRunOutputsAsync(new JobRef { JobId = run.JobId })).Artifacts.Select(a => a.Name).ToList();
        Assert.Contains("D2013/D20130526/D20130526T095207_IFCB013_class.h5", outputs);
        Assert.Contains("D20130526T095207_IFCB013.csv", outputs);

        using var csv = new MemoryStream();
        using (var download = Runs.DownloadRunOutput(new DownloadArtifactRequest { JobId = run.JobId, Name = "D20130526T095207_IFCB013.csv" }))
            await ChunkedDownload.CopyToAsync(download.ResponseStream, csv);
        var lines = System.Text.Encoding.UTF8.GetString(csv.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var provenance = lines.TakeWhile(l => l.StartsWith('#'))
            .ToDictionary(l => l[2..l.IndexOf(':', StringComparison.Ordinal)], l => l[(l.IndexOf(':', StringComparison.Ordinal) + 2)..]);
        var rows = lines[provenance.Count..];
        Assert.Equal(1 + 19, rows.Length); // header + the white bin's 19 ROIs
        // Provenance: the exact version and checkpoint sha256 the registry reports, and the alias it was resolved from; the
        // model's own thresholds (trained on the sample) label the ROIs.
        var registered = await new Registry.RegistryClient(platform.Channel("registry")).GetVersionAsync(ModelRef.Parse(version).ToVersionRef());
        Assert.Equal("e2e-run", provenance["run_id"]);
        Assert.Equal("registry", provenance["model_source"]);
        Assert.Equal($"{registered.Name}/{registered.Version}", $"{provenance["model_name"]}/{provenance["model_version"]}");
        Assert.Equal(version, $"{provenance["model_name"]}/{provenance["model_version"]}");
        Assert.Equal("production", provenance["model_alias"]);
        Assert.Equal("e2e-run-model@production", provenance["model_reference"]);
        Assert.Equal(registered.CheckpointSha256, provenance["checkpoint_sha256"]);
        Assert.Equal("checkpoint", provenance["class_thresholds_source"]);
        Assert.StartsWith("roi_id,class,score,class_thresholded,", rows[0], StringComparison.Ordinal);

        // The run summary is an output too: one row per classified bin, by time, with ml_analyzed as MlAnalyzedTests derive it.
        Assert.Contains("run-summary.png", outputs);
        using var summaryCsv = new MemoryStream();
        using (var download = Runs.DownloadRunOutput(new DownloadArtifactRequest { JobId = run.JobId, Name = "run-summary.csv" }))
            await ChunkedDownload.CopyToAsync(download.ResponseStream, summaryCsv);
        var summary = System.Text.Encoding.UTF8.GetString(summaryCsv.ToArray())
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, summary.Length);
        Assert.Equal(["IFCB5_2012_028_081515", "2012-01-28T08:15:15Z"], summary[1].Split(',')[..2]);
        Assert.Equal("0.003391470833333334", summary[1].Split(',')[3]);
        Assert.StartsWith("D20130526T095207_IFCB013,2013-05-26T09:52:07Z,19,4.8850699041666665,", summary[2],
            StringComparison.Ordinal);

        using var h5 = new MemoryStream();
        using (var download = Runs.DownloadRunOutput(new DownloadArtifactRequest { JobId = run.JobId, Name = "D2013/D20130526/D20130526T095207_IFCB013_class.h5" }))
            await ChunkedDownload.CopyToAsync(download.ResponseStream, h5);
        Assert.Equal([0x89, (byte)'H', (byte)'D', (byte)'F'], h5.ToArray().Take(4));

        var classified = await platform.Events.WaitForAsync<BinsClassified>(
            e => e.JobId == run.JobId && e.BinId == "D20130526T095207_IFCB013", TimeSpan.FromSeconds(30));
        Assert.Equal(19, classified.Rois);
        Assert.Equal(ModelRef.Parse(version), classified.ModelVersion); // the exact version, through the bus and back
        Assert.Equal(2, classified.OutputBlobs.Count);
        await platform.Events.WaitForAsync<RunFinished>(e => e.JobId == run.JobId && e.State == "succeeded", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Bad_run_requests_are_rejected_up_front()
    {
        var both = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(
            new StartRunRequest { Model = "x", RunId = "r", BinSet = "a", Dataset = "b" }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, both.StatusCode);
        var engine = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(
            new StartRunRequest { Model = "x", RunId = "r", BinSet = "a", Engine = "tensorrt" }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, engine.StatusCode);
        Assert.Contains("use auto, torch, onnx", engine.Status.Detail, StringComparison.Ordinal);

        var set = await BinSetUpload.UploadAsync(Datasets, "e2e-bins-bad", BinSetUpload.FindBinFiles(
            Path.Combine(RepoPaths.Root, "testdata", "bins", "white")), PlatformFixture.Auth);
        var unknownModel = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(
            new StartRunRequest { Model = "no-such-model@production", RunId = "r", BinSet = set.Id }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, unknownModel.StatusCode);

        var unknownSet = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(
            new StartRunRequest { Model = "x@y", RunId = "r", BinSet = "no-such-set" }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, unknownSet.StatusCode);

        var notABin = await Assert.ThrowsAsync<RpcException>(async () => await BinSetUpload.UploadAsync(Datasets, "e2e-bins-bad",
            [Path.Combine(RepoPaths.Root, "testdata", "README.md")], PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, notABin.StatusCode);

        // The same lid twice (testdata has a copy of the v1 bin's .adc under partial/) is refused, not silently overwritten.
        var twice = await Assert.ThrowsAsync<RpcException>(async () => await BinSetUpload.UploadAsync(Datasets, "e2e-bins-bad",
            BinSetUpload.FindBinFiles(Path.Combine(RepoPaths.Root, "testdata", "bins")), PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, twice.StatusCode);
        Assert.Contains("appears twice", twice.Status.Detail, StringComparison.Ordinal);
    }
}
