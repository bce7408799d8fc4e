using System.Diagnostics;
using Ifcb.Contracts;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Inference;
using Ifcb.Training.Engine.Jobs;
using MassTransit;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Training;

/// <summary>
/// Runs a platform RUN job (the RunModel command) on a Training worker: fetches the registered model and the inputs,
/// classifies with the RUN engine, uploads each bin's outputs as soon as it is done and publishes BinsClassified.
/// A redelivered run (its worker died) starts over; outputs are overwritten with the same content.
/// </summary>
public sealed class RunModelConsumer(
    RunJobStore runs,
    BlobDatasetStore datasets,
    BlobBinSetStore binSets,
    RegistryCheckpoints registry,
    WorkerCache cache,
    ServiceIdentity identity,
    ILogger<RunModelConsumer> logger) : IConsumer<RunModel>
{
    private static readonly ActivitySource Activity = new("Ifcb.Training");

    public async Task Consume(ConsumeContext<RunModel> context)
    {
        var jobId = context.Message.JobId;
        var job = await runs.GetAsync(jobId, context.CancellationToken);
        if (job is null || job.IsTerminal)
            return;
        if (job.CancelRequested)
        {
            await FinishAsync(context, await runs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Cancelled }, CancellationToken.None));
            return;
        }
        using var activity = Activity.StartActivity("run");
        activity?.SetTag("ifcb.job_id", jobId);
        job = await runs.UpdateAsync(jobId, j => j with
        {
            State = TrainingJobState.Running, Worker = identity.InstanceId, Attempts = j.Attempts + 1, Completed = [], Failed = [], ItemsDone = 0,
        }, context.CancellationToken);

        var work = Path.Combine(cache.Directory, "runs", jobId);
        using var userCancel = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(userCancel.Token, context.CancellationToken);
        try
        {
            var spec = job.Request;
            var slash = job.ModelVersion.LastIndexOf('/');
            var checkpoint = await registry.LoadAsync(job.ModelVersion[..slash], int.Parse(job.ModelVersion[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture), linked.Token);
            using var model = checkpoint.Model;
            string source;
            if (spec.BinSet is { } binSet)
            {
                source = Path.Combine(work, "input");
                await binSets.DownloadAsync(binSet, source, linked.Token);
            }
            else
            {
                source = (await datasets.MaterializeAsync(spec.Dataset!, cache.Directory, cancellationToken: linked.Token)).LocalRoot;
            }
            var outputs = Path.Combine(work, "output");
            var request = new RunRequest(source, spec.RunId)
            {
                InputType = spec.BinSet is null ? RunInputType.Image : RunInputType.Bin,
                OutputDirectory = outputs,
                OutputFiles = spec.OutputFiles.Count > 0 ? spec.OutputFiles : null,
                Filter = spec.FilterMode is { } mode ? RunFilter.Parse(mode, spec.FilterKeywords) : null,
                Clobber = true,
                BatchSize = spec.BatchSize,
            };
            var engine = new RunEngine(checkpoint, Ifcb.Models.DeviceSelection.Resolve(spec.Device));
            var artifacts = runs.Artifacts(jobId);
            var lastCheck = Stopwatch.StartNew();
            // The engine reports synchronously on this worker's thread after every bin; uploading there keeps each
            // bin's outputs durable before the next one starts.
            var summary = await Task.Run(() => engine.Run(request, new InlineProgress<RunProgress>(progress =>
            {
                var uploaded = new List<string>();
                if (progress.Completed is { } done)
                {
                    foreach (var file in done.OutputFiles)
                    {
                        var name = Path.GetRelativePath(outputs, file).Replace('\\', '/');
                        artifacts.WriteAsync(name, File.ReadAllBytes(file), CancellationToken.None).GetAwaiter().GetResult();
                        uploaded.Add(runs.ArtifactBlobName(jobId, name));
                    }
                    context.Publish(new BinsClassified(jobId, spec.RunId, done.Id, job.ModelVersion, done.ImageCount, runs.Container.Name, uploaded),
                        CancellationToken.None).GetAwaiter().GetResult();
                }
                var updated = runs.UpdateAsync(jobId, j => j with
                {
                    ItemsTotal = progress.ItemsTotal,
                    ItemsDone = progress.ItemsDone,
                    ImagesClassified = progress.ImagesClassified,
                    ImagesPerSecond = progress.ImagesPerSecond,
                    Completed = progress.Completed is { } c ? [.. j.Completed, c.Id] : j.Completed,
                    Failed = progress.Failed is { } f ? [.. j.Failed, new RunItemFailureRecord(f.Id, f.Reason)] : j.Failed,
                }, CancellationToken.None).GetAwaiter().GetResult();
                if (updated.CancelRequested)
                    userCancel.Cancel();
            }), linked.Token), linked.Token);

            // The summary is authoritative: it also holds bins that failed before classification started.
            var final = await runs.UpdateAsync(jobId, j => j with
            {
                Completed = [.. summary.Completed.Select(c => c.Id)],
                Failed = [.. summary.Failed.Select(f => new RunItemFailureRecord(f.Id, f.Reason)),
                    .. summary.NotInputs.Select(n => new RunItemFailureRecord(Path.GetFileName(n.Path), n.Reason))],
                State = summary.Completed.Count == 0 && summary.Failed.Count > 0 ? TrainingJobState.Failed : TrainingJobState.Succeeded,
                Error = summary.Completed.Count == 0 && summary.Failed.Count > 0 ? "No input could be classified; see failed." : null,
            }, CancellationToken.None);
            await FinishAsync(context, final);
        }
        catch (OperationCanceledException) when (userCancel.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            await FinishAsync(context, await runs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Cancelled }, CancellationToken.None));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            throw; // not acknowledged: RabbitMQ redelivers and another worker runs it
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Run {JobId} failed", jobId);
            var reason = e is Grpc.Core.RpcException rpc ? rpc.Status.Detail : e.Message;
            await FinishAsync(context, await runs.UpdateAsync(jobId, j => j with { State = TrainingJobState.Failed, Error = reason }, CancellationToken.None));
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    private static Task FinishAsync(ConsumeContext context, RunJobRecord job) =>
        context.Publish(new RunFinished(job.JobId, job.Request.RunId, job.State.ToString().ToLowerInvariant(), job.Completed.Count, job.Failed.Count));

    /// <summary>Reports on the engine's thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
