using System.CommandLine;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Inference;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb run SRC MODEL RUN_ID</c>: neuston's RUN. Classifies raw IFCB bins (a bin, a folder walked recursively, or a
/// .txt list) or images with a checkpoint file, or with a registered version (NAME, NAME/VERSION, NAME@ALIAS) fetched
/// from the registry when a server is configured. Preprocessing is the model's own, img-norm included for images.
/// </summary>
public static class RunCommand
{
    public sealed record RunReport(string RunId, string ModelId, string OutputDirectory, int Completed, int SkippedExisting,
        IReadOnlyList<RunItemFailure> Failed, int NotInputs, int FilteredOut, long ImagesClassified, double Seconds)
    {
        /// <summary>Bin runs: the summary table's totals (see <see cref="RunTotalsView"/>).</summary>
        public Ifcb.Inference.Outputs.BinSummaryTotals? Totals { get; init; }
    }

    public static Command Build(CliContext context)
    {
        var source = new Argument<string>("SRC")
        {
            Description = "A bin (path without extension), a folder (walked recursively), a .txt list, or images with --type img.",
        };
        var model = new Argument<string>("MODEL")
        {
            Description = "A .ifcbmodel checkpoint file, or with a server a registered NAME, NAME/VERSION or NAME@ALIAS.",
        };
        var runId = new Argument<string>("RUN_ID") { Description = "Names the run; used by --outdir's {RUN_ID}." };
        var type = new Option<string>("--type") { Description = "Input type.", DefaultValueFactory = _ => "bin" }
            .AcceptOnlyFromAmong("bin", "img");
        var outdir = new Option<string?>("--outdir")
        {
            Description = $"Output folder pattern (default {RunRequest.DefaultOutputDirectory}; " +
                $"{{RUN_ID}}, {{MODEL_ID}}, {{RUN_DATE}}).",
        };
        var outfile = new Option<string[]>("--outfile")
        {
            Description = $"Output file pattern, repeatable; the extension (.h5, .json, .csv) picks the format " +
                $"(default {RunRequest.DefaultBinOutputFile} for bins, {RunRequest.DefaultImageOutputFile} for images).",
        };
        var filter = new Option<string[]>("--filter")
        {
            Description = "IN|OUT KEYWORD… : keep (IN) or drop (OUT) inputs whose id contains a keyword; " +
                "a keyword naming a file means its lines.",
            AllowMultipleArgumentsPerToken = true,
        };
        var clobber = new Option<bool>("--clobber") { Description = "Redo inputs whose outputs already exist." };
        var batch = new Option<int>("--batch", "--batch-size")
        {
            Description = "Images per forward pass.", DefaultValueFactory = _ => Defaults.BatchSize,
        };
        var device = new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" };
        var engine = new Option<string>("--engine")
        {
            Description = "What runs the model: torch (TorchSharp), onnx (its exported ONNX graph in ONNX Runtime, CPU only) " +
                "or auto (onnx on the CPU, where it is faster; torch on a GPU).",
            DefaultValueFactory = _ => InferenceEngines.Auto,
        }.AcceptOnlyFromAmong([.. InferenceEngines.Names]);
        var outfileFormat = new Option<string>("--outfile-format")
        {
            Description = "Class-scores layout: v3 (neuston's .h5/.json and the platform's .csv) or v4 (.csv outputs are " +
                $"pyifcb's v4 CSV: pid, then one score column per class; default outfile {RunRequest.DefaultV4BinOutputFile} " +
                $"in {RunRequest.DefaultV4OutputDirectory}). Bins only.",
            DefaultValueFactory = _ => "v3",
        }.AcceptOnlyFromAmong("v3", "v4");
        var thresholds = new Option<string?>("--thresholds")
        {
            Description = "FILE.csv: per-class score thresholds (header class,threshold; empty = none) replacing the model's; " +
                "a winner scoring below its class's threshold is labelled unclassified.",
        };
        var remote = new Option<bool>("--remote")
        {
            Description = "Run on the platform's workers: uploads SRC's bins (or, with --type img, uses SRC as a dataset name), " +
                          "watches the job and downloads its outputs to --outdir (default run-output/RUN_ID).",
        };
        var command = new Command("run", "Classify IFCB bins or images with a trained model (neuston RUN).")
        {
            source, model, runId, type, outdir, outfile, filter, clobber, batch, device, engine, outfileFormat, thresholds, remote,
            PriorityOption.Create(),
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            var engineName = parse.GetValue(engine)!;
            if (parse.GetValue(remote))
            {
                if (parse.GetValue(outfileFormat) != "v3" || parse.GetValue(thresholds) is not null)
                    throw new UsageException("--outfile-format v4 and --thresholds run locally only; the platform's RUN workers " +
                        "write v3 outputs with the model's own thresholds.");
                return await RunOnPlatformAsync(parse, context, json, ct);
            }
            var (checkpoint, provenance) = await CheckpointSources.LoadWithProvenanceAsync(parse, context, parse.GetValue(model)!, ct);
            using var loaded = checkpoint.Model;
            var filterTokens = parse.GetValue(filter) ?? [];
            var request = new RunRequest(parse.GetValue(source)!, parse.GetValue(runId)!)
            {
                InputType = parse.GetValue(type) == "img" ? RunInputType.Image : RunInputType.Bin,
                OutputDirectory = parse.GetValue(outdir),
                OutputFiles = parse.GetValue(outfile) is { Length: > 0 } files ? files : null,
                Filter = filterTokens.Length == 0 ? null : filterTokens.Length < 2
                    ? throw new UsageException("--filter needs a mode (IN or OUT) and at least one keyword.")
                    : RunFilter.Parse(filterTokens[0], filterTokens.Skip(1)),
                Clobber = parse.GetValue(clobber),
                BatchSize = parse.GetValue(batch),
                OutfileFormat = parse.GetValue(outfileFormat) == "v4" ? OutfileFormat.V4 : OutfileFormat.V3,
                ModelProvenance = provenance,
                Thresholds = parse.GetValue(thresholds) is { } thresholdsFile
                    ? ClassThresholds.ReadCsv(thresholdsFile, checkpoint.Hparams.Classes)
                    : null,
            };
            // auto means the GPU when there is one; the onnx engine has only the CPU.
            var (resolvedDevice, resolvedEngine) = InferenceEngines.Resolve(engineName, parse.GetValue(device)!);
            request = request with { Engine = resolvedEngine };
            var runner = new RunEngine(checkpoint, resolvedDevice);
            var summary = json
                ? runner.Run(request, cancellationToken: ct)
                : context.Console.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(progress =>
                    {
                        var bar = progress.AddTask(request.InputType == RunInputType.Bin ? "bins" : "images", maxValue: 1);
                        var result = runner.Run(request, new SynchronousProgress<RunProgress>(p =>
                        {
                            bar.MaxValue = Math.Max(1, p.ItemsTotal);
                            bar.Value = p.ItemsDone;
                            bar.Description = $"{p.ImagesClassified} ROIs, {p.ImagesPerSecond:0.#}/s";
                        }), ct);
                        bar.Value = bar.MaxValue;
                        return result;
                    });
            foreach (var failure in summary.Failed)
                context.Warn($"{failure.Id}: {failure.Reason}");
            foreach (var skipped in summary.NotInputs)
                context.Warn($"not an input: {skipped.Path}: {skipped.Reason}");
            var report = new RunReport(summary.RunId, summary.ModelId, summary.OutputDirectory, summary.Completed.Count,
                summary.SkippedExisting.Count, summary.Failed, summary.NotInputs.Count, summary.FilteredOut.Count,
                summary.ImagesClassified, summary.Elapsed.TotalSeconds)
            {
                Totals = summary.BinSummary?.Totals(),
            };
            if (json)
                context.WriteJson(report);
            else
            {
                context.Console.MarkupLine(Markup.Escape(
                    $"{report.Completed} classified ({report.ImagesClassified} images, {report.Seconds:0.#} s), " +
                    $"{report.SkippedExisting} already done, {report.Failed.Count} failed, {report.FilteredOut} filtered out " +
                    $"→ {report.OutputDirectory}"));
                RunTotalsView.Render(context, summary);
            }
            return summary.Failed.Count > 0 && summary.Completed.Count == 0 ? ExitCodes.Failed : ExitCodes.Success;
        });
        return command;
    }

    private static async Task<int> RunOnPlatformAsync(ParseResult parse, CliContext context, bool json, CancellationToken ct)
    {
        using var platform = PlatformConnection.From(parse, context);
        if (!platform.Has(PlatformService.Training))
            throw new UsageException("--remote needs a platform: pass --server URL (or set IFCB_SERVER).");
        var src = parse.GetValue<string>("SRC")!;
        var runId = parse.GetValue<string>("RUN_ID")!;
        var images = parse.GetValue<string>("--type") == "img";
        var filterTokens = parse.GetValue<string[]>("--filter") ?? [];
        var request = new Ifcb.Protos.StartRunRequest
        {
            Model = parse.GetValue<string>("MODEL")!, RunId = runId, Batch = parse.GetValue<int>("--batch"),
            Device = parse.GetValue<string>("--device")!, Engine = parse.GetValue<string>("--engine")!,
            Outfile = { parse.GetValue<string[]>("--outfile") ?? [] },
            FilterMode = filterTokens.Length > 0 ? filterTokens[0] : "", FilterKeywords = { filterTokens.Skip(1) },
            Priority = parse.GetValue<string>("--priority")!,
        };
        // Refuse what the service would refuse before uploading anything (a bin set uploaded for a refused run would wait
        // a day for garbage collection).
        Ifcb.Inference.OutputPattern.ValidateAll(request.Outfile,
            images ? Ifcb.Inference.RunInputType.Image : Ifcb.Inference.RunInputType.Bin);
        Ifcb.Platform.ResourceName.ValidateModelName(runId, "RUN_ID");
        if (request.Batch != 0)
            Ifcb.Platform.Limits.Check(request.Batch, 1, Ifcb.Platform.Limits.MaxBatch, "--batch", nameof(Ifcb.Platform.Limits.MaxBatch));
        if (images)
        {
            request.Dataset = src;
        }
        else
        {
            // Every upload is a bin set of its own (the server picks its id), so reusing a RUN_ID never mixes bins.
            var files = BinSetUpload.FindBinFiles(src);
            var uploaded = await BinSetUpload.UploadAsync(platform.Datasets, DatasetNames.FromFolder(runId), files, platform.Auth, ct);
            context.Warn($"uploaded {uploaded.Files} bin files ({uploaded.Bytes} bytes) as bin set '{uploaded.Id}'");
            request.BinSet = uploaded.Id;
        }
        var outputs = Path.GetFullPath(parse.GetValue<string?>("--outdir") ?? Path.Combine("run-output", runId));
        var (run, downloaded) = await PlatformRuns.RunAndDownloadAsync(platform, context, request, outputs, json, ct);
        foreach (var failure in run.Failed)
            context.Warn($"{failure.Id}: {failure.Reason}");
        if (json)
            context.WriteJson(run);
        else
            context.Console.MarkupLine(Markup.Escape($"Run {run.JobId} {run.State}: {run.Completed.Count} classified, " +
                $"{run.Failed.Count} failed; {downloaded} files → {outputs}"));
        return run.State == Ifcb.Protos.JobState.Succeeded ? ExitCodes.Success : ExitCodes.Failed;
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool and race the bar).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
