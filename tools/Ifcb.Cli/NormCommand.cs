using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb norm SRC</c>: neuston's CALC_IMG_NORM. Locally it runs the NormStats engine on a class folder; with a server
/// it asks the NormStats service (uploading SRC first when it is a folder). Prints MEAN/STD and the <c>--img-norm</c> string.
/// </summary>
public static class NormCommand
{
    /// <summary>What norm prints with --json, the same for both modes.</summary>
    public sealed record NormReport(
        IReadOnlyList<double> Mean, IReadOnlyList<double> Std, string ImgNorm, long Images, long PixelsPerChannel, string Estimator,
        int Resize, IReadOnlyList<CorruptImageReport> CorruptImages, string? Dataset, bool Cached);

    public sealed record CorruptImageReport(string Path, string Reason);

    public static Command Build(CliContext context)
    {
        var source = new Argument<string>("SRC")
        {
            Description = "Class-folder dataset or dataset-config CSV; with --server also an existing dataset name.",
        };
        var resize = new Option<int>("--resize")
        {
            Description = "Square side images are resized to before the statistics.", DefaultValueFactory = _ => 299,
        };
        var classConfig = NeustonOptions.ClassConfig();
        var classMin = NeustonOptions.ClassMin();
        var classMax = NeustonOptions.ClassMax();
        var seed = new Option<long>("--seed") { Description = "Seed for --class-max sampling (0 = unseeded, as neuston)." };
        var estimator = new Option<string>("--estimator")
        {
            Description = "exact: population mean/std over all pixels; " +
                $"neuston: neuston_net's average of per-batch ({Defaults.BatchSize}) statistics.",
            DefaultValueFactory = _ => "exact",
        }.AcceptOnlyFromAmong("exact", "neuston");
        var dataset = new Option<string?>("--dataset")
        {
            Description = "With --server: dataset name for the upload of SRC (default: folder name).",
        };
        var command = new Command("norm", "Compute image normalisation statistics (neuston CALC_IMG_NORM).")
        {
            source, resize, classConfig, classMin, classMax, seed, estimator, dataset,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            using var platform = PlatformConnection.From(parse, context);
            var report = platform.Has(PlatformService.NormStats)
                ? await RunOnPlatformAsync(parse, context, platform, ct)
                : RunLocally(parse, context, ct);
            foreach (var corrupt in report.CorruptImages)
                context.Warn($"left out {corrupt.Path}: {corrupt.Reason}");
            if (json)
                context.WriteJson(report);
            else
                Render(context, report);
            return ExitCodes.Success;

            NormReport RunLocally(ParseResult p, CliContext c, CancellationToken token)
            {
                var src = p.GetValue(source)!;
                var spec = DatasetSpec.FromSource(src, new DatasetOptions(p.GetValue(classMin), p.GetValue(classMax),
                    NeustonOptions.LoadClassConfig(p, classConfig), unchecked((int)p.GetValue(seed))));
                foreach (var note in spec.Report.DatasetConfigNotes ?? [])
                    c.Warn(note);
                if (spec.Images.Count == 0)
                    throw new OperationFailedException(
                        $"No images left in {src} after the class filters (class-min {p.GetValue(classMin)}).");
                var size = p.GetValue(resize);
                var calculator = new NormStatsCalculator(size);
                var neuston = p.GetValue(estimator) == "neuston";
                var result = WithProgressBar(c, json, spec.Images.Count, progress => neuston
                    ? calculator.ComputeNeuston(spec.Images, progress: progress, cancellationToken: token)
                    : calculator.ComputeExact(spec.Images, progress, token));
                return new NormReport(result.Mean, result.Std, result.ImgNorm.ToString(), result.ImageCount, result.PixelsPerChannel,
                    neuston ? "neuston" : "exact", size, [.. result.Failures.Select(f => new CorruptImageReport(f.Path, f.Reason))],
                    null, false);
            }

            async Task<NormReport> RunOnPlatformAsync(ParseResult p, CliContext c, PlatformConnection connection, CancellationToken token)
            {
                var info = await DatasetSource.ResolveAsync(connection, c, p.GetValue(source)!, p.GetValue(dataset), json, token);
                var (csv, column) = NeustonOptions.ClassConfigText(p, classConfig);
                var options = new NormOptions
                {
                    Resize = p.GetValue(resize), ClassConfigCsv = csv, ClassConfigColumn = column, ClassMin = p.GetValue(classMin),
                    ClassMax = p.GetValue(classMax) ?? 0, Seed = p.GetValue(seed),
                    Estimator = p.GetValue(estimator) == "neuston" ? NormEstimator.Neuston : NormEstimator.Exact,
                };
                var job = await connection.NormStats.ComputeAsync(new ComputeNormRequest { Dataset = info.Name, Options = options },
                    connection.Auth, cancellationToken: token);
                job = await WatchAsync(c, connection, job, json, token);
                if (job.State != NormJobState.Succeeded)
                    throw new OperationFailedException($"Norm job {job.JobId} ended {job.State}: {job.Error}");
                var r = job.Result;
                return new NormReport([.. r.Mean], [.. r.Std], r.ImgNorm, r.Images, r.PixelsPerChannel,
                    r.Estimator == NormEstimator.Neuston ? "neuston" : "exact", r.Resize,
                    [.. r.CorruptImages.Select(i => new CorruptImageReport(i.Path, i.Reason))], info.Name, job.Cached);
            }
        });
        return command;
    }

    private static T WithProgressBar<T>(CliContext context, bool quiet, int total, Func<IProgress<NormStatsProgress>?, T> compute)
    {
        if (quiet)
            return compute(null);
        return context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(progress =>
            {
                var bar = progress.AddTask("images", maxValue: total);
                var result = compute(new Progress<NormStatsProgress>(p => bar.Value = Math.Max(bar.Value, p.Done)));
                bar.Value = total;
                return result;
            });
    }

    private static async Task<NormJob> WatchAsync(CliContext context, PlatformConnection platform, NormJob job, bool quiet,
        CancellationToken cancellationToken)
    {
        if (IsFinished(job))
            return job;
        // A watch that breaks is resumed (see ResumableWatch).
        var normStats = platform.NormStats;
        var request = new JobRef { JobId = job.JobId };
        Task<NormJob> Follow(Action<NormJob> update) =>
            ResumableWatch.FollowAsync("NormStats.Watch", token => normStats.GetAsync(request, cancellationToken: token).ResponseAsync,
                token => normStats.Watch(request, cancellationToken: token), IsFinished, update, platform.Retry, cancellationToken);
        if (quiet)
            return await Follow(_ => { });
        return await context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask($"norm {job.JobId}", maxValue: Math.Max(1, job.ImagesTotal));
                var done = await Follow(state =>
                {
                    bar.MaxValue = Math.Max(1, state.ImagesTotal);
                    bar.Value = state.ImagesDone;
                });
                bar.Value = bar.MaxValue;
                return done;
            });
    }

    private static bool IsFinished(NormJob job) => job.State is NormJobState.Succeeded or NormJobState.Failed;

    private static void Render(CliContext context, NormReport report)
    {
        static string Vector(IEnumerable<double> values) =>
            "[" + string.Join(' ', values.Select(v => v.ToString("0.#######", CultureInfo.InvariantCulture))) + "]";
        context.Output.WriteLine($"MEAN={Vector(report.Mean)} STD={Vector(report.Std)}");
        context.Output.WriteLine($"--img-norm {report.ImgNorm}");
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"({report.Images} images at {report.Resize}x{report.Resize}, {report.Estimator} estimator{(report.Cached ? ", cached" : "")}" +
            $"{(report.CorruptImages.Count > 0 ? $", {report.CorruptImages.Count} unreadable left out" : "")})"));
    }
}
