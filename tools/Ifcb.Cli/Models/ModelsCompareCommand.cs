using System.CommandLine;
using System.Globalization;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models compare BASE CANDIDATE --dataset SRC [--require-better METRIC]</c>: evaluates two models (checkpoint
/// files or registered versions) on the same labelled dataset and prints them side by side per class. With
/// <c>--require-better</c> it exits 1 unless the candidate's metric is strictly higher, so a CI pipeline can gate an
/// alias move on it.
/// </summary>
public static class ModelsCompareCommand
{
    /// <summary>What <c>--json</c> prints.</summary>
    public sealed record Comparison(EvaluationReport Base, EvaluationReport Candidate, string? RequiredMetric, bool? CandidateIsBetter);

    public static Command Build(CliContext context)
    {
        var baseline = new Argument<string>("BASE")
        {
            Description = "The model in use: a checkpoint file or NAME, NAME/VERSION, NAME@ALIAS.",
        };
        var candidate = new Argument<string>("CANDIDATE") { Description = "The model that would replace it." };
        var dataset = new Option<string>("--dataset")
        {
            Description = "The labelled dataset both are scored on: a folder with one subfolder of images per class, or with " +
                "--remote an uploaded dataset (an evaluation the registry keeps for its current content is reused).",
            Required = true,
        };
        var requireBetter = new Option<string?>("--require-better")
        {
            Description = "Exit 1 unless CANDIDATE scores strictly higher on this metric " +
                $"({string.Join(", ", EvaluationReport.MetricNames)}).",
        }.AcceptOnlyFromAmong([.. EvaluationReport.MetricNames]);
        var options = EvaluateCommand.EvaluationOptionSet.Create();
        var command = new Command("compare", "Evaluate two models on the same labelled dataset and compare them per class.")
        {
            baseline, candidate, dataset, requireBetter,
        };
        options.AddTo(command);
        command.SetHandler(context, async (parse, ct) =>
        {
            var source = parse.GetValue(dataset)!;
            var remote = parse.GetValue(options.Remote);
            // A remote evaluation's outputs are only read for its report.
            var scratch = Path.Combine(Path.GetTempPath(), $"ifcb-compare-{Guid.NewGuid():N}");
            Task<EvaluationReport> Evaluate(string model, string folder) => remote
                ? EvaluateCommand.EvaluateOnPlatformAsync(parse, context, options, model, source, Path.Combine(scratch, folder),
                    reuse: true, ct)
                : EvaluateCommand.EvaluateAsync(parse, context, options, model, source, ct);
            EvaluationReport first, second;
            try
            {
                first = await Evaluate(parse.GetValue(baseline)!, "base");
                second = await Evaluate(parse.GetValue(candidate)!, "candidate");
            }
            finally
            {
                if (Directory.Exists(scratch))
                    Directory.Delete(scratch, recursive: true);
            }
            var metric = parse.GetValue(requireBetter);
            bool? better = metric is null ? null : second.Metric(metric) > first.Metric(metric);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(new Comparison(first, second, metric, better));
            else
                Print(context, first, second, metric, better, parse.GetValue(baseline)!, parse.GetValue(candidate)!);
            return better == false ? ExitCodes.Failed : ExitCodes.Success;
        });
        return command;
    }

    private static void Print(CliContext context, EvaluationReport first, EvaluationReport second, string? metric, bool? better,
        string baseName, string candidateName)
    {
        var table = new Table()
            .AddColumns("class", "support", $"f1 {Markup.Escape(baseName)}", $"f1 {Markup.Escape(candidateName)}", "Δf1");
        // Classes of either model, the base's order first; a class one model lacks shows a dash.
        foreach (var name in first.Classes.Concat(second.Classes.Where(c => !first.Classes.Contains(c))))
        {
            var a = first.PerClass.FirstOrDefault(r => r.Name == name);
            var b = second.PerClass.FirstOrDefault(r => r.Name == name);
            table.AddRow(Markup.Escape(name), (a ?? b)!.Support.ToString(CultureInfo.InvariantCulture),
                a is null ? "–" : EvaluateCommand.Number(a.F1), b is null ? "–" : EvaluateCommand.Number(b.F1),
                a is null || b is null ? "–" : (b.F1 - a.F1).ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture));
        }
        foreach (var name in EvaluationReport.MetricNames)
        {
            table.AddRow($"[bold]{name}[/]", first.Images.ToString(CultureInfo.InvariantCulture),
                EvaluateCommand.Number(first.Metric(name)),
                EvaluateCommand.Number(second.Metric(name)),
                (second.Metric(name) - first.Metric(name)).ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        if (metric is not null)
        {
            context.Console.MarkupLine(Markup.Escape(better == true
                ? $"{candidateName} is better on {metric}."
                : $"{candidateName} is not better than {baseName} on {metric}: {EvaluateCommand.Number(second.Metric(metric))} vs " +
                  $"{EvaluateCommand.Number(first.Metric(metric))}."));
        }
    }
}
