using System.Collections;
using System.Globalization;
using System.Reflection;
using Ifcb.Data;
using Ifcb.Models;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Weights;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>What a bare torchvision state dict does not say about itself.</summary>
/// <param name="Architecture">Zoo name, e.g. <c>resnet18</c>, <c>inception_v3</c>.</param>
/// <param name="Classes">Class names in output-index order; their count must equal the head's outputs.</param>
public sealed record StateDictImportSpec(string Architecture, IReadOnlyList<string> Classes)
{
    /// <summary>The normalisation the model was trained with, or null.</summary>
    public ImgNorm? ImgNorm { get; init; }

    /// <summary>neuston's pretrained flag; for inception_v3 it switches <c>transform_input</c> on (torchvision's ImageNet layout).</summary>
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
/// Weights are checked key by key and shape by shape against the zoo's architecture before anything is returned.
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
        Dictionary<string, Tensor> stateDict;
        using (var stream = File.OpenRead(weightsPath))
            stateDict = StateDictFile.Read(stream, format);
        var hparams = new ModelHparams(
            spec.Architecture, spec.Classes, spec.Resize ?? ZooInputSize(spec.Architecture), spec.ImgNorm, spec.Pretrained, spec.Seed,
            spec.ModelId ?? Path.GetFileNameWithoutExtension(weightsPath), TrainingId: "imported", DatasetFingerprint: null,
            DateTimeOffset.UtcNow, PlatformVersion,
            new Dictionary<string, string>
            {
                ["imported_from"] = Path.GetFileName(weightsPath),
                ["import_format"] = format == WeightsFormat.Safetensors ? "torchvision-safetensors" : "torchvision-state-dict",
            });
        try
        {
            return Build(hparams, stateDict);
        }
        finally
        {
            DisposeTensors(stateDict);
        }
    }

    /// <summary>
    /// Imports a neuston_net <c>.ptl</c> (a <c>torch.save</c> dict with <c>state_dict</c> keys prefixed <c>model.</c> and
    /// <c>hyper_parameters</c> holding MODEL, classes, img_norm, pretrained, resize, model_id, seed), read with
    /// TorchSharp.PyBridge's unpickler (no Python needed).
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The file cannot be unpickled (the message names the Python type PyBridge could not rebuild), has no state_dict, or
    /// lacks hparams that <paramref name="overrides"/> do not supply.
    /// </exception>
    /// <exception cref="ArgumentException">The weights do not fit the architecture or the class count.</exception>
    public static LoadedCheckpoint FromNeustonCheckpoint(string checkpointPath, NeustonHparamsOverrides? overrides = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointPath);
        overrides ??= new NeustonHparamsOverrides();
        Hashtable root;
        try
        {
            using var stream = File.OpenRead(checkpointPath);
            root = PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true);
        }
        catch (Exception e) when (e is not (FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or OutOfMemoryException))
        {
            throw new InvalidDataException(
                $"Could not unpickle {checkpointPath} as a torch.save checkpoint: {e.GetType().Name}: {e.Message} " +
                "If a pickled Python type is named above, re-save the checkpoint in Python without it, e.g. " +
                "torch.save({k[6:]: v for k, v in ckpt['state_dict'].items()}, 'weights.pth'), and import that state dict " +
                "with its architecture, classes and img_norm given explicitly.", e);
        }

        // Model creation must stay outside any dispose scope, so the unpickled tensors (weights, optimizer state) are
        // disposed explicitly once the weights are copied into the model.
        try
        {
            if (root["state_dict"] is not IDictionary lightningState)
                throw new InvalidDataException(
                    $"{checkpointPath} has no 'state_dict' dict; keys are: {string.Join(", ", root.Keys.Cast<object>())}. " +
                    "A bare model state dict is imported with FromStateDict.");
            var stateDict = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var ignored = new List<string>();
            foreach (DictionaryEntry entry in lightningState)
            {
                var key = entry.Key as string ?? "";
                if (key.StartsWith(NeustonModelPrefix, StringComparison.Ordinal) && entry.Value is Tensor tensor)
                    stateDict[key[NeustonModelPrefix.Length..]] = tensor;
                else
                    ignored.Add(key);
            }
            if (stateDict.Count == 0)
                throw new InvalidDataException($"{checkpointPath}: state_dict has no '{NeustonModelPrefix}*' tensors; is it a neuston_net checkpoint?");

            var stored = root["hyper_parameters"] as IDictionary;
            var architecture = overrides.Architecture ?? Text(stored, "MODEL") ?? throw MissingHparam(checkpointPath, "MODEL", "architecture");
            var classes = overrides.Classes ?? Strings(stored, "classes") ?? throw MissingHparam(checkpointPath, "classes", "class list");
            var pretrained = overrides.Pretrained ?? (stored?["pretrained"] is bool b && b);
            var resize = overrides.Resize ?? (Number(stored, "resize") is { } r ? (int)r : ZooInputSize(architecture));
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
                if (root[key] is { } value)
                    extras[key] = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            }
            if (Text(stored, "version") is { } neustonVersion)
                extras["neuston_version"] = neustonVersion;
            if (ignored.Count > 0)
                extras["ignored_state_dict_keys"] = string.Join(",", ignored);
            var hparams = new ModelHparams(architecture, classes, resize, imgNorm, pretrained, seed, modelId,
                Text(stored, "TRAIN_ID") ?? "imported", DatasetFingerprint: null, DateTimeOffset.UtcNow, PlatformVersion, extras);
            return Build(hparams, stateDict);
        }
        finally
        {
            DisposeTensors(root);
        }
    }

    private static string PlatformVersion =>
        typeof(ModelImport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static int ZooInputSize(string architecture) => ModelZoo.InputSize(architecture);

    /// <summary>Builds the zoo model, checks the weights against it (class count first, for a clear message) and loads them.</summary>
    private static LoadedCheckpoint Build(ModelHparams hparams, Dictionary<string, Tensor> stateDict)
    {
        if (hparams.Classes.Count == 0)
            throw new ArgumentException("The class list is empty; give the class names in output-index order.", nameof(hparams));
        var duplicate = hparams.Classes.GroupBy(c => c, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"Class \"{duplicate.Key}\" appears more than once in the class list.", nameof(hparams));
        var model = ModelZoo.Create(hparams.Architecture, hparams.Classes.Count, hparams.Pretrained);
        try
        {
            var comparison = StateDictComparison.Compare(model, stateDict);
            if (!comparison.Matches)
            {
                var headWeight = model.HeadKeys.FirstOrDefault(k => k.EndsWith(".weight", StringComparison.Ordinal));
                if (headWeight is not null && stateDict.TryGetValue(headWeight, out var head) && head.shape[0] != hparams.Classes.Count)
                    throw new ArgumentException(
                        $"The weights' classifier head ({headWeight}) has {head.shape[0]} outputs, but {hparams.Classes.Count} class " +
                        $"names were given ({string.Join(", ", hparams.Classes.Take(10))}{(hparams.Classes.Count > 10 ? ", …" : "")}). " +
                        "Give exactly one class name per output, in output-index order.", nameof(hparams));
                throw new ArgumentException(
                    $"The weights do not fit {hparams.Architecture} with {hparams.Classes.Count} classes: {comparison.Describe()} " +
                    "Check the architecture name; the state dict must use torchvision's keys.", nameof(hparams));
            }
            using (no_grad())
                model.load_state_dict(stateDict, strict: true);
            model.eval();
            return new LoadedCheckpoint(hparams, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Disposes every tensor reachable through dicts and lists (the unpickled checkpoint graph).</summary>
    private static void DisposeTensors(object? value)
    {
        switch (value)
        {
            case Tensor tensor:
                tensor.Dispose();
                break;
            case IDictionary dictionary:
                foreach (DictionaryEntry entry in dictionary)
                    DisposeTensors(entry.Value);
                break;
            case IEnumerable items and not string:
                foreach (var item in items)
                    DisposeTensors(item);
                break;
        }
    }

    private static InvalidDataException MissingHparam(string path, string key, string what) =>
        new($"{path}: hyper_parameters has no readable '{key}'; supply the {what} as an override.");

    private static string? Text(IDictionary? hparams, string key) => hparams?[key] as string;

    private static long? Number(IDictionary? hparams, string key) => hparams?[key] switch
    {
        int i => i,
        long l => l,
        _ => null,
    };

    private static List<string>? Strings(IDictionary? hparams, string key) => hparams?[key] switch
    {
        IEnumerable<object> items when items.All(i => i is string) => [.. items.Cast<string>()],
        ArrayList list when list.Cast<object>().All(i => i is string) => [.. list.Cast<string>()],
        _ => null,
    };

    /// <summary>neuston stores <c>img_norm</c> as <c>[MEAN_STR, STD_STR]</c> (each "m" or "m1,m2,m3"), or None.</summary>
    private static ImgNorm? NeustonImgNorm(IDictionary? hparams, string path)
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
