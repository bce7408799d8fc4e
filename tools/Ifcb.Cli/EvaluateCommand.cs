using System.CommandLine;
using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Inference;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb evaluate MODEL SRC</c>: classifies a labelled dataset (a folder of class subfolders) with a checkpoint file
/// or a registered version and reports the confusion matrix, per-class precision/recall/F1, weighted and macro F1 and
/// accuracy; writes evaluation.json, evaluation_per_class.csv and confusion_matrix.png to --outdir. With
/// <c>--remote</c>, SRC names an uploaded dataset and a Training worker evaluates (a RUN with evaluate); the Registry
/// then keeps the figures on the version, keyed by the dataset's fingerprint (Registry.ListEvaluations).
/// </summary>
public static class EvaluateCommand
{
    /// <summary>What the verbs that evaluate share: the model, SRC and how to classify.</summary>
    internal sealed record EvaluationOptionSet(Option<int> Batch, Option<string> Engine, Option<string> Device)
    {
        public Option<bool> Remote { get; } = new("--remote")
        {
            Description = "Evaluate on the platform's workers: SRC (or --dataset) names an uploaded dataset, and the registry keeps " +
                "the figures on the version.",
        };

        public Option<string> Priority { get; } = PriorityOption.Create();

        public static EvaluationOptionSet Create() => new(
            new Option<int>("--batch", "--batch-size")
            {
                Description = "Images per forward pass.", DefaultValueFactory = _ => Defaults.BatchSize,
            },
            new Option<string>("--engine")
            {
                Description = "What runs the model: auto (onnx on the CPU, torch on a GPU), torch or onnx.",
                DefaultValueFactory = _ => InferenceEngines.Auto,
            }.AcceptOnlyFromAmong([.. InferenceEngines.Names]),
            new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" });

        public void AddTo(Command command)
        {
            command.Options.Add(Batch);
            command.Options.Add(Engine);
            command.Options.Add(Device);
            command.Options.Add(Remote);
            command.Options.Add(Priority);
        }
    }

    public static Command Build(CliContext context)
    {
        var model = new Argument<string>("MODEL")
        {
            Description = "A .ifcbmodel checkpoint file, or with a server a registered NAME, NAME/VERSION or NAME@ALIAS.",
        };
        var source = new Argument<string>("SRC")
        {
            Description = "A labelled dataset: a folder with one subfolder of images per class " +
                "(with --remote: an uploaded dataset's name).",
        };
        var outdir = new Option<string?>("--outdir") { Description = "Where to write the report (default evaluation-output/MODEL_ID)." };
        var options = EvaluationOptionSet.Create();
        var command = new Command("evaluate",
            "Score a trained model on a labelled dataset: confusion matrix, precision/recall/F1, accuracy.")
        {
            model, source, outdir,
        };
        options.AddTo(command);
        command.SetHandler(context, async (parse, ct) =>
        {
            EvaluationReport report;
            IReadOnlyList<string> files;
            if (parse.GetValue(options.Remote))
            {
                var folder = Path.GetFullPath(parse.GetValue(outdir) ?? Path.Combine("evaluation-output", parse.GetValue(source)!));
                report = await EvaluateOnPlatformAsync(parse, context, options, parse.GetValue(model)!, parse.GetValue(source)!, folder,
                    reuse: false, ct);
                files = [folder];
            }
            else
            {
                report = await EvaluateAsync(parse, context, options, parse.GetValue(model)!, parse.GetValue(source)!, ct);
                files = ModelEvaluation.WriteOutputs(report, parse.GetValue(outdir) ?? Path.Combine("evaluation-output", report.ModelId));
            }
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(report);
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("class", "precision", "recall", "f1", "support", "predicted");
            foreach (var row in report.PerClass)
            {
                table.AddRow(Markup.Escape(row.Name), Number(row.Precision), Number(row.Recall), Number(row.F1),
                    row.Support.ToString(CultureInfo.InvariantCulture), row.Predicted.ToString(CultureInfo.InvariantCulture));
            }
            context.Console.Write(table);
            context.Console.MarkupLine(Markup.Escape(
                $"{report.Images} images: accuracy {Number(report.Accuracy)}, f1_weighted {Number(report.F1Weighted)}, " +
                $"f1_macro {Number(report.F1Macro)}; written to {string.Join(", ", files)}"));
            if (report.Thresholded is { } t)
            {
                context.Console.MarkupLine(Markup.Escape(
                    $"with the {t.Source} thresholds: {t.Unclassified} unclassified, accuracy {Number(t.Accuracy)}, " +
                    $"f1_weighted {Number(t.F1Weighted)}, f1_macro {Number(t.F1Macro)}"));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Loads the model (file or registered version) and evaluates it on SRC, with a progress bar unless --json.</summary>
    internal static async Task<EvaluationReport> EvaluateAsync(ParseResult parse, CliContext context, EvaluationOptionSet options,
        string model, string source, CancellationToken ct)
    {
        var batch = parse.GetValue(options.Batch);
        Ifcb.Platform.Limits.Check(batch, 1, Ifcb.Platform.Limits.MaxBatch, "--batch", nameof(Ifcb.Platform.Limits.MaxBatch));
        if (!Directory.Exists(source))
            throw new DirectoryNotFoundException($"Dataset folder {source} does not exist; it should contain one subfolder per class.");
        var checkpoint = await CheckpointSources.LoadAsync(parse, context, model, ct);
        using var loaded = checkpoint.Model;
        var engineName = parse.GetValue(options.Engine)!;
        var (device, engine) = InferenceEngines.Resolve(engineName, parse.GetValue(options.Device)!);
        var evaluation = new EvaluationOptions
        {
            BatchSize = batch, Device = device, Engine = engine,
        };
        if (parse.GetValue(GlobalOptions.Json))
            return ModelEvaluation.Evaluate(checkpoint, source, evaluation, cancellationToken: ct);
        return context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(progress =>
            {
                var bar = progress.AddTask($"{checkpoint.Hparams.ModelId}: images", maxValue: 1);
                var report = ModelEvaluation.Evaluate(checkpoint, source, evaluation, new InlineProgress(p =>
                {
                    bar.MaxValue = Math.Max(1, p.Total);
                    bar.Value = p.Done;
                }), ct);
                bar.Value = bar.MaxValue;
                return report;
            });
    }

    /// <summary>
    /// Evaluates a registered version on an uploaded dataset on the platform and downloads the outputs into
    /// <paramref name="outputs"/>. With <paramref name="reuse"/>, an evaluation the registry already keeps for the dataset's
    /// current content is used instead of running again.
    /// </summary>
    internal static async Task<EvaluationReport> EvaluateOnPlatformAsync(ParseResult parse, CliContext context, EvaluationOptionSet options,
        string model, string dataset, string outputs, bool reuse, CancellationToken ct)
    {
        using var platform = PlatformConnection.From(parse, context);
        if (!platform.Has(PlatformService.Training) || !platform.Has(PlatformService.Registry))
            throw new UsageException("--remote needs a platform: pass --server URL (or set IFCB_SERVER).");
        var reference = ModelRef.Parse(model);
        var version = await platform.Registry.GetVersionAsync(reference.ToVersionRef(), cancellationToken: ct);
        if (reuse)
        {
            var info = await platform.Datasets.DescribeAsync(new DatasetRef { Name = dataset }, cancellationToken: ct);
            var kept = await platform.Registry.ListEvaluationsAsync(new VersionRef { Name = version.Name, Version = version.Version },
                cancellationToken: ct);
            if (kept.Evaluations.FirstOrDefault(e => e.DatasetFingerprint == info.Fingerprint) is { } stored)
            {
                context.Warn($"{version.Name}/{version.Version}: the registry's evaluation on {dataset} of {stored.EvaluatedAt} " +
                    $"(job {stored.JobId})");
                return ModelEvaluation.ReadReport(stored.ReportJson);
            }
        }
        var request = new StartRunRequest
        {
            // The version resolved above, so a moving alias cannot change what is evaluated.
            Model = $"{version.Name}/{version.Version}", RunId = "evaluate", Dataset = dataset, Evaluate = true,
            Batch = parse.GetValue(options.Batch), Engine = parse.GetValue(options.Engine)!, Device = parse.GetValue(options.Device)!,
            Priority = parse.GetValue(options.Priority)!,
        };
        var (run, _) = await PlatformRuns.RunAndDownloadAsync(platform, context, request, outputs, parse.GetValue(GlobalOptions.Json), ct);
        if (run.State != JobState.Succeeded)
        {
            throw new OperationFailedException(
                $"Evaluation {run.JobId} of {version.Name}/{version.Version} ended {run.State}: {run.Error}");
        }
        return ModelEvaluation.ReadReport(await File.ReadAllTextAsync(Path.Combine(outputs, ModelEvaluation.ReportFileName), ct));
    }

    internal static string Number(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool and race the bar).</summary>
    private sealed class InlineProgress(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}
