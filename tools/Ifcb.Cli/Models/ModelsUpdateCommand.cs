using System.CommandLine;
using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models update NAME/VERSION [--description T] [--metric K=V] [--remove-metric K] [--commit SHA]
/// [--pipeline-url U]</c>: a version's metadata that is not part of its checkpoint.
/// </summary>
public static class ModelsUpdateCommand
{
    public static Command Build(CliContext context)
    {
        var reference = new Argument<string>("NAME/VERSION") { Description = "The version to update, e.g. plankton/7." };
        var description = new Option<string?>("--description") { Description = "Replace the description (\"\" clears it)." };
        var metrics = new Option<string[]>("--metric") { Description = "KEY=NUMBER metrics to add or replace (repeatable)." };
        var removed = new Option<string[]>("--remove-metric") { Description = "Metrics to remove (repeatable)." };
        var commit = new Option<string?>("--commit") { Description = "Replace the CI commit (\"\" clears it)." };
        var pipeline = new Option<string?>("--pipeline-url") { Description = "Replace the CI pipeline URL (\"\" clears it)." };
        var command = new Command("update", "Change a version's description, metrics, commit or pipeline URL.")
        {
            reference, description, metrics, removed, commit, pipeline,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var text = parse.GetValue(reference)!;
            if (!ModelRef.TryParse(text, out var parsed, out var error))
                throw new UsageException(error);
            if (parsed.Version is not { } versionNumber)
                throw new UsageException($"'{text}' names no version number; use NAME/VERSION, e.g. plankton/7.");

            var request = new UpdateVersionRequest { Name = parsed.Name, Version = versionNumber };
            if (parse.GetValue(description) is { } newDescription)
                request.Description = newDescription;
            if (parse.GetValue(commit) is { } sha)
                request.SourceCommit = sha;
            if (parse.GetValue(pipeline) is { } url)
                request.SourcePipelineUrl = url;
            foreach (var (key, value) in ModelArguments.KeyValues(parse.GetValue(metrics), "--metric"))
            {
                request.SetMetrics[key] = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                    ? number
                    : throw new UsageException($"--metric {key}={value}: the value must be a number, e.g. {key}=0.85.");
            }
            request.RemoveMetrics.Add(parse.GetValue(removed) ?? []);

            using var platform = PlatformConnection.From(parse, context);
            var updated = await platform.Registry.UpdateVersionAsync(request, platform.Auth, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(updated);
            else
                context.Console.MarkupLine(Markup.Escape($"{updated.Name}/{updated.Version} updated at {updated.UpdatedAt}"));
            return ExitCodes.Success;
        });
        return command;
    }
}
