using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb jobs list|show|watch|cancel|artifacts</c>: training jobs on the platform.</summary>
public static class JobsCommands
{
    public static Command Build(CliContext context)
    {
        var command = new Command("jobs", "Training jobs on the platform.");
        command.Subcommands.Add(List(context));
        command.Subcommands.Add(Show(context));
        command.Subcommands.Add(Watch(context));
        command.Subcommands.Add(Cancel(context));
        command.Subcommands.Add(Artifacts(context));
        return command;
    }

    private static Command List(CliContext context)
    {
        var state = new Option<string?>("--state") { Description = "Only jobs in this state." }
            .AcceptOnlyFromAmong("queued", "running", "succeeded", "failed", "cancelled");
        var limit = new Option<int>("--limit") { Description = "At most this many jobs.", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List training jobs.") { state, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var request = new ListJobsRequest
            {
                PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000), State = JobStateNames.Parse(parse.GetValue(state)),
            };
            var jobs = (await platform.Training.ListJobsAsync(request, cancellationToken: ct)).Jobs;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(jobs);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("job", "state", "train_id", "model", "dataset", "epochs", "best f1_w", "created");
            foreach (var job in jobs)
            {
                var best = job.Epochs.FirstOrDefault(e => e.Epoch == job.BestEpoch);
                table.AddRow(job.JobId, JobStateNames.Of(job.State), Markup.Escape(job.Request.TrainId), Markup.Escape(job.Request.Model),
                    Markup.Escape(job.Request.Dataset), job.Epochs.Count.ToString(CultureInfo.InvariantCulture),
                    best?.F1Weighted.ToString("0.000", CultureInfo.InvariantCulture) ?? "", job.CreatedAt);
            }
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Show(CliContext context)
    {
        var job = new Argument<string>("JOB");
        var command = new Command("show", "Show a job: state, options, per-epoch metrics.") { job };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var state = await platform.Training.GetJobAsync(new JobRef { JobId = parse.GetValue(job) }, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(state);
            else
            {
                var details = new Table().Border(TableBorder.Simple).HideHeaders().AddColumns("field", "value");
                void Row(string field, string value) => details.AddRow(field, Markup.Escape(value));
                Row("job", state.JobId);
                Row("state", JobStateNames.Of(state.State));
                Row("train_id", state.Request.TrainId);
                Row("model", state.Request.Model);
                Row("dataset", state.Request.Dataset);
                Row("seed", state.Seed.ToString(CultureInfo.InvariantCulture));
                Row("classes", string.Join(", ", state.Classes));
                Row("img_norm",
                    state.ImgNorm is null ? "" : $"{string.Join(',', state.ImgNorm.Mean)} {string.Join(',', state.ImgNorm.Std)}");
                Row("worker", state.Worker);
                Row("created", state.CreatedAt);
                Row("updated", state.UpdatedAt);
                if (state.RegisteredVersion.Length > 0)
                    Row("registered", state.RegisteredVersion);
                if (state.Error.Length > 0)
                    Row("error", state.Error);
                context.Console.Write(details);
                if (state.Epochs.Count > 0)
                    TrainingProgressView.RenderMetrics(context.Console, [.. state.Epochs.Select(EpochRow.From)], state.Request.TrainId);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Watch(CliContext context)
    {
        var job = new Argument<string>("JOB");
        var command = new Command("watch", "Follow a job with a progress bar per epoch until it ends; exit 1 if it fails or is cancelled.")
        {
            job,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var json = parse.GetValue(GlobalOptions.Json);
            using var platform = PlatformConnection.From(parse, context);
            var done = await TrainingProgressView.FollowJobAsync(context, json, platform, parse.GetValue(job)!, ct);
            var report = TrainReport.FromJob(done, null);
            if (json)
                context.WriteJson(report);
            else
                report.Render(context);
            return done.State == JobState.Succeeded ? ExitCodes.Success : ExitCodes.Failed;
        });
        return command;
    }

    private static Command Cancel(CliContext context)
    {
        var job = new Argument<string>("JOB");
        var command = new Command("cancel", "Ask the worker to stop a job (within one batch); partial artifacts are kept.") { job };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var state = await platform.Training.CancelJobAsync(new JobRef { JobId = parse.GetValue(job) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(state);
            else
                context.Console.MarkupLine($"Job {state.JobId}: {JobStateNames.Of(state.State)} (cancellation requested).");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Artifacts(CliContext context)
    {
        var job = new Argument<string>("JOB");
        var output = new Option<string?>("--out", "-o") { Description = "Folder to download into (default ./JOB)." };
        var only = new Option<string[]>("--only")
        {
            Description = "Download only these artifacts (repeatable).", AllowMultipleArgumentsPerToken = true,
        };
        var listOnly = new Option<bool>("--list") { Description = "List the artifacts without downloading." };
        var command = new Command("artifacts", "Download a job's artifacts: checkpoint, epochs.csv, results.json, image lists, PNG plots.")
        {
            job, output, only, listOnly,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var jobId = parse.GetValue(job)!;
            IReadOnlyList<Artifact> artifacts;
            string? folder = null;
            if (parse.GetValue(listOnly))
                artifacts = (await platform.Training.ListArtifactsAsync(new JobRef { JobId = jobId }, cancellationToken: ct)).Artifacts;
            else
            {
                folder = Path.GetFullPath(parse.GetValue(output) ?? jobId);
                artifacts = await JobArtifacts.DownloadAsync(platform.Training, jobId, folder, parse.GetValue(only), platform.Retry, ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(new
                {
                    JobId = jobId, Folder = folder, Artifacts = artifacts.Select(a => new { a.Name, a.Size, a.ContentType }),
                });
            else
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumns("artifact", "bytes", "type");
                foreach (var a in artifacts)
                    table.AddRow(Markup.Escape(a.Name), a.Size.ToString(CultureInfo.InvariantCulture), a.ContentType);
                context.Console.Write(table);
                if (folder is not null)
                    context.Console.MarkupLine($"Downloaded {artifacts.Count} files to {Markup.Escape(folder)}");
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
