using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ifcb.Data.Datasets;

namespace Ifcb.Training.Engine;

/// <summary>
/// The text formats of a run's outputs (upstream neuston_net.py:72-75, 87-95; neuston_callbacks.py:20-156): epochs.csv,
/// the image lists, args.json, results.json.
/// </summary>
public static class TrainingOutputs
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static string PlatformVersion { get; } =
        typeof(TrainingOutputs).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>neuston's columns (epoch, best, train_loss, val_loss, f1_macro, f1_weighted) then our extras (lr last).</summary>
    public static byte[] EpochsCsv(IEnumerable<EpochRecord> epochs)
    {
        var csv = new StringBuilder(
            "epoch,best,train_loss,val_loss,f1_macro,f1_weighted,val_loss_mean,accuracy,seconds,images_per_second,lr\n");
        foreach (var e in epochs)
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{e.Epoch},{(e.Best ? "True" : "False")},{e.TrainLoss:R},{e.ValLoss:R},{e.F1Macro:R},{e.F1Weighted:R}," +
                $"{e.ValLossMean:R},{e.Accuracy:R},{e.Seconds:0.###},{e.ImagesPerSecond:0.##},{e.LearningRate:R}"));
        return Encoding.UTF8.GetBytes(csv.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    /// <summary>Sorted full paths joined with "\n", as neuston's training_images.list / validation_images.list.</summary>
    public static byte[] ImageList(IEnumerable<LabelledImage> images, Func<string, string> display) =>
        Encoding.UTF8.GetBytes(string.Join('\n', images.Select(i => display(i.Path)).Order(StringComparer.Ordinal)));

    /// <summary>Every option, the resolved seed, the dataset fingerprint, timestamps and versions (neuston's args.yml).</summary>
    public static byte[] Args(TrainingInputs inputs)
    {
        var o = inputs.Options;
        var args = new SortedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["MODEL"] = o.Architecture,
            ["TRAIN_ID"] = o.TrainId,
            ["model_id"] = o.EffectiveModelId,
            ["pretrained"] = o.EffectivePretrained,
            ["from"] = o.From?.Reference,
            ["parent_version"] = o.From?.ParentVersion,
            ["freeze"] = o.FreezeFeatures ? "features" : "none",
            ["freeze_epochs"] = o.FreezeEpochs,
            ["img_norm"] = o.ImgNorm is null ? null : new[] { o.ImgNorm.ToNeustonStrings().Mean, o.ImgNorm.ToNeustonStrings().Std },
            ["seed"] = inputs.Seed,
            ["split"] = o.Split.ToString(),
            ["class_config"] = o.ClassConfig?.Column,
            ["class_min"] = o.ClassMin,
            ["class_max"] = o.ClassMax,
            ["swap"] = o.Swap,
            ["emax"] = o.Emax,
            ["emin"] = o.Emin,
            ["estop"] = o.Estop,
            ["flip"] = o.Flip.Mode == Ifcb.Data.Imaging.FlipMode.None ? null : o.Flip.ToString(),
            ["batch_size"] = o.BatchSize,
            ["resize"] = o.EffectiveResize,
            ["device"] = o.Device,
            ["lr"] = o.LearningRate,
            ["optimizer"] = o.Optimizer.Name(),
            ["weight_decay"] = o.EffectiveWeightDecay,
            ["lr_schedule"] = o.LrSchedule.Name(),
            ["class_weights"] = o.ClassWeights.ToString(),
            ["class_weight_values"] = ClassWeightValues(inputs),
            ["sampler"] = ClassWeights.Name(o.Sampler),
            ["classes"] = inputs.Classes,
            ["dataset_fingerprint"] = inputs.DatasetFingerprint,
            ["training_images"] = inputs.Training.Images.Count,
            ["validation_images"] = inputs.Validation.Images.Count,
            ["cmd_timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture),
            ["version"] = PlatformVersion,
            ["torch"] = "TorchSharp " + typeof(TorchSharp.torch).Assembly.GetName().Version,
        };
        return JsonSerializer.SerializeToUtf8Bytes(args, Json);
    }

    /// <summary>
    /// The training choices a checkpoint's hparams.json records besides what is needed to run the model: the optimiser,
    /// its learning rate and weight decay, the schedule, the class weighting and the sampler.
    /// </summary>
    public static IReadOnlyDictionary<string, string> HparamsExtras(TrainingInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var o = inputs.Options;
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["optimizer"] = o.Optimizer.Name(),
            ["lr"] = o.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["weight_decay"] = o.EffectiveWeightDecay.ToString("R", CultureInfo.InvariantCulture),
            ["lr_schedule"] = o.LrSchedule.Name(),
            ["class_weights"] = o.ClassWeights.ToString(),
            ["sampler"] = ClassWeights.Name(o.Sampler),
        };
    }

    /// <summary>The training loss's weight of each class by name, or null when every class weighs 1.</summary>
    private static SortedDictionary<string, double>? ClassWeightValues(TrainingInputs inputs)
    {
        var weights = inputs.Options.ClassWeights.Resolve(inputs.Classes, inputs.Training.Images);
        return weights is null ? null
            : new SortedDictionary<string, double>(inputs.Classes.Select((c, i) => KeyValuePair.Create(c, weights[i]))
                .ToDictionary(StringComparer.Ordinal), StringComparer.Ordinal);
    }

    /// <summary>
    /// neuston's default results series for the best epoch (upstream neuston_net.py:51-52,
    /// neuston_callbacks.py:20-156), as JSON: 0-based indices, float32 scores (not float16), plus precision/recall per
    /// class and the weighted/macro averages, and the per-class score thresholds (<c>class_thresholds</c>, null = none;
    /// <c>class_thresholds_f1</c>, each class's F1 with its threshold; see <see cref="ClassThresholdSearch"/>).
    /// </summary>
    internal static byte[] ResultsJson(TrainingInputs inputs, int epoch, ClassificationMetrics metrics, ValidationPass validation,
        Func<string, string> display, IReadOnlyList<ClassThreshold> thresholds)
    {
        var validationImages = validation.Indices.Select(i => inputs.Validation.Images[i]).ToList();
        var training = inputs.Training.Images.OrderBy(i => i.ClassIndex).ThenBy(i => i.Path, StringComparer.Ordinal).ToList();
        var classCount = inputs.Classes.Count;
        var counts = new int[classCount];
        foreach (var image in inputs.Training.Images.Concat(inputs.Validation.Images))
            counts[image.ClassIndex]++;
        var results = new Dictionary<string, object?>
        {
            ["model_id"] = inputs.Options.EffectiveModelId,
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture),
            ["epoch"] = epoch,
            ["class_labels"] = inputs.Classes,
            ["input_classes"] = validation.Truth,
            ["output_classes"] = validation.Predicted,
            ["image_basenames"] = validationImages.Select(i => Path.GetFileNameWithoutExtension(i.Path)).ToList(),
            ["image_fullpaths"] = validationImages.Select(i => display(i.Path)).ToList(),
            ["training_image_basenames"] = training.Select(i => Path.GetFileNameWithoutExtension(i.Path)).ToList(),
            ["training_classes"] = training.Select(i => i.ClassIndex).ToList(),
            ["output_scores"] = validation.Scores,
            ["confusion_matrix"] = Rows(metrics.ConfusionMatrix),
            ["counts_perclass"] = counts,
            ["val_counts_perclass"] = metrics.Support,
            ["f1_perclass"] = metrics.F1,
            ["precision_perclass"] = metrics.Precision,
            ["recall_perclass"] = metrics.Recall,
            ["f1_weighted"] = metrics.F1Weighted,
            ["f1_macro"] = metrics.F1Macro,
            ["precision_weighted"] = metrics.PrecisionWeighted,
            ["precision_macro"] = metrics.PrecisionMacro,
            ["recall_weighted"] = metrics.RecallWeighted,
            ["recall_macro"] = metrics.RecallMacro,
            ["accuracy"] = metrics.Accuracy,
            ["classes_by_f1"] = ClassificationMetrics.ClassesBy(metrics.F1),
            ["classes_by_count"] = ClassificationMetrics.ClassesBy([.. counts.Select(c => (double)c)]),
            ["class_thresholds"] = thresholds.Select(t => t.Threshold).ToList(),
            ["class_thresholds_f1"] = thresholds.Select(t => t.F1).ToList(),
            ["class_thresholds_min_validation_images"] = ClassThresholdSearch.MinimumValidationImages,
        };
        return JsonSerializer.SerializeToUtf8Bytes(results, Json);
    }

    internal static int[][] Rows(int[,] matrix) =>
        [.. Enumerable.Range(0, matrix.GetLength(0))
            .Select(r => Enumerable.Range(0, matrix.GetLength(1)).Select(c => matrix[r, c]).ToArray())];
}

/// <summary>The best epoch's metrics, kept so a resumed run can report them without recomputing.</summary>
internal sealed record BestMetricsDocument(int Epoch, int[][] ConfusionMatrix, double[] Precision, double[] Recall, double[] F1,
    int[] Support, double F1Macro, double F1Weighted, double PrecisionMacro, double PrecisionWeighted, double RecallMacro,
    double RecallWeighted, double Accuracy)
{
    public static BestMetricsDocument From(int epoch, ClassificationMetrics m) => new(epoch, TrainingOutputs.Rows(m.ConfusionMatrix),
        m.Precision, m.Recall, m.F1, m.Support, m.F1Macro, m.F1Weighted, m.PrecisionMacro, m.PrecisionWeighted, m.RecallMacro,
        m.RecallWeighted, m.Accuracy);

    public ClassificationMetrics ToMetrics()
    {
        var n = ConfusionMatrix.Length;
        var matrix = new int[n, n];
        for (var r = 0; r < n; r++)
            for (var c = 0; c < n; c++)
                matrix[r, c] = ConfusionMatrix[r][c];
        return new ClassificationMetrics(matrix, Precision, Recall, F1, Support, F1Macro, F1Weighted, PrecisionMacro,
            PrecisionWeighted, RecallMacro, RecallWeighted, Accuracy);
    }
}
