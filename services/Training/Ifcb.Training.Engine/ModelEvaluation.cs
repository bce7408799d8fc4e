using System.Globalization;
using System.Text;
using System.Text.Json;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Inference;
using Ifcb.Models.Checkpoints;
using Ifcb.Reports;
using static TorchSharp.torch;

namespace Ifcb.Training.Engine;

/// <summary>How <see cref="ModelEvaluation"/> classifies.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Images per forward pass (1..<see cref="Ifcb.Platform.Limits.MaxBatch"/>).</summary>
    public int BatchSize { get; init; } = Defaults.BatchSize;

    public InferenceEngine Engine { get; init; } = InferenceEngine.Torch;

    /// <summary>Where the torch engine runs; null = CPU.</summary>
    public Device? Device { get; init; }
}

/// <summary>One class's figures in an evaluation (scikit-learn's definitions, <c>zero_division=0</c>).</summary>
/// <param name="Support">Images of this class in the dataset.</param>
/// <param name="Predicted">Images the model assigned to this class.</param>
public sealed record ClassEvaluation(string Name, double Precision, double Recall, double F1, int Support, int Predicted);

/// <summary>
/// A model classified a labelled class-folder dataset: the confusion matrix over the model's classes (rows = true class,
/// columns = predicted, in the model's output order), per-class precision/recall/F1, weighted and macro F1, accuracy.
/// </summary>
/// <param name="Thresholded">
/// The same figures with the model's per-class thresholds applied (a ROI whose winning score is below its class's
/// threshold is unclassified: a miss for its true class, a prediction of no class); null when the model has none.
/// </param>
/// <param name="SkippedClasses">Dataset class folders that are not classes of the model, with their image counts: left out.</param>
/// <param name="Undecodable">Images that could not be decoded: left out, as RUN leaves them out.</param>
public sealed record EvaluationReport(
    string Source,
    string ModelId,
    string Architecture,
    IReadOnlyList<string> Classes,
    int Images,
    IReadOnlyDictionary<string, int> SkippedClasses,
    IReadOnlyList<string> Undecodable,
    double Accuracy,
    double F1Weighted,
    double F1Macro,
    IReadOnlyList<ClassEvaluation> PerClass,
    int[][] ConfusionMatrix,
    ThresholdedEvaluation? Thresholded = null)
{
    /// <summary>The overall metrics a comparison can rank by (<c>ifcb models compare --require-better</c>).</summary>
    public static IReadOnlyList<string> MetricNames { get; } = ["f1_weighted", "f1_macro", "accuracy"];

    /// <summary>One of <see cref="MetricNames"/>.</summary>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public double Metric(string name) => name switch
    {
        "f1_weighted" => F1Weighted,
        "f1_macro" => F1Macro,
        "accuracy" => Accuracy,
        _ => throw new ArgumentException($"Unknown metric '{name}'; use {string.Join(", ", MetricNames)}.", nameof(name)),
    };
}

/// <summary>The evaluation with per-class thresholds applied (<see cref="EvaluationReport.Thresholded"/>).</summary>
/// <param name="Source">Where the thresholds came from (checkpoint).</param>
/// <param name="Unclassified">Images left unclassified by their winner's threshold.</param>
public sealed record ThresholdedEvaluation(string Source, int Unclassified, double Accuracy, double F1Weighted, double F1Macro,
    IReadOnlyList<ClassEvaluation> PerClass);

/// <summary>
/// Evaluates a trained model on a labelled dataset (a folder of class subfolders, neuston's SRC layout): classifies
/// every image as RUN does (same preprocessing, same engines) and scores the winners against the folder labels with
/// <see cref="ClassificationMetrics"/>, the same code that scores validation during training. Images are decoded a few
/// batches at a time, so a 100k-image holdout set never sits decoded in memory.
/// </summary>
public static class ModelEvaluation
{
    public const string ReportFileName = "evaluation.json";
    public const string PerClassFileName = "evaluation_per_class.csv";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <exception cref="DirectoryNotFoundException"><paramref name="source"/> does not exist.</exception>
    /// <exception cref="ArgumentException">No image of the dataset belongs to a class of the model, or bad options.</exception>
    /// <exception cref="OperationCanceledException">Cancelled between batches.</exception>
    public static EvaluationReport Evaluate(LoadedCheckpoint checkpoint, string source, EvaluationOptions? options = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        options ??= new EvaluationOptions();
        Ifcb.Platform.Limits.Check(options.BatchSize, 1, Ifcb.Platform.Limits.MaxBatch, "batch", nameof(Ifcb.Platform.Limits.MaxBatch));
        var classes = checkpoint.Hparams.Classes;
        var classIndex = classes.Select((name, index) => (name, index)).ToDictionary(p => p.name, p => p.index, StringComparer.Ordinal);
        var images = new List<LabelledImage>();
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (folder, files) in DatasetSpec.ListClassFolders(source))
        {
            if (classIndex.TryGetValue(folder, out var index))
                images.AddRange(files.Select(f => new LabelledImage(f, index)));
            else if (files.Count > 0)
                skipped[folder] = files.Count;
        }
        if (images.Count == 0)
        {
            throw new ArgumentException(
                $"No image in {source} belongs to a class of the model: its class folders are " +
                $"{(skipped.Count == 0 ? "empty" : string.Join(", ", skipped.Keys))}, the model's classes " +
                $"{string.Join(", ", classes.Take(10))}{(classes.Count > 10 ? ", …" : "")}.", nameof(source));
        }

        using var classifier = new BatchClassifier(checkpoint, options.BatchSize, options.Device, options.Engine);
        var truth = new List<int>(images.Count);
        var predicted = new List<int>(images.Count);
        var thresholds = ClassThresholds.FromCheckpoint(checkpoint.Hparams);
        var thresholded = new List<int>(images.Count);
        var undecodable = new List<string>();
        var step = checked(options.BatchSize * 4);
        for (var start = 0; start < images.Count; start += step)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = images.Skip(start).Take(step).ToList();
            var decoded = new DecodedImage?[chunk.Count];
            Parallel.For(0, chunk.Count, i => decoded[i] = TryDecode(chunk[i].Path));
            var kept = Enumerable.Range(0, chunk.Count).Where(i => decoded[i] is not null).ToList();
            undecodable.AddRange(Enumerable.Range(0, chunk.Count).Where(i => decoded[i] is null).Select(i => chunk[i].Path));
            var scores = classifier.Classify([.. kept.Select(i => decoded[i]!)], cancellationToken);
            truth.AddRange(kept.Select(i => chunk[i].ClassIndex));
            predicted.AddRange(scores.Classes);
            thresholded.AddRange(thresholds.Apply(scores));
            progress?.Report((Math.Min(start + step, images.Count), images.Count));
        }

        var metrics = ClassificationMetrics.Compute(truth, predicted, classes.Count);
        var confusion = Enumerable.Range(0, classes.Count)
            .Select(t => Enumerable.Range(0, classes.Count).Select(p => metrics.ConfusionMatrix[t, p]).ToArray()).ToArray();
        var perClass = Enumerable.Range(0, classes.Count).Select(c => new ClassEvaluation(classes[c], metrics.Precision[c],
            metrics.Recall[c], metrics.F1[c], metrics.Support[c], confusion.Sum(row => row[c]))).ToList();
        return new EvaluationReport(Path.GetFullPath(source), checkpoint.Hparams.ModelId, checkpoint.Hparams.Architecture, classes,
            truth.Count, skipped, undecodable, metrics.Accuracy, metrics.F1Weighted, metrics.F1Macro, perClass, confusion,
            thresholds.Values.Any(t => t is not null) ? Thresholded(classes, truth, thresholded, thresholds.Source) : null);
    }

    /// <summary>
    /// scikit-learn's figures over the model's classes when some predictions are "no class": unclassified counts as an extra
    /// label outside <c>labels</c>, so it is a miss for the true class and a false positive for none.
    /// </summary>
    private static ThresholdedEvaluation Thresholded(IReadOnlyList<string> classes, List<int> truth, List<int> thresholded,
        string source)
    {
        var count = classes.Count;
        var metrics = ClassificationMetrics.Compute(truth,
            [.. thresholded.Select(p => p == ClassThresholds.UnclassifiedIndex ? count : p)], count + 1);
        var perClass = Enumerable.Range(0, count).Select(c => new ClassEvaluation(classes[c], metrics.Precision[c], metrics.Recall[c],
            metrics.F1[c], metrics.Support[c], thresholded.Count(p => p == c))).ToList();
        var total = truth.Count;
        return new ThresholdedEvaluation(source, thresholded.Count(p => p == ClassThresholds.UnclassifiedIndex),
            total == 0 ? 0 : (double)Enumerable.Range(0, total).Count(i => truth[i] == thresholded[i]) / total,
            total == 0 ? 0 : perClass.Sum(c => c.F1 * c.Support) / total, perClass.Average(c => c.F1), perClass);
    }

    /// <summary>
    /// Writes <c>evaluation.json</c> (the whole report), <c>evaluation_per_class.csv</c> and <c>confusion_matrix.png</c>
    /// (the plot training writes) into <paramref name="outputDirectory"/>; returns their paths.
    /// </summary>
    public static IReadOnlyList<string> WriteOutputs(EvaluationReport report, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(report);
        Directory.CreateDirectory(outputDirectory);
        var json = Path.Combine(outputDirectory, ReportFileName);
        File.WriteAllText(json, JsonSerializer.Serialize(report, Json));

        var csv = new StringBuilder("class,precision,recall,f1,support,predicted\n");
        foreach (var row in report.PerClass)
        {
            csv.Append(CultureInfo.InvariantCulture,
                $"{Csv(row.Name)},{row.Precision:R},{row.Recall:R},{row.F1:R},{row.Support},{row.Predicted}\n");
        }
        var perClass = Path.Combine(outputDirectory, PerClassFileName);
        File.WriteAllText(perClass, csv.ToString());

        var confusion = new int[report.Classes.Count, report.Classes.Count];
        for (var t = 0; t < report.Classes.Count; t++)
        {
            for (var p = 0; p < report.Classes.Count; p++)
                confusion[t, p] = report.ConfusionMatrix[t][p];
        }
        var picture = TrainingPlots.Confusion(confusion, report.Classes,
            $"{report.ModelId} on {Path.GetFileName(report.Source)}: f1_weighted {report.F1Weighted:F3}");
        var png = Path.Combine(outputDirectory, TrainingPlots.ConfusionMatrix);
        File.WriteAllBytes(png, picture.Png);
        return [json, perClass, png];
    }

    /// <summary>Reads a report back from its evaluation.json (as <see cref="WriteOutputs"/> or a platform evaluation wrote it).</summary>
    /// <exception cref="JsonException">Not an evaluation report.</exception>
    public static EvaluationReport ReadReport(string json) =>
        JsonSerializer.Deserialize<EvaluationReport>(json, Json) ?? throw new JsonException("The evaluation report is empty.");

    private static DecodedImage? TryDecode(string path)
    {
        try
        {
            return ImageDecoder.DecodeFile(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
