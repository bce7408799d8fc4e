using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Ifcb.Models;
using Ifcb.Protos;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb sweep SRC --arch a,b --lr x,y …</c>: a hyper-parameter grid trained as one training job per combination on
/// the platform's workers, followed on a live leaderboard; <c>ifcb sweeps list|show|watch|cancel</c> manage sweeps.
/// </summary>
public static class SweepCommands
{
    /// <summary>The axes: option name → what it varies (values are comma-separated).</summary>
    private static readonly (string Name, string Description)[] Axes =
    [
        ("--arch", $"Architectures, e.g. resnet18,densenet121 ({string.Join(", ", ModelZoo.Architectures)})."),
        ("--lr", "Initial learning rates, e.g. 1e-3,3e-4."),
        ("--optimizer", $"Optimisers: {string.Join(", ", Optimization.OptimizerNames)}."),
        ("--weight-decay", "Weight decays, each 0..1."),
        ("--lr-schedule", $"Learning-rate schedules: {string.Join(", ", Optimization.ScheduleNames)}."),
        ("--class-weights", "Class weighting: none, balanced, or a class,weight CSV file (at most one file)."),
        ("--sampler", "Samplers: none, balanced."),
        ("--batch", "Batch sizes."),
        ("--resize", "Input sides in pixels."),
    ];

    public static Command BuildSweep(CliContext context)
    {
        var source = new Argument<string>("SRC")
        {
            Description = "Class-folder dataset or dataset-config CSV (uploaded first), or an existing dataset name.",
        };
        var axes = Axes.Select(a => new Option<string?>(a.Name) { Description = a.Description + " One trial per combination." }).ToArray();
        var trainId = new Option<string>("--train-id")
        {
            Description = "Names the sweep's trials (TRAIN_ID-t0, TRAIN_ID-t1, …).", DefaultValueFactory = _ => "sweep",
        };
        var untrain = new Option<bool>("--untrain") { Description = "Start every trial from random weights instead of ImageNet weights." };
        var imgNorm = ImgNormChoice.CreateOption();
        var seed = new Option<long>("--seed") { Description = "Random seed shared by every trial; 0 picks one." };
        var split = new Option<string>("--split")
        {
            Description = "Per-class training:validation percentages.", DefaultValueFactory = _ => "80:20",
        };
        var classConfig = NeustonOptions.ClassConfig();
        var classMin = NeustonOptions.ClassMin();
        var classMax = NeustonOptions.ClassMax();
        var emax = new Option<int>("--emax") { Description = "Maximum epochs per trial.", DefaultValueFactory = _ => 60 };
        var emin = new Option<int>("--emin") { Description = "Minimum epochs per trial.", DefaultValueFactory = _ => 10 };
        var estop = new Option<int>("--estop") { Description = "Early-stopping patience (0 disables it).", DefaultValueFactory = _ => 10 };
        var device = new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" }
            .AcceptOnlyFromAmong([.. DeviceSelection.Choices]);
        var dataset = new Option<string?>("--dataset") { Description = "Dataset name for the upload of SRC (default: folder name)." };
        var metric = new Option<string>("--metric")
        {
            Description = "What ranks the trials, at each one's best epoch: f1_weighted, f1_macro, accuracy, val_loss, val_loss_mean.",
            DefaultValueFactory = _ => "f1_weighted",
        }.AcceptOnlyFromAmong("f1_weighted", "f1_macro", "accuracy", "val_loss", "val_loss_mean");
        var direction = new Option<string?>("--direction")
        {
            Description = "max or min (default: max for f1 and accuracy, min for losses).",
        }.AcceptOnlyFromAmong("max", "min");
        var registerBest = new Option<string?>("--register-best")
        {
            Description = "Register only the best trial's checkpoint under this model name once every trial has ended.",
        };
        var detach = new Option<bool>("--detach") { Description = "Print the sweep and return without following it." };
        var priority = new Option<string>("--priority")
        {
            Description = "Every trial's priority: low (default: trials wait while normal or high jobs are queued), normal or high.",
            DefaultValueFactory = _ => "low",
        }.AcceptOnlyFromAmong("low", "normal", "high");
        var command = new Command("sweep", "Train a grid of hyper-parameters as platform jobs and rank them on a live leaderboard.")
        {
            source, trainId, untrain, imgNorm, seed, split, classConfig, classMin, classMax, emax, emin, estop, device, dataset, metric,
            direction, registerBest, detach, priority,
        };
        foreach (var axis in axes)
            command.Options.Add(axis);

        command.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            using var platform = PlatformConnection.From(parse, context);
            if (!platform.Has(PlatformService.Training))
                throw new UsageException("sweep runs on the platform: pass --server URL.");
            var values = axes.ToDictionary(a => a.Name, a => parse.GetValue(a), StringComparer.Ordinal);
            // The grid is checked here too, before a dataset is uploaded.
            var request = BuildRequest(values, "pending");
            var info = await DatasetSource.ResolveAsync(platform, context, parse.GetValue(source)!, parse.GetValue(dataset), json, ct);
            var (csv, column) = NeustonOptions.ClassConfigText(parse, classConfig);
            var b = request.Base;
            b.Dataset = info.Name;
            b.TrainId = parse.GetValue(trainId)!;
            b.Untrain = parse.GetValue(untrain);
            b.ImgNorm = ImgNormChoice.Parse(parse.GetValue(imgNorm)).ToRequestField();
            b.Seed = parse.GetValue(seed);
            b.Split = parse.GetValue(split)!;
            b.ClassConfigCsv = csv;
            b.ClassConfigColumn = column;
            b.ClassMin = parse.GetValue(classMin);
            b.ClassMax = parse.GetValue(classMax) ?? 0;
            b.Emax = parse.GetValue(emax);
            b.Emin = parse.GetValue(emin);
            b.Estop = parse.GetValue(estop);
            b.EstopDisabled = parse.GetValue(estop) == 0;
            b.Device = parse.GetValue(device)!;
            b.Priority = parse.GetValue(priority)!;
            request.Metric = parse.GetValue(metric)!;
            request.Direction = parse.GetValue(direction) ?? "";
            request.RegisterBest = parse.GetValue(registerBest) ?? "";

            var sweep = await platform.Sweeps.StartSweepAsync(request, platform.Auth, cancellationToken: ct);
            if (!json)
                context.Console.MarkupLine($"Sweep [bold]{sweep.SweepId}[/]: {sweep.Trials} trials on {Markup.Escape(info.Name)}.");
            if (parse.GetValue(detach))
            {
                Render(context, json, sweep);
                return ExitCodes.Success;
            }
            sweep = await FollowAsync(context, json, platform, sweep.SweepId, ct);
            Render(context, json, sweep);
            return sweep.State == JobState.Succeeded ? ExitCodes.Success : ExitCodes.Failed;
        });
        return command;
    }

    public static Command BuildSweeps(CliContext context)
    {
        var command = new Command("sweeps", "Hyper-parameter sweeps on the platform (see ifcb sweep).");
        var limit = new Option<int>("--limit") { Description = "At most this many sweeps.", DefaultValueFactory = _ => 20 };
        var list = new Command("list", "List sweeps, newest first.") { limit };
        list.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var request = new ListSweepsRequest { PageSize = Math.Clamp(parse.GetValue(limit), 1, 100) };
            var sweeps = (await platform.Sweeps.ListSweepsAsync(request, cancellationToken: ct)).Sweeps;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(sweeps);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("sweep", "state", "dataset", "trials", "ended", "metric", "best",
                "registered", "created");
            foreach (var s in sweeps)
            {
                var best = s.Leaderboard.FirstOrDefault(t => t.Rank == 1);
                table.AddRow(s.SweepId, JobStateNames.Of(s.State), Markup.Escape(s.Request.Base.Dataset), Count(s.Trials),
                    Count(s.TrialsEnded), s.Metric, best is null ? "" : $"t{best.Index} {Format(best)}",
                    Markup.Escape(s.RegisteredVersion), s.CreatedAt);
            }
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        command.Subcommands.Add(list);

        var showId = new Argument<string>("SWEEP");
        var show = new Command("show", "Show a sweep's leaderboard.") { showId };
        show.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            Render(context, parse.GetValue(GlobalOptions.Json),
                await platform.Sweeps.GetSweepAsync(new SweepRef { SweepId = parse.GetValue(showId) }, cancellationToken: ct));
            return ExitCodes.Success;
        });
        command.Subcommands.Add(show);

        var watchId = new Argument<string>("SWEEP");
        var watch = new Command("watch", "Follow a sweep's leaderboard until it ends; exit 1 unless it succeeded.") { watchId };
        watch.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            using var platform = PlatformConnection.From(parse, context);
            var sweep = await FollowAsync(context, json, platform, parse.GetValue(watchId)!, ct);
            Render(context, json, sweep);
            return sweep.State == JobState.Succeeded ? ExitCodes.Success : ExitCodes.Failed;
        });
        command.Subcommands.Add(watch);

        var cancelId = new Argument<string>("SWEEP");
        var cancel = new Command("cancel", "Cancel every trial of a sweep that has not ended; nothing is registered.") { cancelId };
        cancel.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var sweep = await platform.Sweeps.CancelSweepAsync(new SweepRef { SweepId = parse.GetValue(cancelId) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(sweep);
            else
                context.Console.MarkupLine($"Sweep {sweep.SweepId}: {JobStateNames.Of(sweep.State)} (cancellation requested).");
            return ExitCodes.Success;
        });
        command.Subcommands.Add(cancel);
        return command;
    }

    /// <summary>
    /// The sweep request's axes from the comma-separated option values (by option name, e.g. "--lr" → "1e-3,3e-4"); a
    /// class-weights FILE becomes the axis value "file" with the file's text as the base request's class_weights_csv.
    /// </summary>
    /// <exception cref="UsageException">A value that is not a number, an empty value, or more than one class-weights file.</exception>
    internal static StartSweepRequest BuildRequest(IReadOnlyDictionary<string, string?> values, string datasetName)
    {
        var request = new StartSweepRequest { Base = new StartTrainingRequest { Dataset = datasetName } };
        string? Get(string name) => values.GetValueOrDefault(name);
        request.Model.AddRange(Values(Get("--arch"), "--arch", v => v));
        request.Lr.AddRange(Values(Get("--lr"), "--lr", Number));
        request.Optimizer.AddRange(Values(Get("--optimizer"), "--optimizer", v => v));
        request.WeightDecay.AddRange(Values(Get("--weight-decay"), "--weight-decay", Number));
        request.LrSchedule.AddRange(Values(Get("--lr-schedule"), "--lr-schedule", v => v));
        request.Sampler.AddRange(Values(Get("--sampler"), "--sampler", v => v));
        request.Batch.AddRange(Values(Get("--batch"), "--batch", Integer));
        request.Resize.AddRange(Values(Get("--resize"), "--resize", Integer));
        foreach (var weighting in Values(Get("--class-weights"), "--class-weights", v => v))
        {
            var (mode, csv) = TrainCommand.ReadClassWeights(weighting);
            if (mode == "file")
            {
                if (request.ClassWeights.Contains("file"))
                    throw new UsageException("--class-weights names more than one file; a sweep takes at most one.");
                request.Base.ClassWeightsCsv = csv;
            }
            request.ClassWeights.Add(mode);
        }
        if (request.Model.Count == 0)
            throw new UsageException("--arch is required: the architectures to train, e.g. --arch resnet18,densenet121.");
        request.Base.Model = request.Model[0];
        return request;
    }

    private static List<T> Values<T>(string? value, string option, Func<string, T> parse)
    {
        if (value is null)
            return [];
        var items = value.Split(',', StringSplitOptions.TrimEntries);
        if (items.Any(i => i.Length == 0))
            throw new UsageException($"{option} '{value}' has an empty value; separate values with single commas.");
        return [.. items.Select(item =>
        {
            try
            {
                return parse(item);
            }
            catch (FormatException)
            {
                throw new UsageException($"{option}: '{item}' is not a number.");
            }
        })];
    }

    private static double Number(string text) => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static int Integer(string text) => int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);

    /// <summary>
    /// Follows the sweep (the leaderboard redrawn on every change unless <paramref name="quiet"/>); returns its final state.
    /// </summary>
    private static async Task<Sweep> FollowAsync(CliContext context, bool quiet, PlatformConnection platform, string sweepId,
        CancellationToken ct)
    {
        var sweeps = platform.Sweeps;
        var reference = new SweepRef { SweepId = sweepId };
        Task<Sweep> Follow(Action<Sweep> update) => ResumableWatch.FollowAsync("Sweeps.WatchSweep",
            c => sweeps.GetSweepAsync(reference, cancellationToken: c).ResponseAsync,
            c => sweeps.WatchSweep(reference, cancellationToken: c),
            s => s.State is not (JobState.Running or JobState.Queued) && !AwaitsRegistration(s), update, platform.Retry, ct);
        if (quiet)
            return await Follow(_ => { });
        // A live display redraws in place: only on a terminal; elsewhere (a CI log) one line per trial that changes state.
        if (!context.Console.Profile.Capabilities.Interactive)
        {
            var states = new Dictionary<int, JobState>();
            return await Follow(s =>
            {
                foreach (var t in s.Leaderboard.OrderBy(t => t.Index))
                {
                    if (states.TryGetValue(t.Index, out var seen) && seen == t.State)
                        continue;
                    states[t.Index] = t.State;
                    context.Console.WriteLine(TrialLine(t));
                }
            });
        }
        Sweep? last = null;
        await context.Console.Live(new Text("waiting for the sweep…")).StartAsync(async live =>
        {
            last = await Follow(s =>
            {
                live.UpdateTarget(Leaderboard(s));
                live.Refresh();
            });
            live.UpdateTarget(Leaderboard(last));
        });
        return last!;
    }

    /// <summary>"trial 2 (lr=0.001, class_weights=none): succeeded, f1_weighted 0.8125 at epoch 3".</summary>
    internal static string TrialLine(SweepTrial t)
    {
        var line = $"trial {Count(t.Index)} ({string.Join(", ", t.Params.Select(p => $"{p.Key}={p.Value}"))}): {JobStateNames.Of(t.State)}";
        if (t.State == JobState.Running && t.Worker.Length > 0)
            line += $" on {t.Worker}";
        if (t.HasMetric)
            line += $", metric {Format(t)} at epoch {Count(t.BestEpoch)}";
        return t.Error.Length > 0 ? $"{line}: {t.Error}" : line;
    }

    private static bool AwaitsRegistration(Sweep s) =>
        s.State == JobState.Succeeded && s.Request.RegisterBest.Length > 0 && s.RegisteredVersion.Length == 0
        && s.RegistrationError.Length == 0;

    private static void Render(CliContext context, bool json, Sweep sweep)
    {
        if (json)
        {
            context.WriteJson(sweep);
            return;
        }
        context.Console.Write(Leaderboard(sweep));
        if (sweep.RegisteredVersion.Length > 0)
            context.Console.MarkupLine($"Best trial {sweep.BestJobId} registered as [bold]{Markup.Escape(sweep.RegisteredVersion)}[/].");
        if (sweep.RegistrationError.Length > 0)
            context.Warn(sweep.RegistrationError);
    }

    /// <summary>The leaderboard as a table, best first.</summary>
    internal static Table Leaderboard(Sweep sweep)
    {
        var axes = sweep.Leaderboard.SelectMany(t => t.Params.Keys).Distinct(StringComparer.Ordinal).ToList();
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"sweep {sweep.SweepId}: {JobStateNames.Of(sweep.State)}, {sweep.TrialsEnded}/{sweep.Trials} trials ended, " +
            $"by {sweep.Metric} ({sweep.Direction})")));
        table.AddColumn("rank");
        table.AddColumn("trial");
        foreach (var axis in axes)
            table.AddColumn(axis);
        table.AddColumns("state", sweep.Metric, "best epoch", "epochs", "job");
        foreach (var t in sweep.Leaderboard)
        {
            string[] cells =
            [
                t.Rank > 0 ? Count(t.Rank) : "", Count(t.Index), .. axes.Select(a => t.Params.TryGetValue(a, out var v) ? v : ""),
                JobStateNames.Of(t.State), Format(t), t.BestEpoch >= 0 ? Count(t.BestEpoch) : "", Count(t.Epochs), t.JobId,
            ];
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        return table;
    }

    private static string Format(SweepTrial t) => t.HasMetric ? t.Metric.ToString("0.0000", CultureInfo.InvariantCulture) : "";

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);
}
