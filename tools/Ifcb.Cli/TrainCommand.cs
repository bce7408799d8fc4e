using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Models;
using Ifcb.Models.Weights;
using Ifcb.NormStats.Engine;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb train SRC MODEL TRAIN_ID</c>: neuston TRAIN with neuston's flags. Without a server it runs the training
/// engine in-process and writes neuston-style outputs to --outdir; with one it uploads SRC (unless it names a dataset),
/// starts a job and follows it. Both show a progress bar per epoch and end with the metrics table.
/// </summary>
public static class TrainCommand
{
    public static Command Build(CliContext context)
    {
        var source = new Argument<string>("SRC")
        {
            Description = "Class-folder dataset or dataset-config CSV (see dataset make-config); " +
                "with --server also an existing dataset name.",
        };
        var model = new Argument<string>("MODEL") { Description = $"Architecture: {string.Join(", ", ModelZoo.Architectures)}." };
        var trainId = new Argument<string>("TRAIN_ID") { Description = "Names the run; the default model id and output folder." };
        var untrain = new Option<bool>("--untrain") { Description = "Start from random weights instead of ImageNet weights." };
        var imgNorm = ImgNormChoice.CreateOption();
        var seed = new Option<long>("--seed") { Description = "Random seed; 0 picks one and records it." };
        var split = new Option<string>("--split")
        {
            Description = "Per-class training:validation percentages.", DefaultValueFactory = _ => "80:20", HelpName = "T:V",
        };
        var classConfig = NeustonOptions.ClassConfig();
        var classMin = NeustonOptions.ClassMin();
        var classMax = NeustonOptions.ClassMax();
        var emax = new Option<int>("--emax") { Description = "Maximum epochs.", DefaultValueFactory = _ => 60 };
        var emin = new Option<int>("--emin") { Description = "Minimum epochs.", DefaultValueFactory = _ => 10 };
        var estop = new Option<int>("--estop")
        {
            Description = "Early-stopping patience in epochs (val_loss); 0 disables it.", DefaultValueFactory = _ => 10,
        };
        var flip = new Option<string?>("--flip")
        {
            Description = "Random flips: x (vertical), y (horizontal), xy; +V also flips validation images.",
        }.AcceptOnlyFromAmong("x", "y", "xy", "x+V", "y+V", "xy+V");
        var batch = new Option<int>("--batch", "--batch-size")
        {
            Description = "Batch size.", DefaultValueFactory = _ => Defaults.BatchSize,
        };
        var swap = new Option<bool>("--swap") { Description = "Swap the training and validation sets." };
        var resize = new Option<int?>("--resize") { Description = "Input side in pixels (default 299 for inception, 224 otherwise)." };
        var outdir = new Option<string>("--outdir")
        {
            Description = "Output folder ({TRAIN_ID} and {TRAIN_DATE} are filled in). " +
                "With --server, the job's artifacts are downloaded there when given.",
            DefaultValueFactory = _ => "training-output/{TRAIN_ID}",
        };
        var modelId = new Option<string?>("--model-id") { Description = "Model id (checkpoint name); default TRAIN_ID." };
        var register = new Option<string?>("--register")
        {
            Description = "Register the best checkpoint in the registry under this model name.",
        };
        var weights = WeightsDirectory.CreateOption();
        var dataset = new Option<string?>("--dataset")
        {
            Description = "With --server: dataset name for the upload of SRC (default: folder name).",
        };
        var device = new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" }
            .AcceptOnlyFromAmong([.. DeviceSelection.Choices]);
        var lr = new Option<double?>("--lr", "--learning-rate") { Description = "Initial learning rate (default 1e-3, neuston's)." };
        var optimizer = new Option<string>("--optimizer")
        {
            Description = "adam (neuston's), adamw (decoupled weight decay) or sgd (momentum 0.9).", DefaultValueFactory = _ => "adam",
        }.AcceptOnlyFromAmong([.. Optimization.OptimizerNames]);
        var weightDecay = new Option<double?>("--weight-decay")
        {
            Description = "Weight decay, 0 to 1 (default 0.01 for adamw, 0 for adam and sgd).",
        };
        var lrSchedule = new Option<string>("--lr-schedule")
        {
            Description = "Learning-rate schedule, stepped per epoch: none, plateau (x0.1 after 5 epochs without a val_loss " +
                "improvement) or cosine (annealed to 0 over --emax epochs).",
            DefaultValueFactory = _ => "none",
        }.AcceptOnlyFromAmong([.. Optimization.ScheduleNames]);
        var classWeights = new Option<string>("--class-weights")
        {
            Description = "Weights of the training loss per class (validation loss stays unweighted): none, balanced " +
                "(n_samples / (n_classes x count), scikit-learn's) or a class,weight CSV file.",
            DefaultValueFactory = _ => "none", HelpName = "none|balanced|FILE",
        };
        var sampler = new Option<string>("--sampler")
        {
            Description = "none, or balanced: draw each epoch's training images with probability 1/count of their class " +
                "(an alternative to --class-weights).",
            DefaultValueFactory = _ => "none",
        }.AcceptOnlyFromAmong("none", "balanced");
        var from = new Option<string?>("--from")
        {
            Description = "Fine-tune: start from a trained model (a .ifcbmodel file, or with a server NAME, NAME/VERSION, " +
                "NAME@ALIAS) instead of ImageNet or random weights; classes are mapped by name.",
        };
        var freeze = new Option<string>("--freeze")
        {
            Description = "none, or features: train only the head (every layer but the classifier is frozen).",
            DefaultValueFactory = _ => "none",
        }.AcceptOnlyFromAmong("none", "features");
        var freezeEpochs = new Option<int?>("--freeze-epochs")
        {
            Description = "With --freeze features: unfreeze the whole model from this epoch on (1..emax).",
        };
        var noWait = new Option<bool>("--no-wait") { Description = "With --server: print the job and return without following it." };
        var priority = PriorityOption.Create();
        var command = new Command("train", "Train a classifier (neuston TRAIN).")
        {
            source, model, trainId, untrain, imgNorm, seed, split, classConfig, classMin, classMax, emax, emin, estop, flip, batch, swap,
            resize, outdir, modelId, register, weights, dataset, device, lr, optimizer, weightDecay, lrSchedule, classWeights,
            sampler, from, freeze, freezeEpochs, noWait, priority,
        };

        command.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            var norm = ImgNormChoice.Parse(parse.GetValue(imgNorm));
            using var platform = PlatformConnection.From(parse, context);
            var registerAs = parse.GetValue(register);
            var outdirGiven = parse.GetResult(outdir) is { Implicit: false };
            var outputFolder = parse.GetValue(outdir)!
                .Replace("{TRAIN_ID}", parse.GetValue(trainId), StringComparison.Ordinal)
                .Replace("{TRAIN_DATE}", DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), StringComparison.Ordinal);

            var report = platform.Has(PlatformService.Training) ? await OnPlatformAsync() : await LocallyAsync();
            if (json)
                context.WriteJson(report);
            else
                report.Render(context);
            var accepted = report.State == "succeeded" || (parse.GetValue(noWait) && report.State is "queued" or "running");
            return accepted ? ExitCodes.Success : ExitCodes.Failed;

            async Task<TrainReport> LocallyAsync()
            {
                if (registerAs is not null && !platform.Has(PlatformService.Registry))
                    throw new UsageException("--register needs the registry: pass --server URL or --registry-url URL.");
                var (weightsMode, weightsCsv) = ReadClassWeights(parse.GetValue(classWeights));
                var options = new TrainingOptions
                {
                    Architecture = parse.GetValue(model)!, TrainId = parse.GetValue(trainId)!, Pretrained = !parse.GetValue(untrain),
                    ImgNorm = norm.Value, Seed = TrainingPreparation.ResolveSeed(parse.GetValue(seed)),
                    Split = SplitRatio.Parse(parse.GetValue(split)!),
                    ClassConfig = NeustonOptions.LoadClassConfig(parse, classConfig),
                    ClassMin = parse.GetValue(classMin), ClassMax = parse.GetValue(classMax),
                    Emax = parse.GetValue(emax), Emin = parse.GetValue(emin), Estop = parse.GetValue(estop),
                    Flip = FlipOption.Parse(parse.GetValue(flip)),
                    BatchSize = parse.GetValue(batch), Swap = parse.GetValue(swap), Resize = parse.GetValue(resize),
                    ModelId = parse.GetValue(modelId), Device = parse.GetValue(device)!,
                    LearningRate = parse.GetValue(lr) ?? Optimization.DefaultLearningRate,
                    Optimizer = Optimization.ParseOptimizer(parse.GetValue(optimizer)), WeightDecay = parse.GetValue(weightDecay),
                    LrSchedule = Optimization.ParseSchedule(parse.GetValue(lrSchedule)),
                    ClassWeights = ClassWeights.Parse(weightsMode, weightsCsv),
                    Sampler = ClassWeights.ParseSampler(parse.GetValue(sampler)),
                    FreezeFeatures = parse.GetValue(freeze) == "features", FreezeEpochs = parse.GetValue(freezeEpochs),
                };
                using var parent = await WarmStartFileAsync(parse, context, platform, parse.GetValue(from), ct);
                if (parent is not null)
                {
                    options = options with { From = parent.Source };
                    context.Warn($"starting from {parent.Source.ParentVersion ?? parent.Source.Reference}");
                }
                options.Validate();
                var src = parse.GetValue(source)!;
                if (norm.Auto)
                    options = options with { ImgNorm = ComputeAutoNorm(context, options, src) };
                var store = options.Pretrained && options.From is null
                    ? new FileSystemWeightsStore(WeightsDirectory.Resolve(parse, weights, context))
                    : null;
                var inputs = TrainingPreparation.FromSource(options, src, store);
                foreach (var note in inputs.Training.Report.DatasetConfigNotes ?? [])
                    context.Warn(note);
                var sink = new DirectoryArtifactSink(outputFolder);
                if (!json)
                    context.Console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                        $"Training [bold]{Markup.Escape(options.Architecture)}[/] on {inputs.Training.Images.Count} training / " +
                        $"{inputs.Validation.Images.Count} validation images, {inputs.Classes.Count} classes, seed {inputs.Seed} " +
                        $"→ {Markup.Escape(sink.Directory)}"));
                var result = await TrainingProgressView.RunAsync(context, json, progress =>
                    new TrainingRun(inputs, sink, new ProgressObserver(progress)).RunAsync(ct));
                var checkpoint = Path.Combine(sink.Directory, result.BestCheckpointName);
                // A finished run needs no resume state (the service drops it too); an interrupted one keeps it, so
                // rerunning the same command continues after the last completed epoch.
                var resume = Path.Combine(sink.Directory, Path.GetDirectoryName(TrainingArtifacts.ResumeState)!);
                if (!result.Cancelled && Directory.Exists(resume))
                    Directory.Delete(resume, recursive: true);
                string? registered = null;
                if (registerAs is not null && !result.Cancelled && File.Exists(checkpoint))
                {
                    var best = result.Epochs.FirstOrDefault(e => e.Epoch == result.BestEpoch);
                    var metrics = best is null ? new Dictionary<string, double>() : new Dictionary<string, double>
                    {
                        ["val_loss"] = best.ValLoss, ["f1_macro"] = best.F1Macro, ["f1_weighted"] = best.F1Weighted,
                        ["accuracy"] = best.Accuracy,
                    };
                    var details = new VersionDetails { Metrics = metrics, Description = $"ifcb train {options.TrainId} (local)" };
                    var version = await CheckpointRegistration.RegisterAsync(platform.Registry, checkpoint, registerAs, details,
                        platform.Auth, platform.Retry, ct);
                    registered = $"{version.Name}/{version.Version}";
                }
                return new TrainReport("local", null, result.Cancelled ? "cancelled" : "succeeded", options.TrainId,
                    options.EffectiveModelId, inputs.Seed, inputs.Classes, result.BestEpoch, [.. result.Epochs.Select(EpochRow.From)],
                    sink.Directory, checkpoint, registered, result.Cancelled ? "interrupted" : null, NativeAllocator.Settings);
            }

            async Task<TrainReport> OnPlatformAsync()
            {
                var info = await DatasetSource.ResolveAsync(platform, context, parse.GetValue(source)!, parse.GetValue(dataset), json, ct);
                var (csv, column) = NeustonOptions.ClassConfigText(parse, classConfig);
                var request = new StartTrainingRequest
                {
                    Dataset = info.Name, Model = parse.GetValue(model), TrainId = parse.GetValue(trainId),
                    Untrain = parse.GetValue(untrain),
                    ImgNorm = norm.ToRequestField(), Seed = parse.GetValue(seed), Split = parse.GetValue(split), ClassConfigCsv = csv,
                    ClassConfigColumn = column, ClassMin = parse.GetValue(classMin), ClassMax = parse.GetValue(classMax) ?? 0,
                    Emax = parse.GetValue(emax), Emin = parse.GetValue(emin), Estop = parse.GetValue(estop),
                    EstopDisabled = parse.GetValue(estop) == 0,
                    Flip = parse.GetValue(flip) ?? "", Batch = parse.GetValue(batch), Swap = parse.GetValue(swap),
                    Resize = parse.GetValue(resize) ?? 0,
                    ModelId = parse.GetValue(modelId) ?? "", RegisterAs = registerAs ?? "", Device = parse.GetValue(device),
                    Optimizer = parse.GetValue(optimizer), LrSchedule = parse.GetValue(lrSchedule),
                    Sampler = parse.GetValue(sampler),
                    From = parse.GetValue(from) ?? "", Freeze = parse.GetValue(freeze), Priority = parse.GetValue(priority),
                };
                if (parse.GetValue(freezeEpochs) is { } unfreeze)
                    request.FreezeEpochs = unfreeze;
                if (File.Exists(request.From))
                    throw new UsageException("--from with --server names a registered version (NAME@ALIAS); register the file first.");
                (request.ClassWeights, request.ClassWeightsCsv) = ReadClassWeights(parse.GetValue(classWeights));
                if (request.ClassWeightsCsv.Length > 0)
                    ClassWeights.FromCsv(request.ClassWeightsCsv); // a malformed file is reported before anything is uploaded
                if (parse.GetValue(lr) is { } rate)
                    request.Lr = rate;
                if (parse.GetValue(weightDecay) is { } decay)
                    request.WeightDecay = decay;
                var job = await platform.Training.StartTrainingAsync(request, platform.Auth, cancellationToken: ct);
                if (!json)
                    context.Console.MarkupLine($"Job [bold]{job.JobId}[/] queued (dataset {Markup.Escape(info.Name)}).");
                if (parse.GetValue(noWait))
                    return TrainReport.FromJob(job, null);
                job = await TrainingProgressView.FollowJobAsync(context, json, platform, job.JobId, ct);
                string? downloaded = null;
                if (outdirGiven && job.State == JobState.Succeeded)
                {
                    await JobArtifacts.DownloadAsync(platform.Training, job.JobId, outputFolder, only: null, platform.Retry, ct);
                    downloaded = Path.GetFullPath(outputFolder);
                }
                return TrainReport.FromJob(job, downloaded);
            }
        });
        return command;
    }

    /// <summary>
    /// <c>--class-weights none|balanced|FILE</c> as the job's (mode, CSV text): a FILE is read here, in both modes.
    /// </summary>
    internal static (string Mode, string Csv) ReadClassWeights(string? value)
    {
        var mode = value?.Trim() ?? "";
        if (mode.Length == 0 || mode.Equals("none", StringComparison.OrdinalIgnoreCase)
            || mode.Equals("balanced", StringComparison.OrdinalIgnoreCase))
            return (mode.ToLowerInvariant(), "");
        if (!File.Exists(mode))
            throw new UsageException($"--class-weights '{mode}' is neither none, balanced nor an existing class,weight CSV file.");
        return ("file", File.ReadAllText(mode));
    }

    /// <summary>
    /// <c>--img-norm auto</c> in local mode: exact statistics of the training dataset at the training input size, as
    /// the Training service asks NormStats for them.
    /// </summary>
    private static Ifcb.Contracts.ImgNorm ComputeAutoNorm(CliContext context, TrainingOptions options, string source)
    {
        var spec = DatasetSpec.FromSource(source, options.DatasetOptions(unchecked((int)options.Seed)));
        var result = new NormStatsCalculator(options.EffectiveResize).ComputeExact(spec.Images);
        context.Info($"img-norm auto: {result.ImgNorm.ToString()} ({result.ImageCount} images at " +
            $"{options.EffectiveResize}x{options.EffectiveResize})");
        return result.ImgNorm;
    }

    /// <summary>Forwards the engine's callbacks to the progress bars.</summary>
    private sealed class ProgressObserver(ITrainingProgress progress) : ITrainingObserver
    {
        public ValueTask OnStartAsync(int firstEpoch, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask OnBatchAsync(BatchProgress batch, CancellationToken cancellationToken)
        {
            progress.Batch(batch.Epoch, batch.Batch, batch.BatchesPerEpoch, batch.ImagesPerSecond);
            return ValueTask.CompletedTask;
        }

        public ValueTask OnEpochAsync(EpochRecord epoch, CancellationToken cancellationToken)
        {
            progress.Epoch(EpochRow.From(epoch));
            return ValueTask.CompletedTask;
        }
    }
    /// <summary>A warm start's checkpoint file: the file given, or a registered version downloaded to a temporary file.</summary>
    private sealed class WarmStartFile(WarmStartSource source, string? temporary) : IDisposable
    {
        public WarmStartSource Source { get; } = source;

        public void Dispose()
        {
            if (temporary is not null)
                File.Delete(temporary);
        }
    }

    private static async Task<WarmStartFile?> WarmStartFileAsync(ParseResult parse, CliContext context, PlatformConnection platform,
        string? from, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(from))
            return null;
        if (File.Exists(from))
            return new WarmStartFile(WarmStartSource.Read(from, from), null);
        if (!platform.Has(PlatformService.Registry))
        {
            throw new FileNotFoundException(
                $"No checkpoint file '{from}'; to start from a registered version (NAME@ALIAS) pass --server.");
        }
        var temporary = Path.Combine(Path.GetTempPath(), $"ifcb-parent-{Guid.NewGuid():N}.ifcbmodel");
        try
        {
            var downloaded = await ModelDownloads.DownloadAsync(platform.Registry, ModelRef.Parse(from), _ => temporary,
                platform.Retry, ct);
            return new WarmStartFile(WarmStartSource.Read(temporary, from,
                $"{downloaded.Version.Name}/{downloaded.Version.Version}"), temporary);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
