using System.CommandLine;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Training.Engine;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb models download MODEL [-o FILE]</c>: a version's checkpoint, verified by size and SHA-256.</summary>
public static class ModelsDownloadCommand
{
    public static Command Build(CliContext context)
    {
        var reference = ModelArguments.Reference("NAME (newest READY version), NAME/VERSION or NAME@ALIAS.");
        var output = new Option<string?>("--out", "-o") { Description = "File to write (default NAME-vVERSION.ifcbmodel)." };
        var command = new Command("download", "Download a version's checkpoint, verifying its size and SHA-256.") { reference, output };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var file = parse.GetValue(output);
            var downloaded = await ModelDownloads.DownloadAsync(platform.Registry, ModelRef.Parse(parse.GetValue(reference)!),
                version => file ?? $"{version.Name}-v{version.Version}{TrainingArtifacts.CheckpointExtension}", platform.Retry, ct);
            var (version, path) = (downloaded.Version, downloaded.Path);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(new { version.Name, version.Version, Path = path, downloaded.Sha256, downloaded.Size });
            else
                context.Console.MarkupLine(Markup.Escape(
                    $"{version.Name}/{version.Version} → {path} ({downloaded.Size} bytes, sha256 {downloaded.Sha256})"));
            return ExitCodes.Success;
        });
        return command;
    }
}
