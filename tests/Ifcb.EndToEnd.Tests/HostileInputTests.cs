using Grpc.Core;
using Ifcb.Client;
using Ifcb.Protos;
using Ifcb.Testing;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// Requests a careless or hostile client sends (each was seen to break the platform before): every one is refused at
/// submission with InvalidArgument naming the field and the limit, nothing is queued, and the services keep serving.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class HostileInputTests(PlatformFixture platform)
{
    private static readonly string Sample = Path.Combine(RepoPaths.Root, "testdata", "training-sample");
    private Ifcb.Protos.Training.TrainingClient Training => new(platform.Channel("training"));
    private Runs.RunsClient Runs => new(platform.Channel("training"));

    private async Task<string> SampleDatasetAsync()
    {
        await DatasetUpload.UploadFolderAsync(new Datasets.DatasetsClient(platform.Channel("training")), "hostile-sample", Sample, PlatformFixture.Auth);
        return "hostile-sample";
    }

    private static StartTrainingRequest Job(string dataset) => new()
    {
        Dataset = dataset, Model = "resnet18", TrainId = "hostile", Untrain = true, Resize = 32, Batch = 8, Emax = 1, Emin = 1,
    };

    private async Task<RpcException> RefusedAsync(StartTrainingRequest request)
    {
        var before = (await Training.ListJobsAsync(new ListJobsRequest { PageSize = 1000 })).Jobs.Count;
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Training.StartTrainingAsync(request, PlatformFixture.Auth));
        Assert.Equal(before, (await Training.ListJobsAsync(new ListJobsRequest { PageSize = 1000 })).Jobs.Count); // nothing queued
        return error;
    }

    /// <summary>Sends files as a raw Upload stream (no client-side checks), each file one chunk.</summary>
    private async Task<RpcException> RefusedUploadAsync(string dataset, params (string Class, string File)[] files)
    {
        var datasets = new Datasets.DatasetsClient(platform.Channel("training"));
        var png = Google.Protobuf.ByteString.CopyFrom(File.ReadAllBytes(Directory.EnumerateFiles(Sample, "*.png", SearchOption.AllDirectories).First()));
        return await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = datasets.Upload(PlatformFixture.Auth);
            await call.RequestStream.WriteAsync(new DatasetUploadChunk { Header = new DatasetUploadHeader { Name = dataset } });
            foreach (var (cls, file) in files)
            {
                await call.RequestStream.WriteAsync(new DatasetUploadChunk
                {
                    File = new DatasetFileChunk { ClassName = cls, FileName = file, Data = png, Last = true },
                });
            }
            await call.RequestStream.CompleteAsync();
            await call;
        });
    }

    [Fact]
    public async Task Uploads_out_of_order_or_with_a_file_twice_are_refused_and_change_nothing()
    {
        var outOfOrder = await RefusedUploadAsync("hostile-order", ("b", "1.png"), ("a", "2.png"));
        Assert.Equal(StatusCode.InvalidArgument, outOfOrder.StatusCode);
        Assert.Contains("a/2.png arrived after b/1.png", outOfOrder.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("ordered by class, then file name", outOfOrder.Status.Detail, StringComparison.Ordinal);

        var twice = await RefusedUploadAsync("hostile-order", ("a", "1.png"), ("a", "2.png"), ("a", "1.png"));
        Assert.Equal(StatusCode.InvalidArgument, twice.StatusCode);
        Assert.Contains("a/1.png appears twice", twice.Status.Detail, StringComparison.Ordinal);

        var datasets = new Datasets.DatasetsClient(platform.Channel("training"));
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await datasets.DescribeAsync(new DatasetRef { Name = "hostile-order" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_batch_that_killed_the_training_worker_in_a_restart_loop_is_refused_at_submission()
    {
        var request = Job(await SampleDatasetAsync());
        request.Batch = 28533;

        var error = await RefusedAsync(request);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("batch is 28533", error.Status.Detail);
        Assert.Contains("MaxBatch", error.Status.Detail);
        Assert.Equal("training", (await Training.GetInfoAsync(new GetInfoRequest())).Service); // still serving
    }

    [Theory]
    [InlineData("register_as", "../../models/x")]
    [InlineData("register_as", "has space")]
    [InlineData("model_id", "a/b")]
    [InlineData("train_id", "..")]
    public async Task Names_that_would_become_bad_blob_paths_or_registry_names_are_refused_at_submission(string field, string value)
    {
        var request = Job(await SampleDatasetAsync());
        switch (field)
        {
            case "register_as": request.RegisterAs = value; break;
            case "model_id": request.ModelId = value; break;
            default: request.TrainId = value; break;
        }

        var error = await RefusedAsync(request);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(field == "train_id" ? "TRAIN_ID" : field, error.Status.Detail);
    }

    [Fact]
    public async Task Out_of_range_numbers_name_their_limit()
    {
        var dataset = await SampleDatasetAsync();
        var epochs = Job(dataset);
        epochs.Emax = 2_000_000;
        Assert.Contains("MaxEpochs", (await RefusedAsync(epochs)).Status.Detail);
        var deadline = Job(dataset);
        deadline.DeadlineSeconds = 365L * 24 * 3600;
        Assert.Contains("MaxJobDeadline", (await RefusedAsync(deadline)).Status.Detail);
        var config = Job(dataset);
        config.ClassConfigCsv = new string('x', 2 << 20);
        config.ClassConfigColumn = "c";
        Assert.Contains("MaxClassConfigBytes", (await RefusedAsync(config)).Status.Detail);
    }

    [Theory]
    [InlineData("/tmp/ifcb-poc/{BIN_ID}.csv")]
    [InlineData("../../{BIN_ID}.csv")]
    [InlineData("D{BIN_YEAR}/../../../{BIN_ID}.h5")]
    public async Task Run_output_patterns_that_leave_the_runs_folder_are_refused(string pattern)
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(new StartRunRequest
        {
            Model = "any-model", RunId = "hostile-run", BinSet = "any-set", Outfile = { pattern },
        }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Fact]
    public async Task A_run_batch_that_overflowed_and_spun_forever_is_refused()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(new StartRunRequest
        {
            Model = "any-model", RunId = "hostile-run", BinSet = "any-set", Batch = 536870912,
        }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("MaxBatch", error.Status.Detail);
    }

    [Fact]
    public async Task Fine_tuning_options_that_cannot_work_are_refused_at_submission()
    {
        var dataset = await SampleDatasetAsync();
        var freeze = Job(dataset);
        freeze.Freeze = "everything";
        var unknownFreeze = await RefusedAsync(freeze);
        Assert.Equal(StatusCode.InvalidArgument, unknownFreeze.StatusCode);
        Assert.Contains("none, features", unknownFreeze.Status.Detail);

        var unfreeze = Job(dataset);
        unfreeze.FreezeEpochs = 1;
        var unfreezeAlone = await RefusedAsync(unfreeze);
        Assert.Equal(StatusCode.InvalidArgument, unfreezeAlone.StatusCode);
        Assert.Contains("--freeze features", unfreezeAlone.Status.Detail);

        var from = Job(dataset);
        from.From = "no-such-model@production";
        Assert.Equal(StatusCode.NotFound, (await RefusedAsync(from)).StatusCode);
    }

    [Fact]
    public async Task An_evaluation_of_raw_bins_is_refused_because_bins_carry_no_labels()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Runs.StartRunAsync(new StartRunRequest
        {
            Model = "any-model", RunId = "hostile-evaluation", BinSet = "any-set", Evaluate = true,
        }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("give dataset, not bin_set", error.Status.Detail);
    }

    [Fact]
    public async Task A_norm_stats_job_of_one_image_per_shard_with_a_huge_class_config_is_refused()
    {
        var dataset = await SampleDatasetAsync();
        var normStats = new NormStats.NormStatsClient(platform.Channel("normstats"));

        var huge = await Assert.ThrowsAsync<RpcException>(async () => await normStats.ComputeAsync(new ComputeNormRequest
        {
            Dataset = dataset,
            Options = new NormOptions { ShardSize = 1, ClassConfigCsv = new string('x', 2 << 20), ClassConfigColumn = "c" },
        }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, huge.StatusCode);

        var manyShards = await Assert.ThrowsAsync<RpcException>(async () => await normStats.ComputeAsync(new ComputeNormRequest
        {
            Dataset = dataset,
            Options = new NormOptions { ShardSize = 200_000 },
        }, PlatformFixture.Auth));
        Assert.Equal(StatusCode.InvalidArgument, manyShards.StatusCode);
        Assert.Contains("shard_size", manyShards.Status.Detail);
    }

    [Fact]
    public async Task Unknown_jobs_and_datasets_are_NotFound_not_Unknown()
    {
        var job = await Assert.ThrowsAsync<RpcException>(async () => await Training.GetJobAsync(new JobRef { JobId = "../../etc/passwd" }));
        Assert.Equal(StatusCode.NotFound, job.StatusCode);
        var request = Job("no-such-dataset");
        var dataset = await Assert.ThrowsAsync<RpcException>(async () => await Training.StartTrainingAsync(request, PlatformFixture.Auth));
        Assert.Equal(StatusCode.NotFound, dataset.StatusCode);
    }
}
