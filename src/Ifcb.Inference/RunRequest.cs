using Ifcb.Contracts;

namespace Ifcb.Inference;

/// <summary>What SRC holds: raw IFCB bins (neuston's default) or image files.</summary>
public enum RunInputType
{
    Bin,
    Image,
}

/// <summary>
/// The layout of RUN's result files (<c>ifcb run --outfile-format</c>), named by class-scores version as neuston's
/// <c>version</c> field and pyifcb's <c>ClassScoresDirectory(version=…)</c> name them.
/// </summary>
public enum OutfileFormat
{
    /// <summary>neuston's class_scores v3 (<c>.h5</c>, <c>.json</c>) and the platform's <c>.csv</c>; the default.</summary>
    V3,

    /// <summary>
    /// <c>.csv</c> outputs are pyifcb's v4 class-scores CSV (<see cref="Outputs.PyifcbCsvWriter"/>: pid, then a score column
    /// per class); <c>.h5</c> and <c>.json</c> stay as in v3. Bins only.
    /// </summary>
    V4,
}

/// <summary>
/// One RUN: classify <see cref="Source"/> with the engine's model and write one result file per bin (or per image
/// group) for every pattern in <see cref="OutputFiles"/>.
/// </summary>
/// <param name="Source">
/// Bins: a folder (walked recursively, any folder names), a <c>.txt</c> file with one bin path per line, or one bin path
/// (with or without extension). Images: a folder (walked recursively), a <c>.txt</c> list, or one image file.
/// </param>
/// <param name="RunId">neuston's RUN_ID, used by the default output folder.</param>
public sealed record RunRequest(string Source, string RunId)
{
    /// <summary>neuston's default <c>--outdir</c>, relative to the current folder.</summary>
    public const string DefaultOutputDirectory = "run-output/{RUN_ID}/v3/{MODEL_ID}";

    /// <summary>neuston's default <c>--outfile</c> for bins.</summary>
    public const string DefaultBinOutputFile = "D{BIN_YEAR}/D{BIN_DATE}/{BIN_ID}_class.h5";

    /// <summary>neuston's default <c>--outfile</c> for images.</summary>
    public const string DefaultImageOutputFile = "img_results.json";

    /// <summary>The default <c>--outdir</c> with <see cref="OutfileFormat.V4"/>.</summary>
    public const string DefaultV4OutputDirectory = "run-output/{RUN_ID}/v4/{MODEL_ID}";

    /// <summary>The default <c>--outfile</c> for bins with <see cref="OutfileFormat.V4"/>: the name pyifcb looks for.</summary>
    public const string DefaultV4BinOutputFile = "D{BIN_YEAR}/D{BIN_DATE}/{BIN_ID}.csv";

    /// <summary>The layout of <c>.csv</c> outputs; <see cref="OutfileFormat.V4"/> also changes the default folder and file.</summary>
    public OutfileFormat OutfileFormat { get; init; } = OutfileFormat.V3;

    /// <summary>Where the model came from, written into every result file; null = only the run id and platform version.</summary>
    public Outputs.ModelProvenance? ModelProvenance { get; init; }

    /// <summary>Per-class thresholds that replace the checkpoint's (<c>--thresholds FILE.csv</c>); null = the checkpoint's.</summary>
    public ClassThresholds? Thresholds { get; init; }

    public RunInputType InputType { get; init; } = RunInputType.Bin;

    /// <summary>
    /// Output folder pattern (<c>{RUN_ID}</c>, <c>{MODEL_ID}</c>, <c>{RUN_DATE}</c>); null =
    /// <see cref="DefaultOutputDirectory"/> (<see cref="DefaultV4OutputDirectory"/> with <see cref="OutfileFormat.V4"/>).
    /// </summary>
    public string? OutputDirectory { get; init; }

    /// <summary>
    /// Output file patterns below the output folder; the extension (<c>.h5</c>, <c>.json</c>, <c>.csv</c>) picks the format.
    /// Placeholders: <c>{BIN_ID}</c>, <c>{BIN_YEAR}</c>, <c>{BIN_DATE}</c> (bins only) and <c>{INPUT_SUBDIRS}</c>.
    /// Null or empty = the default for <see cref="InputType"/>.
    /// </summary>
    public IReadOnlyList<string>? OutputFiles { get; init; }

    /// <summary>neuston's <c>--filter IN|OUT KEYWORD…</c>; null = take everything.</summary>
    public RunFilter? Filter { get; init; }

    /// <summary>Without it, a bin (or image group) whose output files all exist already is skipped.</summary>
    public bool Clobber { get; init; }

    /// <summary>Images per forward pass (neuston's <c>--batch</c>, default <see cref="Defaults.BatchSize"/>).</summary>
    public int BatchSize { get; init; } = Defaults.BatchSize;

    /// <summary>What runs the model: TorchSharp (the default) or the exported ONNX graph in ONNX Runtime.</summary>
    public InferenceEngine Engine { get; init; } = InferenceEngine.Torch;

    /// <summary>The run's timestamp written into every result file; null = now.</summary>
    public DateTimeOffset? Timestamp { get; init; }
}

/// <summary>A bin or image group that was classified and written.</summary>
/// <param name="Id">The bin id, or for images the <c>{INPUT_SUBDIRS}</c> group ("" for the whole set).</param>
/// <param name="SourcePath">The bin's path without extension, or the image folder/list.</param>
/// <param name="ImageCount">ROIs (after v1 stitching) or images classified.</param>
/// <param name="OutputFiles">Full paths of the files written.</param>
public sealed record RunItemResult(string Id, string SourcePath, int ImageCount, IReadOnlyList<string> OutputFiles);

/// <summary>A bin or image that could not be classified, and why (the run went on with the others).</summary>
public sealed record RunItemFailure(string Id, string SourcePath, string Reason);

/// <summary>Reported after every bin (or image group), synchronously on the run's thread.</summary>
/// <param name="ItemsDone">Bins (or image groups) finished so far: completed, skipped or failed.</param>
/// <param name="ItemsTotal">Bins (or image groups) to do in this run.</param>
/// <param name="ImagesClassified">ROIs or images classified so far.</param>
/// <param name="ImagesPerSecond">Classification throughput since the run started (decode, preprocess and forward).</param>
/// <param name="Completed">The item that just completed, if it completed.</param>
/// <param name="Failed">The item that just failed, if it failed.</param>
public sealed record RunProgress(
    int ItemsDone,
    int ItemsTotal,
    long ImagesClassified,
    double ImagesPerSecond,
    RunItemResult? Completed,
    RunItemFailure? Failed);

/// <summary>Everything a run did, and everything it did not do with the reason.</summary>
/// <param name="OutputDirectory">The expanded output folder (full path).</param>
/// <param name="Completed">Items classified and written.</param>
/// <param name="SkippedExisting">Items not classified because all their outputs existed (no clobber).</param>
/// <param name="Failed">Items that failed (corrupt, truncated or empty bins, undecodable images, unreadable paths).</param>
/// <param name="NotInputs">Files under SRC that are not usable bins or images, with the reason (never silently ignored).</param>
/// <param name="FilteredOut">Items the <see cref="RunFilter"/> excluded.</param>
public sealed record RunSummary(
    string RunId,
    string ModelId,
    string OutputDirectory,
    IReadOnlyList<RunItemResult> Completed,
    IReadOnlyList<string> SkippedExisting,
    IReadOnlyList<RunItemFailure> Failed,
    IReadOnlyList<Ifcb.Data.Bins.SkippedBinFile> NotInputs,
    IReadOnlyList<string> FilteredOut,
    long ImagesClassified,
    TimeSpan Elapsed)
{
    /// <summary>Bin runs: one row per bin classified (see <see cref="Outputs.BinSummaryTable"/>); null for image runs.</summary>
    public Outputs.BinSummaryTable? BinSummary { get; init; }

    /// <summary>Bin runs: the full paths of <c>run-summary.csv</c> and <c>run-summary.png</c> in the output folder.</summary>
    public IReadOnlyList<string> BinSummaryFiles { get; init; } = [];
}
