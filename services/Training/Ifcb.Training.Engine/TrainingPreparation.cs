using System.Security.Cryptography;
using Ifcb.Data.Datasets;
using Ifcb.Data.Loading;
using Ifcb.Models;
using Ifcb.Models.Weights;

namespace Ifcb.Training.Engine;

/// <summary>Turns options plus a class-folder dataset into <see cref="TrainingInputs"/>: seed, classes, split, model factory.</summary>
public static class TrainingPreparation
{
    /// <summary>neuston's <c>seed_everything(seed or None)</c>: 0 picks a random non-zero uint32 seed, which is then recorded.</summary>
    public static long ResolveSeed(long requested) =>
        requested != 0 ? requested : RandomNumberGenerator.GetInt32(1, int.MaxValue);

    /// <summary>
    /// Builds the inputs for a dataset already on local disk: <paramref name="source"/> is a folder with one folder per
    /// class, or a dataset-config CSV merging several such folders (<see cref="DatasetSpec.FromSource"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Bad options (message says which and how to fix).</exception>
    /// <exception cref="InvalidOperationException">Fewer than two classes or an empty split after the filters.</exception>
    /// <exception cref="ArgumentException">The class-weights file does not fit the run's classes.</exception>
    public static TrainingInputs FromSource(TrainingOptions options, string source, IWeightsStore? weights,
        string? datasetFingerprint = null, Func<string, string>? displayPath = null) =>
        FromSpec(options, seed => DatasetSpec.FromSource(source, options.DatasetOptions(seed)), LocalFileImageSource.Instance,
            weights, datasetFingerprint, displayPath);

    public static TrainingInputs FromSpec(TrainingOptions options, Func<int, DatasetSpec> buildSpec, IImageSource images,
        IWeightsStore? weights, string? datasetFingerprint = null, Func<string, string>? displayPath = null)
    {
        options.Validate();
        var seed = ResolveSeed(options.Seed);
        var datasetSeed = unchecked((int)seed);
        var spec = buildSpec(datasetSeed);
        if (spec.Classes.Count < 2)
            throw new InvalidOperationException(
                $"Training needs at least 2 classes; after class-config and class-min {options.ClassMin} the dataset has " +
                $"{spec.Classes.Count} ({string.Join(", ", spec.Classes)}). Lower class-min or add images.");
        var (training, validation) = spec.Split(options.Split, datasetSeed, options.Swap);
        if (training.Images.Count == 0 || validation.Images.Count == 0)
            throw new InvalidOperationException(
                $"The {options.Split} split leaves {training.Images.Count} training and {validation.Images.Count} validation images; " +
                "both must be non-empty. Add images or change --split.");

        var classes = spec.Classes;
        // Fails now, naming the classes, rather than after the model is built.
        options.ClassWeights.Resolve(classes, training.Images);
        return new TrainingInputs(options, seed, classes, training, validation, images,
            cancellationToken => CreateModelAsync(options, classes.Count, weights, cancellationToken),
            datasetFingerprint, displayPath);
    }

    /// <summary>
    /// The classes a run of <paramref name="options"/> trains on a dataset with these image counts per class folder:
    /// the class-config and class-min applied exactly as <see cref="DatasetSpec"/> applies them (class-max drops no
    /// class). Lets the service check a class-weights file at submission, before any image is read.
    /// </summary>
    public static IReadOnlyList<string> TrainedClasses(IReadOnlyDictionary<string, int> countPerClass, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(countPerClass);
        ArgumentNullException.ThrowIfNull(options);
        var classMin = options.DatasetOptions(0).EffectiveClassMin;
        // Only whether a (merged) class reaches class-min matters, so no folder needs more than class-min stand-ins.
        var standIns = countPerClass.ToDictionary(kv => kv.Key,
            kv => (IReadOnlyList<string>)[.. Enumerable.Range(0, Math.Min(kv.Value, classMin)).Select(i => $"{kv.Key}/{i}")],
            StringComparer.Ordinal);
        return DatasetSpec.FromImagesPerClass("", standIns, options.DatasetOptions(0) with { ClassMax = null }).Classes;
    }

    /// <summary>
    /// A fresh model: ImageNet weights from the store when pretrained (never a silent fallback to random weights),
    /// else random init.
    /// </summary>
    /// <exception cref="WeightsNotFoundException">Pretrained requested and the store lacks the architecture's file.</exception>
    public static async Task<ClassifierNet> CreateModelAsync(TrainingOptions options, int classCount, IWeightsStore? weights,
        CancellationToken cancellationToken)
    {
        if (!options.Pretrained)
            return ModelZoo.Create(options.Architecture, classCount, pretrainedLayout: false);
        if (weights is null)
            throw new WeightsNotFoundException(options.Architecture, "a weights store (none is configured)");
        return await PretrainedWeights.CreateAsync(weights, options.Architecture, classCount, cancellationToken);
    }
}
