namespace Ifcb.Training.Engine;

/// <summary>The names of a training run's outputs (files in --outdir, blobs under jobs/{id}/ in the service).</summary>
public static class TrainingArtifacts
{
    public const string EpochsCsv = "epochs.csv";
    public const string Args = "args.json";
    public const string Results = "results.json";
    /// <summary>The best epoch's per-class thresholds in the form <c>ifcb run --thresholds</c> reads.</summary>
    public const string ClassThresholds = "class_thresholds.csv";
    public const string BestMetrics = "best_metrics.json";
    public const string TrainingImages = "training_images.list";
    public const string ValidationImages = "validation_images.list";
    public const string ResumeState = "resume/state.json";
    public const string ResumeModel = "resume/model.dat";
    public const string ResumeOptimizer = "resume/optimizer.dat";
    public const string CheckpointExtension = ".ifcbmodel";

    /// <summary>The best epoch's checkpoint (the model-zoo format), like neuston's <c>{model_id}.ptl</c>.</summary>
    public static string BestCheckpoint(string modelId) => modelId + CheckpointExtension;
}

/// <summary>An <see cref="IArtifactSink"/> over a local folder (the CLI's --outdir).</summary>
public sealed class DirectoryArtifactSink(string directory) : IArtifactSink
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public async Task WriteAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".partial";
        await File.WriteAllBytesAsync(temporary, content.ToArray(), cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }

    public async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        return File.Exists(path) ? await File.ReadAllBytesAsync(path, cancellationToken) : null;
    }

    private string PathOf(string name)
    {
        var path = Path.GetFullPath(Path.Combine(Directory, name));
        if (!path.StartsWith(Directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"Artifact name '{name}' leaves the output folder.", nameof(name));
        return path;
    }
}
