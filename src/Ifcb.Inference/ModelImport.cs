using System.Globalization;
using System.Reflection;
using Ifcb.Contracts;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Weights;
using Ifcb.Platform;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>What a bare torchvision state dict does not say about itself.</summary>
/// <param name="Architecture">Zoo name, e.g. <c>resnet18</c>, <c>inception_v3</c>.</param>
/// <param name="Classes">Class names in output-index order; their count must equal the head's outputs.</param>
public sealed record StateDictImportSpec(string Architecture, IReadOnlyList<string> Classes)
{
    /// <summary>The normalisation the model was trained with, or null.</summary>
    public ImgNorm? ImgNorm { get; init; }

    /// <summary>
    /// neuston's pretrained flag; for inception_v3 it switches <c>transform_input</c> on (torchvision's ImageNet
    /// layout).
    /// </summary>
    public bool Pretrained { get; init; }

    /// <summary>Input side; null = the architecture's (299 for inception, else 224).</summary>
    public int? Resize { get; init; }

    /// <summary>null = the weights file's name without extension.</summary>
    public string? ModelId { get; init; }

    public long Seed { get; init; }
}

/// <summary>
/// Values that replace (or supply) a neuston checkpoint's <c>hyper_parameters</c>: for checkpoints whose hparams are
/// missing or hold pickled types this platform cannot read, or to correct them. Null = take the checkpoint's.
/// </summary>
public sealed record NeustonHparamsOverrides
{
    public string? Architecture { get; init; }
    public IReadOnlyList<string>? Classes { get; init; }
    public ImgNorm? ImgNorm { get; init; }
    public bool? Pretrained { get; init; }
    public int? Resize { get; init; }
    public string? ModelId { get; init; }
    public long? Seed { get; init; }
}

/// <summary>
/// Brings existing models onto the platform as a <see cref="LoadedCheckpoint"/> (save it with <see cref="Checkpoint.Save"/>):
/// a torchvision state dict plus its description, or a neuston_net Lightning <c>.ptl</c> checkpoint.
/// The hparams go through the same bounds as a checkpoint's (<see cref="ModelHparams.Validate"/>: class count and names,
/// resize…) before a model is built; the weights are then checked key by key and shape by shape against the zoo's
/// architecture and read from the file straight into the model (<see cref="TorchSaveArchive"/>, <see cref="StateDictReader"/>).
/// Files are read as data: a pickle never runs code here.
/// </summary>
public static class ModelImport
{
    private const string NeustonModelPrefix = "model.";

    /// <summary>Imports a <c>.pth</c>/<c>.pt</c> (torch.save) or <c>.safetensors</c> state dict with torchvision's keys.</summary>
    /// <exception cref="ArgumentException">
    /// Unknown architecture, no classes, the head's output count differs from the number of classes, or the keys/shapes
    /// do not fit the architecture.
    /// </exception>
    /// <exception cref="InvalidDataException">The file is not a readable state dict.</exception>
    public static LoadedCheckpoint FromStateDict(string weightsPath, StateDictImportSpec spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(weightsPath);
        ArgumentNullException.ThrowIfNull(spec);
        var format = StateDictFile.FormatOf(weightsPath);
        var hparams = new ModelHparams(
            spec.Architecture, spec.Classes, spec.Resize ?? ZooInputSize(spec.Architecture), spec.ImgNorm, spec.Pretrained, spec.Seed,
            spec.ModelId ?? Path.GetFileNameWithoutExtension(weightsPath), TrainingId: "imported", DatasetFingerprint: null,
            DateTimeOffset.UtcNow, PlatformVersion,
            new Dictionary<string, string>
            {
                ["imported_from"] = Path.GetFileName(weightsPath),
                ["import_format"] = format == WeightsFormat.Safetensors ? "torchvision-safetensors" : "torchvision-state-dict",
            });
        CheckBounds(hparams, e => new ArgumentException($"The import spec is out of bounds: {e.Message}", nameof(spec), e));
        using var stream = File.OpenRead(weightsPath);
        using var reader = StateDictReader.Open(stream, format);
        return Build(hparams, reader.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Shape, StringComparer.Ordinal), reader.ReadInto);
    }

    /// <summary>
    /// Imports a neuston_net <c>.ptl</c> (a <c>torch.save</c> dict with <c>state_dict</c> keys prefixed <c>model.</c> and
    /// <c>hyper_parameters</c> holding MODEL, classes, img_norm, pretrained, resize, model_id, seed), read as data by
    /// <see cref="TorchSaveArchive"/> (no Python needed, and nothing in the file is executed).
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The file is not a torch.save checkpoint, has no state_dict, lacks hparams that <paramref name="overrides"/> do not
    /// supply, or its hparams are out of bounds (the message names the field and the limit).
    /// </exception>
    /// <exception cref="ArgumentException">The weights do not fit the architecture or the class count.</exception>
    public static LoadedCheckpoint FromNeustonCheckpoint(string checkpointPath, NeustonHparamsOverrides? overrides = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointPath);
        overrides ??= new NeustonHparamsOverrides();
        using var stream = File.OpenRead(checkpointPath);
        TorchSaveArchive archive;
        try
        {
            archive = TorchSaveArchive.Open(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(
                $"Could not read {checkpointPath} as a torch.save checkpoint: {e.Message} " +
                "If it holds something this reader does not support, re-save it in Python without it, e.g. " +
                "torch.save({k[6:]: v for k, v in ckpt['state_dict'].items()}, 'weights.pth'), and import that state dict " +
                "with its architecture, classes and img_norm given explicitly.", e);
        }
        using (archive)
        {
            if (archive.Root is not PickleDict root || AsDict(root["state_dict"]) is not { } lightningState)
                throw new InvalidDataException(
                    $"{checkpointPath} has no 'state_dict' dict; keys are: " +
                    $"{string.Join(", ", (archive.Root as PickleDict)?.Keys ?? [])}. " +
                    "A bare model state dict is imported with FromStateDict.");
            var stateDict = new Dictionary<string, TorchTensorRef>(StringComparer.Ordinal);
            var ignored = new List<string>();
            foreach (var (entryKey, value) in lightningState)
            {
                var key = entryKey as string ?? "";
                if (key.StartsWith(NeustonModelPrefix, StringComparison.Ordinal) && value is TorchTensorRef tensor)
                    stateDict[key[NeustonModelPrefix.Length..]] = tensor;
                else
                    ignored.Add(key);
            }
            if (stateDict.Count == 0)
                throw new InvalidDataException(
                    $"{checkpointPath}: state_dict has no '{NeustonModelPrefix}*' tensors; is it a neuston_net checkpoint?");

            var stored = AsDict(root["hyper_parameters"]);
            var architecture = overrides.Architecture ?? Text(stored, "MODEL")
                ?? throw MissingHparam(checkpointPath, "MODEL", "architecture");
            var classes = overrides.Classes ?? Strings(stored, "classes") ?? throw MissingHparam(checkpointPath, "classes", "class list");
            var pretrained = overrides.Pretrained ?? (stored?["pretrained"] is bool b && b);
            var resize = overrides.Resize ?? (Number(stored, "resize") is { } r ? Resize(r, checkpointPath) : ZooInputSize(architecture));
            var imgNorm = overrides.ImgNorm ?? NeustonImgNorm(stored, checkpointPath);
            var modelId = overrides.ModelId ?? Text(stored, "model_id") ?? Path.GetFileNameWithoutExtension(checkpointPath);
            var seed = overrides.Seed ?? Number(stored, "seed") ?? 0;
            var extras = new Dictionary<string, string>
            {
                ["imported_from"] = Path.GetFileName(checkpointPath),
                ["import_format"] = "neuston-ptl",
            };
            foreach (var key in new[] { "epoch", "global_step", "pytorch-lightning_version" })
            {
                if (root[key] is (long or string) and var value)
                    extras[key] = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            }
            if (Text(stored, "version") is { } neustonVersion)
                extras["neuston_version"] = neustonVersion;
            if (ignored.Count > 0)
                extras["ignored_state_dict_keys"] = string.Join(",", ignored);
            var hparams = new ModelHparams(architecture, classes, resize, imgNorm, pretrained, seed, modelId,
                Text(stored, "TRAIN_ID") ?? "imported", DatasetFingerprint: null, DateTimeOffset.UtcNow, PlatformVersion, extras);
            CheckBounds(hparams, e => new InvalidDataException($"{checkpointPath}: {e.Message}", e));
            return Build(hparams, stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.Shape, StringComparer.Ordinal),
                (key, destination) => archive.ReadInto(stateDict[key], destination));
        }
    }

    private static string PlatformVersion =>
        typeof(ModelImport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static int ZooInputSize(string architecture) => ModelZoo.InputSize(architecture);

    // The limits a saved checkpoint must meet, checked before a model is built (Checkpoint.Save would refuse them anyway).
    private static void CheckBounds(ModelHparams hparams, Func<InvalidDataException, Exception> refuse)
    {
        try
        {
            hparams.Validate();
        }
        catch (InvalidDataException e)
        {
            throw refuse(e);
        }
    }

    private static int Resize(long resize, string path) =>
        resize is >= Limits.MinResize and <= Limits.MaxResize
            ? (int)resize
            : throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{path}: hyper_parameters resize is {resize}; it must be {Limits.MinResize}-{Limits.MaxResize} " +
                $"(limit {nameof(Limits.MaxResize)}), or give it as an override."));

    /// <summary>Builds the zoo model, checks the weights against it (class count first, for a clear message) and reads them in.</summary>
    private static LoadedCheckpoint Build(ModelHparams hparams, IReadOnlyDictionary<string, long[]> shapes, Action<string, Tensor> readInto)
    {
        if (hparams.Classes.Count == 0)
            throw new ArgumentException("The class list is empty; give the class names in output-index order.", nameof(hparams));
        var duplicate = hparams.Classes.GroupBy(c => c, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"Class \"{duplicate.Key}\" appears more than once in the class list.", nameof(hparams));
        var model = ModelZoo.Create(hparams.Architecture, hparams.Classes.Count, hparams.Pretrained);
        try
        {
            var comparison = StateDictComparison.Compare(model, shapes);
            if (!comparison.Matches)
            {
                var headWeight = model.HeadKeys.FirstOrDefault(k => k.EndsWith(".weight", StringComparison.Ordinal));
                if (headWeight is not null && shapes.TryGetValue(headWeight, out var head) && head.Length > 0
                    && head[0] != hparams.Classes.Count)
                    throw new ArgumentException(
                        $"The weights' classifier head ({headWeight}) has {head[0]} outputs, but {hparams.Classes.Count} class " +
                        $"names were given ({string.Join(", ", hparams.Classes.Take(10))}{(hparams.Classes.Count > 10 ? ", …" : "")}). " +
                        "Give exactly one class name per output, in output-index order.", nameof(hparams));
                throw new ArgumentException(
                    $"The weights do not fit {hparams.Architecture} with {hparams.Classes.Count} classes: {comparison.Describe()} " +
                    "Check the architecture name; the state dict must use torchvision's keys.", nameof(hparams));
            }
            using (no_grad())
            {
                foreach (var (key, tensor) in model.state_dict())
                    readInto(key, tensor);
            }
            model.eval();
            return new LoadedCheckpoint(hparams, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    // Lightning stores hyper_parameters as a dict, an AttributeDict (a dict subclass) or a Namespace (attributes in its state).
    private static PickleDict? AsDict(object? value) => value switch
    {
        PickleDict dict => dict,
        PickleObject { Items.Count: > 0 } instance => instance.Items,
        PickleObject { State: PickleDict state } => state,
        _ => null,
    };

    private static InvalidDataException MissingHparam(string path, string key, string what) =>
        new($"{path}: hyper_parameters has no readable '{key}'; supply the {what} as an override.");

    private static string? Text(PickleDict? hparams, string key) => hparams?[key] as string;

    private static long? Number(PickleDict? hparams, string key) => hparams?[key] as long?;

    private static List<string>? Strings(PickleDict? hparams, string key) => hparams?[key] switch
    {
        IEnumerable<object?> items when items.All(i => i is string) => [.. items.Cast<string>()],
        _ => null,
    };

    /// <summary>neuston stores <c>img_norm</c> as <c>[MEAN_STR, STD_STR]</c> (each "m" or "m1,m2,m3"), or None.</summary>
    private static ImgNorm? NeustonImgNorm(PickleDict? hparams, string path)
    {
        var value = hparams?["img_norm"];
        if (value is null)
            return null;
        var parts = Strings(hparams, "img_norm");
        if (parts is not { Count: 2 })
            throw new InvalidDataException($"{path}: hyper_parameters img_norm is not [MEAN, STD]; supply it as an override.");
        try
        {
            return ImgNorm.Parse(parts[0], parts[1]);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{path}: hyper_parameters img_norm is invalid: {e.Message}", e);
        }
    }
}
