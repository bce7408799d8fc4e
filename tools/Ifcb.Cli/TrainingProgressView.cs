using System.Globalization;
using Ifcb.Client;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// One epoch as the CLI shows it, from a local run (<see cref="EpochRecord"/>) or a platform job
/// (<see cref="EpochMetrics"/>).
/// </summary>
public sealed record EpochRow(
    int Epoch, bool Best, double TrainLoss, double ValLoss, double F1Macro, double F1Weighted, double Accuracy, double Seconds)
{
    public static EpochRow From(EpochRecord e) =>
        new(e.Epoch, e.Best, e.TrainLoss, e.ValLoss, e.F1Macro, e.F1Weighted, e.Accuracy, e.Seconds);

    public static EpochRow From(EpochMetrics e) =>
        new(e.Epoch, e.Best, e.TrainLoss, e.ValLoss, e.F1Macro, e.F1Weighted, e.Accuracy, e.Seconds);
}

/// <summary>Receives training progress from either source and moves the progress bars.</summary>
public interface ITrainingProgress
{
    void Batch(int epoch, int batch, int batchesPerEpoch, double imagesPerSecond);

    void Epoch(EpochRow row);
}

/// <summary>
/// The live view of a training run: one Spectre progress bar per epoch (batches done), annotated with the epoch's
/// validation loss and F1 when it ends; and the final per-epoch metrics table. Silent in <c>--json</c> mode.
/// </summary>
public static class TrainingProgressView
{
    public static async Task<T> RunAsync<T>(CliContext context, bool quiet, Func<ITrainingProgress, Task<T>> work)
    {
        if (quiet)
            return await work(new SilentProgress());
        // Redirected output (CI logs, pipes) gets one plain line per finished epoch instead of redrawn bars.
        if (!context.Console.Profile.Capabilities.Interactive)
            return await work(new EpochLines(context.Console));
        return await context.Console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(progress => work(new EpochBars(progress)));
    }

    /// <summary>
    /// Follows a platform training job to its end (<see cref="TrainingJobs.FollowAsync"/>) with this view's progress
    /// bars.
    /// </summary>
    public static Task<TrainingJob> FollowJobAsync(CliContext context, bool quiet, PlatformConnection platform, string jobId,
        CancellationToken cancellationToken) =>
        RunAsync(context, quiet, progress => TrainingJobs.FollowAsync(platform.Training, jobId, platform.Retry,
            epoch => progress.Epoch(EpochRow.From(epoch)),
            job => progress.Batch(job.Epoch, job.Batch, job.BatchesPerEpoch, job.ImagesPerSecond),
            cancellationToken));

    /// <summary>The per-epoch metrics, best epoch marked.</summary>
    public static void RenderMetrics(IAnsiConsole console, IReadOnlyList<EpochRow> epochs, string title)
    {
        var table = new Table().Title(Markup.Escape(title)).Border(TableBorder.Rounded);
        foreach (var column in new[] { "epoch", "best", "train_loss", "val_loss", "f1_macro", "f1_weighted", "accuracy", "seconds" })
            table.AddColumn(new TableColumn(column).RightAligned());
        foreach (var e in epochs)
            table.AddRow(e.Epoch.ToString(CultureInfo.InvariantCulture), e.Best ? "*" : "", Format(e.TrainLoss), Format(e.ValLoss),
                Format(e.F1Macro), Format(e.F1Weighted), Format(e.Accuracy), e.Seconds.ToString("0.0", CultureInfo.InvariantCulture));
        console.Write(table);
    }

    private static string Format(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);

    private static string Describe(EpochRow row) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {row.Epoch,3}  val_loss {row.ValLoss:0.0000}  f1_w {row.F1Weighted:0.000}{(row.Best ? "  [green]best[/]" : "")}");

    private sealed class SilentProgress : ITrainingProgress
    {
        public void Batch(int epoch, int batch, int batchesPerEpoch, double imagesPerSecond) { }

        public void Epoch(EpochRow row) { }
    }

    private sealed class EpochLines(IAnsiConsole console) : ITrainingProgress
    {
        private readonly HashSet<int> _done = [];
        private readonly Lock _gate = new();

        public void Batch(int epoch, int batch, int batchesPerEpoch, double imagesPerSecond) { }

        public void Epoch(EpochRow row)
        {
            lock (_gate)
            {
                if (_done.Add(row.Epoch))
                    console.MarkupLine(Describe(row) + "  100%");
            }
        }
    }

    private sealed class EpochBars(ProgressContext progress) : ITrainingProgress
    {
        private readonly Dictionary<int, ProgressTask> _bars = [];
        private readonly Lock _gate = new();

        public void Batch(int epoch, int batch, int batchesPerEpoch, double imagesPerSecond)
        {
            lock (_gate)
            {
                var bar = Bar(epoch, batchesPerEpoch);
                bar.MaxValue = Math.Max(1, batchesPerEpoch);
                bar.Value = Math.Min(batch, bar.MaxValue);
                bar.Description = string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,3}  {imagesPerSecond,7:0.0} img/s");
            }
        }

        public void Epoch(EpochRow row)
        {
            lock (_gate)
            {
                var bar = Bar(row.Epoch, 1);
                bar.Value = bar.MaxValue;
                bar.Description = Describe(row);
                bar.StopTask();
            }
        }

        private ProgressTask Bar(int epoch, int batchesPerEpoch)
        {
            if (!_bars.TryGetValue(epoch, out var bar))
                _bars[epoch] = bar = progress.AddTask(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,3}"),
                    maxValue: Math.Max(1, batchesPerEpoch));
            return bar;
        }
    }
}
