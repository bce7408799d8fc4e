using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>What <c>train</c> and <c>jobs watch</c> print with --json, and the summary they print without it.</summary>
public sealed record TrainReport(
    string Mode, string? JobId, string State, string TrainId, string ModelId, long Seed, IReadOnlyList<string> Classes, int BestEpoch,
    IReadOnlyList<EpochRow> Epochs, string? Outdir, string? Checkpoint, string? RegisteredVersion, string? Error,
    string? Malloc = null) // local mode: NativeAllocator.Settings (environment | in-process | glibc-defaults)
{
    /// <summary>A platform job's report; <paramref name="outdir"/> is where its artifacts were downloaded, if they were.</summary>
    public static TrainReport FromJob(TrainingJob job, string? outdir) => new(
        "server", job.JobId, JobStateNames.Of(job.State), job.Request.TrainId,
        job.Request.ModelId.Length > 0 ? job.Request.ModelId : job.Request.TrainId,
        job.Seed, [.. job.Classes], job.BestEpoch, [.. job.Epochs.Select(EpochRow.From)], outdir, null,
        job.RegisteredVersion.Length > 0 ? job.RegisteredVersion : null, job.Error.Length > 0 ? job.Error : null);

    /// <summary>The metrics table, the best epoch, the job's end, outputs and registration; a failure also on stderr.</summary>
    public void Render(CliContext context)
    {
        if (Epochs.Count > 0)
            TrainingProgressView.RenderMetrics(context.Console, Epochs, $"{ModelId}: {State}");
        var best = Epochs.FirstOrDefault(e => e.Epoch == BestEpoch);
        if (best is not null)
            context.Console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"Best epoch {best.Epoch}: val_loss {best.ValLoss:0.0000}, f1_weighted {best.F1Weighted:0.0000}, " +
                $"f1_macro {best.F1Macro:0.0000}, accuracy {best.Accuracy:0.0000}"));
        if (JobId is not null)
            context.Console.MarkupLine($"Job {JobId}: {State}{(Error is { Length: > 0 } ? " — " + Markup.Escape(Error) : "")}");
        if (Outdir is not null)
            context.Console.MarkupLine($"Outputs in {Markup.Escape(Outdir)}");
        if (RegisteredVersion is { Length: > 0 })
            context.Console.MarkupLine($"Registered as [bold]{Markup.Escape(RegisteredVersion)}[/]");
        if (State != "succeeded" && Error is { Length: > 0 })
            context.Error.WriteLine($"error: training {State}: {Error}");
    }
}
