using System.Diagnostics;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Inference;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>Takes a RunModel command: starts the run on this worker if it may run here (see <see cref="JobExecutor"/>).</summary>
public sealed class RunModelConsumer(RunJobStore runs, JobExecutor executor, RunJobWork work) : IConsumer<RunModel>
{
    public Task Consume(ConsumeContext<RunModel> context) =>
        executor.AcceptAsync(runs, context.Message.JobId,
            (run, ct) => JobQueue.SendAsync(context, run, ct),
            work.RunAsync, work.AnnounceEndAsync, context.CancellationToken);
}

/// <summary>
/// A platform RUN's work on a Training worker: fetches the registered model and the inputs, classifies with the RUN
/// engine, uploads each bin's outputs as soon as it is done and publishes BinsClassified, and at the end uploads the run
/// summary (run-summary.csv/.png, see <see cref="Ifcb.Inference.Outputs.BinSummaryTable"/>). An attempt that is retried
/// (a transient fault, a lost worker) starts over from the first bin; outputs are overwritten with the same content.
/// </summary>
public sealed class RunJobWork(
    RunJobStore runs,
    BlobDatasetStore datasets,
    BlobBinSetStore binSets,
    RegistryCheckpoints registry,
    WorkerCache cache,
    ServiceIdentity identity,
    IBus bus,
    JobKernelOptions options,
    ILogger<RunJobWork> logger)
{
    private static readonly ActivitySource Activity = new("Ifcb.Training");

    public async Task RunAsync(RunJobRecord started, CancellationToken shutdown)
    {
        using var activity = Activity.StartActivity("run");
        activity?.SetTag("ifcb.job_id", started.JobId);
        var runner = new JobAttemptRunner<RunJobRecord>(runs, options, logger);
        var result = await runner.RunAsync(started, identity.InstanceId, ClassifyAsync, shutdown);
        if (result.Outcome == JobRunOutcome.Ended)
            await AnnounceEndAsync(result.Job, CancellationToken.None);
        else if (result.Outcome == JobRunOutcome.Released)
        {
            try
            {
                await JobQueue.SendAsync(bus, started, CancellationToken.None);
                await runs.UpdateAsync(started.JobId, j => j.State == JobState.Queued ? j.Dispatched(runs.Time.GetUtcNow()) : null,
                    CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogInformation("Run {JobId} was released; the reconciler sends it again ({Reason}).", started.JobId,
                    Faults.Reason(e));
            }
        }
    }

    public async Task AnnounceEndAsync(RunJobRecord job, CancellationToken cancellationToken)
    {
        try
        {
            await bus.Publish(new RunFinished(job.JobId, job.Request.RunId, job.State.ToString().ToLowerInvariant(), job.Completed.Count,
                job.Failed.Count), cancellationToken);
        }
        catch (Exception e) when (Faults.IsTransient(e) || e is OperationCanceledException)
        {
            logger.LogWarning("Run {JobId} is {State}, but announcing it failed ({Reason}).", job.JobId, job.State, Faults.Reason(e));
        }
        try
        {
            await ReleaseBinSetAsync(job, cancellationToken);
        }
        catch (Exception e) when (Faults.IsTransient(e) || e is OperationCanceledException)
        {
            logger.LogInformation("Run {JobId}: its bin set is deleted later by the reconciler ({Reason}).", job.JobId, Faults.Reason(e));
        }
    }

    /// <summary>Deletes a finished run's bin set (it belongs to the run) and records that, which ends the run's follow-up.</summary>
    public async Task ReleaseBinSetAsync(RunJobRecord job, CancellationToken cancellationToken)
    {
        if (!job.NeedsFollowUp() || job.Request.BinSet is not { } binSet)
            return;
        var deleted = await binSets.DeleteAsync(binSet, cancellationToken);
        await runs.UpdateAsync(job.JobId, j => j.BinSetReleased ? null : j with { BinSetReleased = true }, cancellationToken);
        logger.LogInformation("Run {JobId} ended {State}; its bin set {BinSet} was deleted ({Blobs} blobs).", job.JobId, job.State,
            binSet, deleted);
    }

    private async Task<JobCompletion<RunJobRecord>> ClassifyAsync(JobLease<RunJobRecord> lease, CancellationToken cancellationToken)
    {
        var jobId = lease.JobId;
        var job = await UpdateAsync(lease, j => j with { Completed = [], Failed = [], ItemsDone = 0 }) ?? lease.Job;
        var spec = job.Request;
        var work = Path.Combine(cache.Directory, "runs", jobId);
        try
        {
            var checkpoint = await registry.LoadAsync(job.ModelVersion, cancellationToken);
            // Lineage: the registry records which jobs used which version (best effort; a lost event loses one record).
            PublishQuietly(new ModelVersionUsed(jobId, job.ModelVersion, spec.Evaluate ? "evaluate" : "run", runs.Time.GetUtcNow()));
            using var model = checkpoint.Model;
            string source;
            using var dataset = spec.BinSet is null
                ? await datasets.OpenForJobAsync(spec.Dataset!, cache, logger, jobId, cancellationToken)
                : null;
            source = Path.Combine(work, "input");
            if (dataset is null)
                await binSets.DownloadAsync(spec.BinSet!, source, cancellationToken);
            else
            {
                // RUN and evaluation read class-folder trees: the images come from the worker's cached shards.
                dataset.ExtractTo(source, cancellationToken);
                var fetch = dataset.Fetch;
                await UpdateAsync(lease, j => j.WithCurrentAttempt(a => a with { Dataset = fetch }));
            }
            var outputs = Path.Combine(work, "output");
            if (spec.Evaluate && dataset is not null)
                return await EvaluateAsync(lease, job, checkpoint, dataset, source, outputs, cancellationToken);
            var request = new RunRequest(source, spec.RunId)
            {
                InputType = spec.BinSet is null ? RunInputType.Image : RunInputType.Bin,
                OutputDirectory = outputs,
                OutputFiles = spec.OutputFiles.Count > 0 ? spec.OutputFiles : null,
                Filter = spec.FilterMode is { } mode ? RunFilter.Parse(mode, spec.FilterKeywords) : null,
                Clobber = true,
                BatchSize = spec.BatchSize,
                // Every result file names the exact version, the alias it came from and the checkpoint's SHA-256.
                ModelProvenance = Ifcb.Inference.Outputs.ModelProvenance.FromRegistry(job.ModelVersion, ModelRef.Parse(spec.Model),
                    job.ModelSha256 ?? ""),
            };
            var (device, engineChoice) = InferenceEngines.Resolve(spec.Engine, spec.Device);
            request = request with { Engine = engineChoice };
            var engine = new RunEngine(checkpoint, device);
            var artifacts = runs.Artifacts(jobId);
            // The engine reports synchronously on its thread after every bin; uploading there keeps each bin's outputs
            // durable before the next one starts.
            var summary = await Task.Run(() => engine.Run(request, new InlineProgress<RunProgress>(progress =>
            {
                var uploaded = new List<string>();
                if (progress.Completed is { } done)
                {
                    foreach (var file in done.OutputFiles)
                    {
                        var name = Path.GetRelativePath(outputs, file).Replace('\\', '/');
                        artifacts.WriteAsync(name, File.ReadAllBytes(file), cancellationToken).GetAwaiter().GetResult();
                        uploaded.Add(runs.ArtifactBlobName(jobId, name));
                    }
                    PublishQuietly(new BinsClassified(jobId, spec.RunId, done.Id, job.ModelVersion, done.ImageCount, runs.Container.Name,
                        uploaded));
                }
                UpdateAsync(lease, j => j with
                {
                    ItemsTotal = progress.ItemsTotal,
                    ItemsDone = progress.ItemsDone,
                    ImagesClassified = progress.ImagesClassified,
                    ImagesPerSecond = progress.ImagesPerSecond,
                    Completed = progress.Completed is { } c ? [.. j.Completed, c.Id] : j.Completed,
                    Failed = progress.Failed is { } f ? [.. j.Failed, new RunItemFailureRecord(f.Id, f.Reason)] : j.Failed,
                }).GetAwaiter().GetResult();
            }), cancellationToken), cancellationToken);

            // The run's summary table (bin runs) is an output like the bins' files, listed and downloaded the same way.
            foreach (var file in summary.BinSummaryFiles)
            {
                var name = Path.GetRelativePath(outputs, file).Replace('\\', '/');
                await artifacts.WriteAsync(name, await File.ReadAllBytesAsync(file, cancellationToken), cancellationToken);
            }

            // The summary is authoritative: it also holds inputs that failed before classification started.
            RunJobRecord Finish(RunJobRecord j) => j with
            {
                Completed = [.. summary.Completed.Select(c => c.Id)],
                Failed = [.. summary.Failed.Select(f => new RunItemFailureRecord(f.Id, f.Reason)),
                    .. summary.NotInputs.Select(n => new RunItemFailureRecord(Path.GetFileName(n.Path), n.Reason))],
            };
            return summary.Completed.Count == 0 && summary.Failed.Count > 0
                ? JobCompletion<RunJobRecord>.Failure("No input could be classified; see failed.", Finish)
                : JobCompletion<RunJobRecord>.Success(Finish);
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// An evaluation: scores the model against the dataset's class folders, uploads evaluation.json, the per-class CSV and
    /// the confusion matrix as the run's outputs, and announces ModelEvaluated so the Registry keeps the figures on the version.
    /// </summary>
    private async Task<JobCompletion<RunJobRecord>> EvaluateAsync(JobLease<RunJobRecord> lease, RunJobRecord job,
        Ifcb.Models.Checkpoints.LoadedCheckpoint checkpoint, CachedDataset dataset, string source, string outputs,
        CancellationToken cancellationToken)
    {
        var spec = job.Request;
        var (device, engine) = InferenceEngines.Resolve(spec.Engine, spec.Device);
        var options = new Ifcb.Training.Engine.EvaluationOptions { BatchSize = spec.BatchSize, Device = device, Engine = engine };
        var clock = Stopwatch.StartNew();
        var report = await Task.Run(() => Ifcb.Training.Engine.ModelEvaluation.Evaluate(checkpoint, source, options,
            new InlineProgress<(int Done, int Total)>(p => UpdateAsync(lease, j => j with
            {
                ItemsTotal = 1,
                ItemsDone = 0,
                ImagesClassified = p.Done,
                ImagesPerSecond = p.Done / Math.Max(clock.Elapsed.TotalSeconds, 1e-3),
            }).GetAwaiter().GetResult()), cancellationToken), cancellationToken);
        var artifacts = runs.Artifacts(job.JobId);
        foreach (var file in Ifcb.Training.Engine.ModelEvaluation.WriteOutputs(report, outputs))
            await artifacts.WriteAsync(Path.GetFileName(file), await File.ReadAllBytesAsync(file, cancellationToken), cancellationToken);
        var reportJson = await File.ReadAllTextAsync(Path.Combine(outputs, Ifcb.Training.Engine.ModelEvaluation.ReportFileName),
            cancellationToken);
        await bus.Publish(new ModelEvaluated(job.JobId, job.ModelVersion, spec.Dataset!, dataset.Manifest.Fingerprint, report.Images,
            report.Accuracy, report.F1Weighted, report.F1Macro, runs.Time.GetUtcNow(), reportJson), cancellationToken);
        foreach (var path in report.Undecodable)
            logger.LogWarning("Evaluation {JobId}: {Image} could not be decoded and was left out.", job.JobId, path);
        return JobCompletion<RunJobRecord>.Success(j => j with
        {
            ItemsTotal = 1,
            ItemsDone = 1,
            ImagesClassified = report.Images,
            Completed = [spec.Dataset!],
            Failed = [.. report.Undecodable.Select(p => new RunItemFailureRecord(Path.GetFileName(p), "could not be decoded"))],
        });
    }

    /// <summary>Records progress while this worker holds the run; a storage blip skips one update (the final record is complete).</summary>
    private async Task<RunJobRecord?> UpdateAsync(JobLease<RunJobRecord> lease, Func<RunJobRecord, RunJobRecord> change)
    {
        try
        {
            var (job, _) = await runs.UpdateAsync(lease.JobId,
                j => j.State == JobState.Running && j.Worker == lease.Worker ? change(j) : null, CancellationToken.None);
            lease.Observe(job);
            return job;
        }
        catch (Exception e) when (Faults.IsTransient(e))
        {
            logger.LogDebug("Progress of run {JobId} not recorded ({Reason}).", lease.JobId, Faults.Reason(e));
            return null;
        }
    }

    private void PublishQuietly<T>(T message) where T : class
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            bus.Publish(message, timeout.Token).GetAwaiter().GetResult();
        }
        catch (Exception e) when (Faults.IsTransient(e) || e is OperationCanceledException)
        {
            logger.LogDebug("{Event} not sent ({Reason}).", typeof(T).Name, Faults.Reason(e));
        }
    }

    /// <summary>Reports on the engine's thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
