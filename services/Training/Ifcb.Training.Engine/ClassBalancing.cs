using System.Globalization;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Training.Engine;

/// <summary>How <c>--class-weights</c> weighs each class in the training loss.</summary>
public enum ClassWeightMode
{
    /// <summary>Every class weighs 1 (neuston main).</summary>
    None,

    /// <summary>scikit-learn's "balanced": n_samples / (n_classes · count of the class), over the training set.</summary>
    Balanced,

    /// <summary>A weight per class from a <c>class,weight</c> CSV.</summary>
    File,
}

/// <summary>How <c>--sampler</c> draws each epoch's training images.</summary>
public enum SamplerKind
{
    /// <summary>Every training image once per epoch, shuffled (neuston).</summary>
    None,

    /// <summary>
    /// As many draws as there are training images, with replacement, each image drawn with probability proportional to
    /// 1 / (count of its class), so every class is drawn equally often on average; deterministic per seed and epoch.
    /// </summary>
    Balanced,
}

/// <summary>
/// <c>--class-weights none|balanced|FILE</c>: per-class weights of the training cross-entropy, as
/// <c>torch.nn.CrossEntropyLoss(weight=w)</c> (the mean is Σ w[y]·loss / Σ w[y]). They apply to the training loss only:
/// val_loss stays the unweighted cross-entropy, so it remains comparable across runs and with neuston.
/// </summary>
public sealed record ClassWeights
{
    /// <summary>The largest weight a file may give a class.</summary>
    public const double MaxWeight = 1e6;

    private ClassWeights(ClassWeightMode mode, IReadOnlyDictionary<string, double>? table)
    {
        Mode = mode;
        Table = table;
    }

    /// <summary>Every class weighs 1 (neuston).</summary>
    public static ClassWeights None { get; } = new(ClassWeightMode.None, null);

    /// <summary>scikit-learn's balanced weights, computed on the training split.</summary>
    public static ClassWeights Balanced { get; } = new(ClassWeightMode.Balanced, null);

    /// <summary>Where the weights come from.</summary>
    public ClassWeightMode Mode { get; }

    /// <summary>The file's weights by class name (<see cref="ClassWeightMode.File"/> only).</summary>
    public IReadOnlyDictionary<string, double>? Table { get; }

    /// <summary>"none", "balanced" or "file".</summary>
    public override string ToString() => Mode.ToString().ToLowerInvariant();

    /// <summary>
    /// The weighting a job asks for: <paramref name="mode"/> none (or empty), balanced, or file with
    /// <paramref name="csv"/> (an empty mode with a CSV is file too).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown mode, a CSV with another mode, file without a CSV, a bad CSV.</exception>
    public static ClassWeights Parse(string? mode, string? csv)
    {
        var name = mode?.Trim().ToLowerInvariant();
        var hasCsv = !string.IsNullOrWhiteSpace(csv);
        if (hasCsv && name is not (null or "" or "file"))
            throw new ArgumentException($"class_weights_csv is given but class_weights is '{mode}'; set class_weights to 'file'.",
                nameof(mode));
        return name switch
        {
            null or "" when hasCsv => FromCsv(csv!),
            null or "" or "none" => None,
            "balanced" => Balanced,
            "file" when hasCsv => FromCsv(csv!),
            "file" => throw new ArgumentException("class_weights 'file' needs class_weights_csv: the 'class,weight' rows.",
                nameof(csv)),
            _ => throw new ArgumentException($"class_weights '{mode}' is not one of none, balanced, file.", nameof(mode)),
        };
    }

    /// <summary>
    /// A <c>class,weight</c> CSV: one row per class, an optional header row, blank lines ignored; the last comma of a row
    /// separates the class name from its weight.
    /// </summary>
    /// <exception cref="ArgumentException">A malformed row, a duplicate class, a weight that is not in (0, 1e6].</exception>
    public static ClassWeights FromCsv(string csv)
    {
        ArgumentNullException.ThrowIfNull(csv);
        if (csv.Length > Limits.MaxClassConfigBytes)
            throw new ArgumentException(
                $"The class-weights CSV has {csv.Length} characters; the limit is {Limits.MaxClassConfigBytes}.", nameof(csv));
        var table = new Dictionary<string, double>(StringComparer.Ordinal);
        var lines = csv.TrimStart('\uFEFF').Split('\n');
        var firstRow = true;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line))
                continue;
            var comma = line.LastIndexOf(',');
            var name = comma < 0 ? "" : line[..comma].Trim().Trim('"');
            var weightText = comma < 0 ? "" : line[(comma + 1)..].Trim();
            var isNumber = double.TryParse(weightText, NumberStyles.Float, CultureInfo.InvariantCulture, out var weight);
            if (firstRow && !isNumber && comma >= 0)
            {
                firstRow = false; // a header such as "class,weight"
                continue;
            }
            firstRow = false;
            if (comma < 0 || name.Length == 0 || !isNumber)
                throw new ArgumentException(
                    $"class-weights CSV line {i + 1} ('{Shorten(line)}') is not 'class,weight' with a number as the weight.",
                    nameof(csv));
            if (!double.IsFinite(weight) || weight <= 0 || weight > MaxWeight)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"class-weights CSV line {i + 1}: the weight of '{name}' is {weightText}; " +
                    $"it must be above 0 and at most {MaxWeight}."), nameof(csv));
            if (!table.TryAdd(name, weight))
                throw new ArgumentException($"class-weights CSV line {i + 1}: class '{name}' is listed twice.", nameof(csv));
            if (table.Count > Limits.MaxClasses)
                throw new ArgumentException($"The class-weights CSV lists more than {Limits.MaxClasses} classes.", nameof(csv));
        }
        if (table.Count == 0)
            throw new ArgumentException("The class-weights CSV has no 'class,weight' rows.", nameof(csv));
        return new ClassWeights(ClassWeightMode.File, table);
    }

    /// <summary>
    /// The weight of each class in <paramref name="classes"/> order, or null for <see cref="ClassWeightMode.None"/>.
    /// Balanced weights count <paramref name="training"/>, the images the weighted loss is computed on.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The file names a class the run does not train, or lacks one it does; or a class has no training image (balanced).
    /// </exception>
    public double[]? Resolve(IReadOnlyList<string> classes, IReadOnlyList<LabelledImage> training)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(training);
        if (Mode == ClassWeightMode.Balanced)
            return BalancedWeights(classes, CountPerClass(classes.Count, training));
        if (Mode != ClassWeightMode.File)
            return null;
        CheckClasses(classes);
        return [.. classes.Select(c => Table![c])];
    }

    /// <summary>For a weights file: checks that it gives every class of <paramref name="classes"/> a weight, and no other.</summary>
    /// <exception cref="ArgumentException">Names the unknown and the missing classes.</exception>
    public void CheckClasses(IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (Table is null)
            return;
        var unknown = Table.Keys.Where(k => !classes.Contains(k, StringComparer.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var missing = classes.Where(c => !Table.ContainsKey(c)).ToList();
        var problems = new List<string>();
        if (unknown.Count > 0)
            problems.Add($"The class-weights file names {unknown.Count} class(es) this run does not train: {List(unknown)}.");
        if (missing.Count > 0)
            problems.Add($"It has no weight for {missing.Count} class(es): {List(missing)}; " +
                "add a 'class,weight' row for each (use 1 to leave a class as it is).");
        if (problems.Count > 0)
            throw new ArgumentException(string.Join(" ", problems) +
                $" The run's classes (after class-config and class-min) are: {List(classes)}.");
    }

    /// <summary>scikit-learn's <c>compute_class_weight("balanced")</c>: n_samples / (n_classes · count[c]).</summary>
    /// <exception cref="ArgumentException">A class has no training image.</exception>
    public static double[] BalancedWeights(IReadOnlyList<string> classes, IReadOnlyList<int> counts)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(counts);
        var empty = Enumerable.Range(0, classes.Count).Where(c => counts[c] == 0).Select(c => classes[c]).ToList();
        if (empty.Count > 0)
            throw new ArgumentException(
                $"Balanced class weights are undefined: no training images for {List(empty)} (--swap or a tiny class?). " +
                "Give those classes more images, raise class-min, or pass a class-weights file.");
        double total = counts.Sum();
        return [.. counts.Select(n => total / (classes.Count * (double)n))];
    }

    /// <summary>Training images per class.</summary>
    public static int[] CountPerClass(int classCount, IEnumerable<LabelledImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var counts = new int[classCount];
        foreach (var image in images)
            counts[image.ClassIndex]++;
        return counts;
    }

    /// <summary>The sampling weight of each training image for <see cref="SamplerKind.Balanced"/>: 1 / (count of its class).</summary>
    public static double[] BalancedSampleWeights(int classCount, IReadOnlyList<LabelledImage> training)
    {
        ArgumentNullException.ThrowIfNull(training);
        var counts = CountPerClass(classCount, training);
        return [.. training.Select(i => 1.0 / counts[i.ClassIndex])];
    }

    /// <summary>"none" or "balanced".</summary>
    public static string Name(SamplerKind sampler) => sampler == SamplerKind.Balanced ? "balanced" : "none";

    /// <summary>A sampler name (case-insensitive); null or empty is none.</summary>
    /// <exception cref="ArgumentException">Not none or balanced.</exception>
    public static SamplerKind ParseSampler(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "none" => SamplerKind.None,
        "balanced" => SamplerKind.Balanced,
        _ => throw new ArgumentException($"sampler '{name}' is not one of none, balanced.", nameof(name)),
    };

    private static string List(IEnumerable<string> names)
    {
        var all = names.ToList();
        var shown = string.Join(", ", all.Take(20).Select(n => $"'{n}'"));
        return all.Count > 20 ? $"{shown} and {all.Count - 20} more" : shown;
    }

    private static string Shorten(string line) => line.Length <= 60 ? line : line[..60] + "…";
}
