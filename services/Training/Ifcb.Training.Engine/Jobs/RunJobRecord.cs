using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Platform.Jobs;

namespace Ifcb.Training.Engine.Jobs;

/// <summary>What a user asked a platform RUN to do (neuston RUN's flags, with the inputs in blob storage).</summary>
public sealed record RunRequestSpec
{
    /// <summary>Registered model reference as given: NAME, NAME/VERSION or NAME@ALIAS.</summary>
    public required string Model { get; init; }
    public required string RunId { get; init; }
    /// <summary>A bin set (Datasets.UploadBins), for bin mode.</summary>
    public string? BinSet { get; init; }
    /// <summary>An image dataset, for image mode.</summary>
    public string? Dataset { get; init; }
    public List<string> OutputFiles { get; init; } = [];
    public int BatchSize { get; init; } = Defaults.BatchSize;
    public string? FilterMode { get; init; }
    public List<string> FilterKeywords { get; init; } = [];
    public string Device { get; init; } = "auto";
    /// <summary>auto, torch or onnx (<c>InferenceEngines</c>); records stored before engines were selectable read as auto.</summary>
    public string Engine { get; init; } = "auto";
    /// <summary>Score the model against the dataset's class folders (ModelEvaluation) instead of writing result files.</summary>
    public bool Evaluate { get; init; }
}

public sealed record RunItemFailureRecord(string Id, string Reason);

/// <summary>A platform RUN as stored in blob storage (runs/{id}/job.json); its outputs are runs/{id}/artifacts/….</summary>
public sealed record RunJobRecord : JobRecord<RunJobRecord>
{
    public required RunRequestSpec Request { get; init; }
    /// <summary>The exact model version (NAME/VERSION) resolved when the run was queued, so a moving alias cannot change it.</summary>
    public required ModelRef ModelVersion { get; init; }
    /// <summary>That version's checkpoint SHA-256 as the Registry reported it (null in runs queued before it was recorded).</summary>
    public string? ModelSha256 { get; init; }
    public int ItemsTotal { get; init; }
    public int ItemsDone { get; init; }
    public long ImagesClassified { get; init; }
    public double ImagesPerSecond { get; init; }
    public List<string> Completed { get; init; } = [];
    public List<RunItemFailureRecord> Failed { get; init; } = [];
    /// <summary>The run's bin set was deleted after the run ended (it belongs to the run).</summary>
    public bool BinSetReleased { get; init; }

    public override string DescribeProgress() => string.Create(CultureInfo.InvariantCulture, $"{ItemsDone} of {ItemsTotal} inputs");

    /// <summary>A finished run stays on the reconciler's list until its bin set is deleted.</summary>
    public override bool NeedsFollowUp() => IsTerminal && Request.BinSet is not null && !BinSetReleased;
}
