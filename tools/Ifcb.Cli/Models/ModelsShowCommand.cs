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
        var command = new Command("show", "Show a registered model or one of its versions.") { reference };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var target = ModelRef.Parse(parse.GetValue(reference)!);
            var json = parse.GetValue(GlobalOptions.Json);
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
