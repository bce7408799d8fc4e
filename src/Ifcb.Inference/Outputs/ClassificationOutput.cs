namespace Ifcb.Inference.Outputs;

/// <summary>
/// The content of one result file (neuston's <c>save_run_results</c> fields): for a bin, <see cref="BinId"/> and
/// <see cref="RoiNumbers"/>; for images, <see cref="InputImages"/>.
/// </summary>
public sealed record ClassificationOutput(
    string ModelId,
    string Timestamp,
    IReadOnlyList<string> ClassLabels,
    ClassScores Scores,
    string? BinId,
    IReadOnlyList<int>? RoiNumbers,
    IReadOnlyList<string>? InputImages)
{
    /// <summary>neuston's result format version; the IFCB dashboard reads "class_scores v3".</summary>
    public const string Version = "v3";

    /// <summary>How the file was made (run id, platform version, model); null writes no provenance.</summary>
    public RunProvenance? Provenance { get; init; }

    /// <summary>The thresholds behind the thresholded labels; null = none (every thresholded label is the winner).</summary>
    public ClassThresholds? Thresholds { get; init; }

    /// <summary>
    /// Each row's thresholded class: the winner, or <see cref="ClassThresholds.UnclassifiedIndex"/> when its score is below
    /// its class's threshold.
    /// </summary>
    public int[] ThresholdedClasses() => Thresholds?.Apply(Scores) ?? [.. Scores.Classes];

    /// <summary>A thresholded class as a label: the class's, or <see cref="ClassThresholds.Unclassified"/>.</summary>
    public string ThresholdedLabel(int thresholdedClass) =>
        thresholdedClass == ClassThresholds.UnclassifiedIndex ? ClassThresholds.Unclassified : ClassLabels[thresholdedClass];

    /// <summary>The thresholds per class as written to files (NaN = none), in class order.</summary>
    public double[] ThresholdValues() =>
        [.. Enumerable.Range(0, ClassLabels.Count).Select(c => Thresholds?.Values[c] ?? double.NaN)];

    /// <summary>The id of each row as written in CSV: <c>{bin}_{target:00000}</c> for bins, the image path for images.</summary>
    public string RowId(int index)
    {
        if (InputImages is not null)
            return InputImages[index];
        if (BinId is null || RoiNumbers is null)
            throw new InvalidOperationException("A result needs either InputImages or BinId and RoiNumbers.");
        return $"{BinId}_{RoiNumbers[index]:00000}";
    }

    public static ClassificationOutput ForBin(string modelId, string timestamp, IReadOnlyList<string> classLabels, ClassScores scores,
        string binId, IReadOnlyList<int> roiNumbers)
    {
        Check(classLabels, scores, roiNumbers.Count);
        return new(modelId, timestamp, classLabels, scores, binId, roiNumbers, null);
    }

    public static ClassificationOutput ForImages(string modelId, string timestamp, IReadOnlyList<string> classLabels, ClassScores scores,
        IReadOnlyList<string> inputImages)
    {
        Check(classLabels, scores, inputImages.Count);
        return new(modelId, timestamp, classLabels, scores, null, null, inputImages);
    }

    private static void Check(IReadOnlyList<string> classLabels, ClassScores scores, int rows)
    {
        if (classLabels.Count != scores.NumClasses || rows != scores.Count)
            throw new ArgumentException(
                $"Scores are {scores.Count}x{scores.NumClasses}, but there are {rows} row ids and {classLabels.Count} class labels.");
    }
}
