using System.CommandLine;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Models.Checkpoints;

namespace Ifcb.Cli;

/// <summary>Where the verbs that use a model (run, evaluate, models compare) get it from.</summary>
internal static class CheckpointSources
{
    /// <summary>
    /// A local checkpoint file, else (with a server) the registered version <paramref name="model"/> names (NAME,
    /// NAME/VERSION, NAME@ALIAS), downloaded to a temporary file, verified, loaded and deleted; the version used is
    /// reported on stderr.
    /// </summary>
    public static async Task<LoadedCheckpoint> LoadAsync(ParseResult parse, CliContext context, string model, CancellationToken ct)
    {
        if (File.Exists(model))
        {
            await using var file = File.OpenRead(model);
            return Checkpoint.Load(file);
        }
        using var platform = PlatformConnection.From(parse, context);
        if (!platform.Has(PlatformService.Registry))
            throw new FileNotFoundException($"No checkpoint file '{model}'; to use a registered model (NAME@ALIAS) pass --server.");
        var temporary = Path.Combine(Path.GetTempPath(), $"ifcb-model-{Guid.NewGuid():N}.ifcbmodel");
        try
        {
            var downloaded = await ModelDownloads.DownloadAsync(platform.Registry, ModelRef.Parse(model), _ => temporary,
                platform.Retry, ct);
            context.Warn($"using {downloaded.Version.Name}/{downloaded.Version.Version}");
            await using var file = File.OpenRead(downloaded.Path);
            return Checkpoint.Load(file);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
