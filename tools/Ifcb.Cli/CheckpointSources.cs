using System.CommandLine;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Inference.Outputs;
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
    public static async Task<LoadedCheckpoint> LoadAsync(ParseResult parse, CliContext context, string model, CancellationToken ct) =>
        (await LoadWithProvenanceAsync(parse, context, model, ct)).Checkpoint;

    /// <summary>
    /// As <see cref="LoadAsync"/>, with where the model came from for RUN's result files: the file's name and SHA-256, or the
    /// registered version, the reference given (and so its alias) and the SHA-256 the download was verified against.
    /// </summary>
    public static async Task<(LoadedCheckpoint Checkpoint, ModelProvenance Provenance)> LoadWithProvenanceAsync(ParseResult parse,
        CliContext context, string model, CancellationToken ct)
    {
        if (File.Exists(model))
        {
            var provenance = ModelProvenance.FromFile(model);
            await using var file = File.OpenRead(model);
            return (Checkpoint.Load(file), provenance);
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
            return (Checkpoint.Load(file), ModelProvenance.FromRegistry(
                ModelRef.ToVersion(downloaded.Version.Name, downloaded.Version.Version), ModelRef.Parse(model), downloaded.Sha256));
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
