using System.CommandLine;
using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models show MODEL</c>: a registered model, or one of its versions.</summary>
public static class ModelsShowCommand
{
    public static Command Build(CliContext context)
    {
        var reference = ModelArguments.Reference("NAME shows the model; NAME/VERSION or NAME@ALIAS shows that version.");
        var lineage = new Option<bool>("--lineage")
        {
            Description = "For a version: also where it came from (training job, dataset, parent) and what came from it " +
                "(versions fine-tuned from it, the RUN and evaluation jobs that used it).",
        };
        var command = new Command("show", "Show a registered model or one of its versions.") { reference, lineage };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var target = ModelRef.Parse(parse.GetValue(reference)!);
            var json = parse.GetValue(GlobalOptions.Json);
            if (target.SelectsVersion && parse.GetValue(lineage))
            {
                var found = await platform.Registry.GetLineageAsync(target.ToVersionRef(), cancellationToken: ct);
                if (json)
                {
                    context.WriteJson(found);
                    return ExitCodes.Success;
                }
                ModelVersionView.Render(context.Console, found.Version);
                var table = ModelVersionView.Fields();
                var source = found.Version.Metadata;
                table.AddRow("trained by job", Markup.Escape(source?.SourceTrainingJob is { Length: > 0 } job ? job : "–"));
                table.AddRow("dataset", Markup.Escape(source?.DatasetFingerprint is { Length: > 0 } fp ? fp : "–"));
                table.AddRow("parent", Markup.Escape(source?.ParentVersion is { Length: > 0 } parent ? parent : "– (not fine-tuned)"));
                table.AddRow("children", Markup.Escape(found.Children.Count == 0 ? "–" : string.Join(", ", found.Children)));
                table.AddRow("used by", Markup.Escape(found.UsesTotal == 0 ? "no platform job" : string.Join(", ",
                    found.Uses.Select(u => $"{u.Kind} {u.JobId} ({u.At})")) + (found.UsesTotal > found.Uses.Count
                    ? $" … {found.UsesTotal} in all" : "")));
                context.Console.Write(table);
                return ExitCodes.Success;
            }
            if (target.SelectsVersion)
            {
                var version = await platform.Registry.GetVersionAsync(target.ToVersionRef(), cancellationToken: ct);
                if (json)
                    context.WriteJson(version);
                else
                    ModelVersionView.Render(context.Console, version);
                return ExitCodes.Success;
            }
            var model = await platform.Registry.GetModelAsync(new GetModelRequest { Name = target.Name }, cancellationToken: ct);
            if (json)
                context.WriteJson(model);
            else
                Render(context.Console, model);
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Render(IAnsiConsole console, RegisteredModel model)
    {
        var table = ModelVersionView.Fields();
        table.AddRow("name", Markup.Escape(model.Name));
        table.AddRow("description", Markup.Escape(model.Description));
        table.AddRow("latest_version", model.LatestVersion.ToString(CultureInfo.InvariantCulture));
        table.AddRow("aliases", Markup.Escape(ModelVersionView.Aliases(model)));
        table.AddRow("tags", Markup.Escape(string.Join(", ",
            model.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"))));
        table.AddRow("created", $"{model.CreatedAt} by {Markup.Escape(model.CreatedBy)}");
        table.AddRow("updated", $"{model.UpdatedAt} by {Markup.Escape(model.UpdatedBy)}");
        console.Write(table);
    }
}
