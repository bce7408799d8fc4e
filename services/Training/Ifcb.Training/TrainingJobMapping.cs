using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform.Jobs;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training;

/// <summary>proto ⇄ engine records for training jobs.</summary>
internal static class TrainingJobMapping
{
    public static TrainingRequestSpec ToSpec(this StartTrainingRequest r, long resolvedSeed) => new()
    {
        Dataset = r.Dataset,
        Architecture = r.Model,
        TrainId = r.TrainId,
        Pretrained = !r.Untrain,
        ImgNorm = string.IsNullOrWhiteSpace(r.ImgNorm) ? null : r.ImgNorm.Trim(),
        Seed = resolvedSeed,
        Split = string.IsNullOrWhiteSpace(r.Split) ? "80:20" : r.Split,
        ClassConfigCsv = string.IsNullOrWhiteSpace(r.ClassConfigCsv) ? null : r.ClassConfigCsv,
        ClassConfigColumn = string.IsNullOrWhiteSpace(r.ClassConfigColumn) ? null : r.ClassConfigColumn,
        ClassMin = r.ClassMin > 0 ? r.ClassMin : 2,
        ClassMax = r.ClassMax > 0 ? r.ClassMax : null,
        Emax = r.Emax > 0 ? r.Emax : 60,
        Emin = r.Emin > 0 ? r.Emin : 10,
        Estop = r.EstopDisabled ? 0 : r.Estop > 0 ? r.Estop : 10,
        Flip = string.IsNullOrWhiteSpace(r.Flip) ? null : r.Flip,
        BatchSize = r.Batch > 0 ? r.Batch : Defaults.BatchSize,
        Swap = r.Swap,
        Resize = r.Resize > 0 ? r.Resize : null,
        ModelId = string.IsNullOrWhiteSpace(r.ModelId) ? null : r.ModelId,
        RegisterAs = string.IsNullOrWhiteSpace(r.RegisterAs) ? null : r.RegisterAs,
        Device = string.IsNullOrWhiteSpace(r.Device) ? "auto" : r.Device,
        LearningRate = r.HasLr ? r.Lr : null,
        Optimizer = string.IsNullOrWhiteSpace(r.Optimizer) ? null : r.Optimizer.Trim(),
        WeightDecay = r.HasWeightDecay ? r.WeightDecay : null,
        LrSchedule = string.IsNullOrWhiteSpace(r.LrSchedule) ? null : r.LrSchedule.Trim(),
        ClassWeights = string.IsNullOrWhiteSpace(r.ClassWeights) ? null : r.ClassWeights.Trim(),
        ClassWeightsCsv = string.IsNullOrWhiteSpace(r.ClassWeightsCsv) ? null : r.ClassWeightsCsv,
        Sampler = string.IsNullOrWhiteSpace(r.Sampler) ? null : r.Sampler.Trim(),
        From = string.IsNullOrWhiteSpace(r.From) ? null : r.From.Trim(),
        Freeze = string.IsNullOrWhiteSpace(r.Freeze) ? null : r.Freeze.Trim(),
        FreezeEpochs = r.HasFreezeEpochs ? r.FreezeEpochs : null,
    };

    public static StartTrainingRequest ToProto(this TrainingRequestSpec s)
    {
        var request = new StartTrainingRequest
        {
            Dataset = s.Dataset,
            Model = s.Architecture,
            TrainId = s.TrainId,
            Untrain = !s.Pretrained,
            ImgNorm = s.ImgNorm ?? "",
            Seed = s.Seed,
            Split = s.Split,
            ClassConfigCsv = s.ClassConfigCsv ?? "",
            ClassConfigColumn = s.ClassConfigColumn ?? "",
            ClassMin = s.ClassMin,
            ClassMax = s.ClassMax ?? 0,
            Emax = s.Emax,
            Emin = s.Emin,
            Estop = s.Estop,
            EstopDisabled = s.Estop == 0,
            Flip = s.Flip ?? "",
            Batch = s.BatchSize,
            Swap = s.Swap,
            Resize = s.Resize ?? 0,
            ModelId = s.ModelId ?? "",
            RegisterAs = s.RegisterAs ?? "",
            Device = s.Device,
            Optimizer = s.Optimizer ?? "",
            LrSchedule = s.LrSchedule ?? "",
            ClassWeights = s.ClassWeights ?? "",
            ClassWeightsCsv = s.ClassWeightsCsv ?? "",
            Sampler = s.Sampler ?? "",
            From = s.From ?? "",
            Freeze = s.Freeze ?? "",
        };
        if (s.LearningRate is { } lr)
            request.Lr = lr;
        if (s.WeightDecay is { } decay)
            request.WeightDecay = decay;
        if (s.FreezeEpochs is { } unfreeze)
            request.FreezeEpochs = unfreeze;
        return request;
    }

    public static TrainingJob ToProto(this TrainingJobRecord j)
    {
        var job = new TrainingJob
        {
            JobId = j.JobId,
            State = j.State.ToProto(),
            Request = j.Request.ToProto(),
            Seed = j.Request.Seed,
            Epoch = j.Epoch,
            Batch = j.Batch,
            BatchesPerEpoch = j.BatchesPerEpoch,
            ImagesPerSecond = j.ImagesPerSecond,
            BestEpoch = j.BestEpoch,
            Worker = j.Worker ?? "",
            Error = j.Error ?? "",
            CreatedAt = j.CreatedAt.ToString("O"),
            UpdatedAt = j.UpdatedAt.ToString("O"),
            DatasetFingerprint = j.DatasetFingerprint ?? "",
            RegisteredVersion = j.RegisteredVersion ?? "",
            Attempts = j.Attempts,
            ResumedFromEpoch = j.ResumedFromEpoch,
            Deadline = j.Deadline?.ToString("O") ?? "",
            CancelReason = j.CancelReason ?? "",
            RegistrationError = j.RegistrationError ?? "",
            EndedAt = j.EndedAt?.ToString("O") ?? "",
            Priority = j.Priority.Name(),
        };
        job.AttemptHistory.AddRange(j.AttemptHistory.Select(ToProto));
        job.Epochs.AddRange(j.Epochs.Select(ToProto));
        if (j.Classes is not null)
            job.Classes.AddRange(j.Classes);
        if (j.ImgNorm is { } norm)
            job.ImgNorm = ImgNormProtos.ToProto(norm);
        return job;
    }

    public static EpochMetrics ToProto(this EpochRecord e) => new()
    {
        Epoch = e.Epoch,
        Best = e.Best,
        TrainLoss = e.TrainLoss,
        ValLoss = e.ValLoss,
        ValLossMean = e.ValLossMean,
        F1Macro = e.F1Macro,
        F1Weighted = e.F1Weighted,
        Accuracy = e.Accuracy,
        Seconds = e.Seconds,
        ImagesPerSecond = e.ImagesPerSecond,
        Lr = e.LearningRate ?? 0,
    };

    public static Ifcb.Protos.JobState ToProto(this Ifcb.Platform.Jobs.JobState state) => state switch
    {
        Ifcb.Platform.Jobs.JobState.Queued => Ifcb.Protos.JobState.Queued,
        Ifcb.Platform.Jobs.JobState.Running => Ifcb.Protos.JobState.Running,
        Ifcb.Platform.Jobs.JobState.Succeeded => Ifcb.Protos.JobState.Succeeded,
        Ifcb.Platform.Jobs.JobState.Failed => Ifcb.Protos.JobState.Failed,
        Ifcb.Platform.Jobs.JobState.Cancelled => Ifcb.Protos.JobState.Cancelled,
        _ => Ifcb.Protos.JobState.Unspecified,
    };

    public static Ifcb.Protos.JobAttempt ToProto(this Ifcb.Platform.Jobs.JobAttempt a) => new()
    {
        Number = a.Number,
        Worker = a.Worker,
        StartedAt = a.StartedAt.ToString("O"),
        EndedAt = a.EndedAt?.ToString("O") ?? "",
        Outcome = a.Outcome switch
        {
            AttemptOutcome.Finished => "finished",
            AttemptOutcome.WorkerLost => "worker_lost",
            AttemptOutcome.Released => "released",
            _ => "",
        },
        Progress = a.Progress ?? "",
        DatasetShardsDownloaded = a.Dataset?.ShardsDownloaded ?? 0,
        DatasetBytesDownloaded = a.Dataset?.BytesDownloaded ?? 0,
        DatasetShardsCached = a.Dataset?.ShardsCached ?? 0,
        DatasetReadyAt = a.Dataset?.ReadyAt.ToString("O") ?? "",
        FirstBatchAt = a.FirstBatchAt?.ToString("O") ?? "",
    };

    /// <summary>
    /// The ModelTrained event of a succeeded job, rebuilt from its record alone, so the reconciler can send it again
    /// after a crash between recording SUCCEEDED and sending it. <paramref name="checkpointUri"/> is the read grant to
    /// the best checkpoint (<see cref="BestCheckpointBlob"/>).
    /// </summary>
    public static ModelTrained ToModelTrained(this TrainingJobRecord job, Uri checkpointUri)
    {
        var spec = job.Request;
        var metrics = new Dictionary<string, double>();
        if (job.Epochs.FirstOrDefault(e => e.Epoch == job.BestEpoch) is { } best)
        {
            metrics["val_loss"] = best.ValLoss;
            metrics["val_loss_mean"] = best.ValLossMean;
            metrics["train_loss"] = best.TrainLoss;
            metrics["f1_weighted"] = best.F1Weighted;
            metrics["f1_macro"] = best.F1Macro;
            metrics["accuracy"] = best.Accuracy;
            metrics["epochs"] = job.Epochs.Count;
        }
        return new ModelTrained(job.JobId, spec.TrainId, string.IsNullOrWhiteSpace(spec.ModelId) ? spec.TrainId : spec.ModelId,
            spec.Architecture, job.Classes ?? [], job.ImgNorm, job.ParentPretrained ?? spec.Pretrained,
            spec.Resize ?? Ifcb.Models.ModelZoo.InputSize(spec.Architecture), spec.Seed, spec.Dataset, job.DatasetFingerprint,
            job.BestEpoch, metrics, checkpointUri, job.CheckpointSha256 ?? "", job.CheckpointSize, spec.RegisterAs,
            spec.FromVersion);
    }

    /// <summary>The blob of a succeeded job's best checkpoint.</summary>
    public static BlobClient BestCheckpointBlob(this TrainingJobRecord job, TrainingJobStore store) =>
        store.Container.GetBlobClient(store.ArtifactBlobName(job.JobId,
            job.BestCheckpoint ?? throw new InvalidOperationException($"Training job {job.JobId} has no best checkpoint recorded.")));

    public static RunJob ToProto(this RunJobRecord r)
    {
        var run = new RunJob
        {
            JobId = r.JobId,
            State = r.State.ToProto(),
            Request = new StartRunRequest
            {
                Model = r.Request.Model, RunId = r.Request.RunId, BinSet = r.Request.BinSet ?? "", Dataset = r.Request.Dataset ?? "",
                Outfile = { r.Request.OutputFiles }, Batch = r.Request.BatchSize, FilterMode = r.Request.FilterMode ?? "",
                FilterKeywords = { r.Request.FilterKeywords }, Device = r.Request.Device, Engine = r.Request.Engine,
                Evaluate = r.Request.Evaluate,
            },
            ModelVersion = r.ModelVersion.ToString(),
            ItemsTotal = r.ItemsTotal,
            ItemsDone = r.ItemsDone,
            ImagesClassified = r.ImagesClassified,
            ImagesPerSecond = r.ImagesPerSecond,
            Worker = r.Worker ?? "",
            Error = r.Error ?? "",
            CreatedAt = r.CreatedAt.ToString("O"),
            UpdatedAt = r.UpdatedAt.ToString("O"),
            Attempts = r.Attempts,
            Deadline = r.Deadline?.ToString("O") ?? "",
            EndedAt = r.EndedAt?.ToString("O") ?? "",
            Priority = r.Priority.Name(),
        };
        run.AttemptHistory.AddRange(r.AttemptHistory.Select(ToProto));
        run.Completed.AddRange(r.Completed);
        run.Failed.AddRange(r.Failed.Select(f => new RunFailure { Id = f.Id, Reason = f.Reason }));
        return run;
    }

    public static Ifcb.Platform.Jobs.JobState? ToState(this Ifcb.Protos.JobState state) => state switch
    {
        Ifcb.Protos.JobState.Queued => Ifcb.Platform.Jobs.JobState.Queued,
        Ifcb.Protos.JobState.Running => Ifcb.Platform.Jobs.JobState.Running,
        Ifcb.Protos.JobState.Succeeded => Ifcb.Platform.Jobs.JobState.Succeeded,
        Ifcb.Protos.JobState.Failed => Ifcb.Platform.Jobs.JobState.Failed,
        Ifcb.Protos.JobState.Cancelled => Ifcb.Platform.Jobs.JobState.Cancelled,
        _ => null,
    };
}
