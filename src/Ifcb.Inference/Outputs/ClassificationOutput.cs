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
