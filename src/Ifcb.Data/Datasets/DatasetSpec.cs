using System.Globalization;

namespace Ifcb.Data.Datasets;

/// <summary>neuston's <c>--split T:V</c>; T + V must be 100.</summary>
public readonly record struct SplitRatio
{
    public SplitRatio(int training, int validation)
    {
        if (training < 0 || validation < 0 || training + validation != 100)
            throw new ArgumentException(
                $"Split {training}:{validation} is invalid; the two parts must be non-negative and sum to 100 (e.g. 80:20).");
        Training = training;
        Validation = validation;
    }

    public int Training { get; }
    public int Validation { get; }

    public static SplitRatio Default { get; } = new(80, 20);

    /// <exception cref="ArgumentException">Not "T:V" with integers summing to 100.</exception>
    public static SplitRatio Parse(string text)
    {
        var parts = (text ?? "").Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var t)
                              || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new ArgumentException($"Split \"{text}\" must be two integers T:V summing to 100, e.g. 80:20.", nameof(text));
        return new SplitRatio(t, v);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Training}:{Validation}");
}

/// <summary>
/// How to build a dataset: neuston's <c>--class-min</c> (default 2), <c>--class-max</c>, <c>--class-config</c>, and the
/// seed for class-max sampling.
/// </summary>
public sealed record DatasetOptions(int ClassMin = 2, int? ClassMax = null, ClassConfig? ClassConfig = null, int Seed = 0)
{
    /// <summary>neuston: <c>max(1, MIN)</c>.</summary>
    public int EffectiveClassMin => Math.Max(1, ClassMin);
}

/// <summary>What building the dataset did to the source classes (neuston prints these; we return them).</summary>
public sealed record DatasetReport(
    IReadOnlyList<(string Class, int Count)> DroppedTooFewImages,
    IReadOnlyList<string> LimitedToClassMax,
    IReadOnlyList<string> SkippedByConfig,
    IReadOnlyDictionary<string, IReadOnlyList<string>> MergedByConfig,
    IReadOnlyList<string> ConfigClassesMissingFromSource,
    IReadOnlyList<string> SourceClassesMissingFromConfig,
    IReadOnlyList<string>? DatasetConfigNotes = null)
{
    public static DatasetReport Empty { get; } = new([], [], [], new Dictionary<string, IReadOnlyList<string>>(), [], []);
}

/// <summary>
/// A labelled image set with neuston's semantics: classes are the ordinal-sorted class names, images are ordered by
/// class index then full path. Build one with <see cref="FromSource"/> (neuston's SRC: a folder of class subfolders or a
/// dataset-config CSV), <see cref="FromFolder"/> or <see cref="FromImagesPerClass"/>, then <see cref="Split"/> it.
/// </summary>
public sealed record DatasetSpec(
    string Source, IReadOnlyList<string> Classes, IReadOnlyList<LabelledImage> Images, int EffectiveClassMin, DatasetReport Report)
{
    public IReadOnlyList<int> CountPerClass
    {
        get
        {
            var counts = new int[Classes.Count];
            foreach (var image in Images)
                counts[image.ClassIndex]++;
            return counts;
        }
    }

    /// <summary>
    /// Lists the class subfolders of <paramref name="root"/> (one level, ordinal order) and their image files
    /// (extensions in <see cref="ImageFileTypes"/>, case-insensitive), as full paths sorted ordinally.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="root"/> does not exist.</exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ListClassFolders(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"Dataset folder {full} does not exist; it should contain one subfolder per class.");
        var result = new SortedDictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(full))
        {
            result[Path.GetFileName(dir)] = Directory.EnumerateFiles(dir)
                .Where(f => ImageFileTypes.IsImageFile(f))
                .Order(StringComparer.Ordinal)
                .ToList();
        }
        return result;
    }

    /// <summary>Builds a dataset from a folder of class subfolders (neuston's SRC directory).</summary>
    public static DatasetSpec FromFolder(string root, DatasetOptions? options = null) =>
        FromImagesPerClass(Path.GetFullPath(root), ListClassFolders(root), options ?? new DatasetOptions());

    /// <summary>
    /// neuston's SRC: a <see cref="DatasetConfig"/> CSV merging several class-folder datasets when
    /// <paramref name="source"/> is an existing <c>.csv</c> file, else a folder of class subfolders.
    /// </summary>
    public static DatasetSpec FromSource(string source, DatasetOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        if (!DatasetConfig.IsConfigFile(source))
            return FromFolder(source, options);
        var config = DatasetConfig.Load(source);
        var tiers = config.Collect(DatasetConfig.ClassFoldersNextTo(source));
        return FromTieredImagesPerClass(Path.GetFullPath(source), tiers, options ?? new DatasetOptions());
    }

    /// <summary>
    /// Applies the class-config (rename/merge/skip), then class-min, then class-max (seeded sample, result sorted),
    /// and orders everything neuston's way.
    /// </summary>
    /// <exception cref="ArgumentException">ClassMax is not greater than the effective class-min.</exception>
    public static DatasetSpec FromImagesPerClass(string source, IReadOnlyDictionary<string, IReadOnlyList<string>> imagesPerClass,
        DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(imagesPerClass);
        var oneLevel = imagesPerClass.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<IReadOnlyList<string>>)[kv.Value],
            StringComparer.Ordinal);
        return FromTieredImagesPerClass(source, new TieredImages(oneLevel, []), options);
    }

    /// <summary>
    /// <see cref="FromImagesPerClass"/> for images grouped by priority level (a dataset-config's datasets): class-max
    /// takes whole levels first and samples only within the level that overflows.
    /// </summary>
    public static DatasetSpec FromTieredImagesPerClass(string source, TieredImages tiered, DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(tiered);
        ArgumentNullException.ThrowIfNull(options);
        var imagesPerClass = tiered.PerClass;
        var levelCount = imagesPerClass.Values.Select(t => t.Count).DefaultIfEmpty(1).Max();
        var classMin = options.EffectiveClassMin;
        if (options.ClassMax is { } max && max <= classMin)
            throw new ArgumentException($"--class-max {max} must be greater than --class-min {classMin}.", nameof(options));

        var skipped = new List<string>();
        var merged = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var missingFromSource = new List<string>();
        var missingFromConfig = new List<string>();
        Dictionary<string, List<string>[]> perClass;
        List<string>[] NewLevels() => Enumerable.Range(0, levelCount).Select(_ => new List<string>()).ToArray();
        if (options.ClassConfig is { } config)
        {
            perClass = new Dictionary<string, List<string>[]>(StringComparer.Ordinal);
            var listed = new HashSet<string>(StringComparer.Ordinal);
            var renames = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (var entry in config.Entries)
            {
                listed.Add(entry.BaseClass);
                if (!imagesPerClass.TryGetValue(entry.BaseClass, out var baseImages))
                {
                    missingFromSource.Add(entry.BaseClass);
                    continue;
                }
                if (entry.Action == ClassAction.Skip)
                {
                    skipped.Add(entry.BaseClass);
                    continue;
                }
                var target = entry.Target!;
                if (entry.Action == ClassAction.Rename)
                {
                    if (!renames.TryGetValue(target, out var bases))
                        renames[target] = bases = [];
                    bases.Add(entry.BaseClass);
                }
                if (!perClass.TryGetValue(target, out var levels))
                    perClass[target] = levels = NewLevels();
                for (var level = 0; level < baseImages.Count; level++)
                    levels[level].AddRange(baseImages[level]);
            }
            missingFromConfig.AddRange(imagesPerClass.Keys.Where(c => !listed.Contains(c)).Order(StringComparer.Ordinal));
            foreach (var (target, bases) in renames)
                merged[target] = bases;
        }
        else
        {
            perClass = imagesPerClass.ToDictionary(kv => kv.Key, kv =>
            {
                var levels = NewLevels();
                for (var level = 0; level < kv.Value.Count; level++)
                    levels[level].AddRange(kv.Value[level]);
                return levels;
            }, StringComparer.Ordinal);
        }

        var counts = perClass.ToDictionary(kv => kv.Key, kv => kv.Value.Sum(l => l.Count), StringComparer.Ordinal);
        var tooFew = counts.Where(kv => kv.Value < classMin).OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, kv.Value)).ToList();
        var classes = counts.Keys.Where(c => counts[c] >= classMin).Order(StringComparer.Ordinal).ToList();
        var limited = new List<string>();
        var rng = new Random(options.Seed);
        var images = new List<LabelledImage>();
        for (var index = 0; index < classes.Count; index++)
        {
            var levels = perClass[classes[index]];
            var list = levels.SelectMany(l => l).ToList();
            if (options.ClassMax is { } cap && list.Count > cap)
            {
                list = TakeByLevel(levels, cap, rng);
                limited.Add(classes[index]);
            }
            images.AddRange(list.Order(StringComparer.Ordinal).Select(p => new LabelledImage(p, index)));
        }
        var report = new DatasetReport(tooFew, limited, skipped, merged, missingFromSource, missingFromConfig, tiered.Notes);
        return new DatasetSpec(source, classes, images, classMin, report);
    }

    // Whole levels while they fit, then a seeded sample of the level that overflows (with one level: a seeded sample).
    private static List<string> TakeByLevel(IReadOnlyList<List<string>> levels, int cap, Random rng)
    {
        var taken = new List<string>(cap);
        foreach (var level in levels)
        {
            if (taken.Count + level.Count <= cap)
                taken.AddRange(level);
            else
            {
                taken.AddRange(SeededSample.Take(level, cap - taken.Count, rng));
                break;
            }
        }
        return taken;
    }

    /// <summary>
    /// neuston's per-class split: <c>n1 = (int)(T*n/100.0 + 0.5)</c>, minus one when that would leave validation
    /// empty and class-min &gt; 1; the training subset is a random sample drawn with a generator re-seeded with
    /// <paramref name="seed"/> before every class (System.Random, so the same seed gives the same split every time, but
    /// not the same images as CPython's random). Both subsets keep all classes and are ordered by class, then path.
    /// </summary>
    public (DatasetSpec Training, DatasetSpec Validation) Split(SplitRatio ratio, int seed, bool swap = false)
    {
        var first = new List<LabelledImage>();
        var second = new List<LabelledImage>();
        foreach (var group in Images.GroupBy(i => i.ClassIndex).OrderBy(g => g.Key))
        {
            var images = group.Select(i => i.Path).Order(StringComparer.Ordinal).ToList();
            var n = images.Count;
            var firstCount = (int)((ratio.Training * n / 100.0) + 0.5);
            if (firstCount == n && EffectiveClassMin > 1)
                firstCount--;
            var sample = SeededSample.Take(images, firstCount, new Random(seed));
            var chosen = new HashSet<string>(sample, StringComparer.Ordinal);
            first.AddRange(sample.Select(p => new LabelledImage(p, group.Key)));
            second.AddRange(images.Where(p => !chosen.Contains(p)).Select(p => new LabelledImage(p, group.Key)));
        }
        var training = this with { Images = first };
        var validation = this with { Images = second };
        return swap ? (validation, training) : (training, validation);
    }
}

/// <summary>
/// Seeded sampling without replacement (partial Fisher–Yates); the result is sorted ordinally, as neuston sorts its
/// samples.
/// </summary>
public static class SeededSample
{
    public static List<string> Take(IReadOnlyList<string> items, int count, Random random)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(random);
        if (count < 0 || count > items.Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Cannot sample {count} of {items.Count} items.");
        var pool = items.ToArray();
        for (var i = 0; i < count; i++)
        {
            var j = random.Next(i, pool.Length);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        return pool.Take(count).Order(StringComparer.Ordinal).ToList();
    }
}

/// <summary>neuston's <c>training_images.list</c> / <c>validation_images.list</c>: sorted full paths joined with "\n".</summary>
public static class ImageLists
{
    public const string TrainingFileName = "training_images.list";
    public const string ValidationFileName = "validation_images.list";

    public static string Format(IEnumerable<LabelledImage> images) =>
        string.Join('\n', images.Select(i => i.Path).Order(StringComparer.Ordinal));

    /// <summary>Writes both lists into <paramref name="directory"/> and returns their paths.</summary>
    public static (string TrainingPath, string ValidationPath) Write(string directory, DatasetSpec training, DatasetSpec validation)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(validation);
        Directory.CreateDirectory(directory);
        var t = Path.Combine(directory, TrainingFileName);
        var v = Path.Combine(directory, ValidationFileName);
        File.WriteAllText(t, Format(training.Images));
        File.WriteAllText(v, Format(validation.Images));
        return (t, v);
    }
}
