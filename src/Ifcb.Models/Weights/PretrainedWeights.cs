using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>
/// ImageNet weights: import (validated against the 1000-class torchvision model) and load into an N-class model with the
/// head left at its fresh init, exactly as neuston replaces the head after <c>pretrained=True</c>. Missing weights are an
/// error, never a silent random init.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>Classes of the ImageNet files torchvision ships.</summary>
    public const int ImageNetClasses = 1000;

    /// <summary>The file names looked up for an architecture, in order of preference.</summary>
    public static IReadOnlyList<string> FileNames(string architecture)
    {
        var name = ModelZoo.PretrainedWeightsName(architecture);
        return [name + StateDictFile.Extension(WeightsFormat.Safetensors), name + StateDictFile.Extension(WeightsFormat.PyTorch)];
    }

    /// <summary>
    /// neuston's <c>pretrained=True</c> path: builds the model in pretrained layout and loads everything but the head,
    /// straight from the stored file into the model (see <see cref="StateDictReader"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown architecture, or one without pretrained weights (inception_v4).</exception>
    /// <exception cref="WeightsNotFoundException">The store has no file for it.</exception>
    /// <exception cref="WeightsMismatchException">The stored file does not fit the architecture.</exception>
    public static async Task<ClassifierNet> CreateAsync(
        IWeightsStore store, string architecture, int numClasses, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var fileNames = FileNames(architecture);
        foreach (var fileName in fileNames)
        {
            await using var stream = await store.OpenReadAsync(fileName, cancellationToken);
            if (stream is null)
                continue;
            using var reader = StateDictReader.Open(stream, StateDictFile.FormatOf(fileName));
            var model = ModelZoo.Create(architecture, numClasses, pretrainedLayout: true);
            try
            {
                var comparison = reader.CompareTo(model, model.HeadKeys);
                if (!comparison.Matches)
                    throw new WeightsMismatchException(model.Architecture, comparison);
                reader.LoadInto(model, skip: model.HeadKeys);
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        throw new WeightsNotFoundException(architecture, string.Join(" or ", fileNames.Select(store.Describe)));
    }

    /// <summary>Copies every ImageNet tensor except the replaced head into <paramref name="model"/>.</summary>
    /// <exception cref="WeightsMismatchException">A non-head key is missing, unexpected or of another shape.</exception>
    public static void LoadExceptHead(ClassifierNet model, IReadOnlyDictionary<string, Tensor> imageNetStateDict)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(imageNetStateDict);
        var comparison = StateDictComparison.Compare(model, imageNetStateDict, model.HeadKeys);
        if (!comparison.Matches)
            throw new WeightsMismatchException(model.Architecture, comparison);
        var head = new HashSet<string>(model.HeadKeys, StringComparer.Ordinal);
        var body = imageNetStateDict.Where(kv => !head.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        using (no_grad())
            model.load_state_dict(body, strict: false);
    }

    /// <summary>
    /// Validates a torchvision ImageNet state dict for <paramref name="architecture"/> (every key and shape of the
    /// 1000-class model, nothing else) and stores it under its canonical name.
    /// </summary>
    /// <returns>The file name it was stored under.</returns>
    /// <exception cref="WeightsMismatchException">The file does not fit (the message lists missing/unexpected/mismatched keys).</exception>
    /// <exception cref="InvalidDataException">The file is not a readable state dict.</exception>
    public static async Task<string> ImportAsync(
        IWeightsStore store, string architecture, Stream content, WeightsFormat format, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(content);
        var fileName = ModelZoo.PretrainedWeightsName(architecture) + StateDictFile.Extension(format);
        // Checked from a temporary file, not memory: ImageNet files are 50–550 MB, and are read one tensor at a time.
        await using var file = new FileStream(Path.GetTempFileName(), FileMode.Open, FileAccess.ReadWrite, FileShare.None, 81920,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await content.CopyToAsync(file, cancellationToken);
        file.Position = 0;
        using (var reader = StateDictReader.Open(file, format))
        using (var reference = ModelZoo.Create(architecture, ImageNetClasses, pretrainedLayout: true))
        {
            var comparison = reader.CompareTo(reference);
            if (!comparison.Matches)
                throw new WeightsMismatchException(architecture, comparison);
            // Every tensor's bytes must be there too (a truncated download would otherwise fail only at training time).
            foreach (var name in reader.Tensors.Keys)
                reader.Read(name).Dispose();
        }
        file.Position = 0;
        await store.WriteAsync(fileName, file, cancellationToken);
        return fileName;
    }
}
