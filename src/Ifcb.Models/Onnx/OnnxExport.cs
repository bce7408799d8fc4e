using System.Reflection;
using System.Text.Json;
using Google.Protobuf;
using Ifcb.Models.Checkpoints;
using Onnx;

namespace Ifcb.Models.Onnx;

/// <summary>Where a registered version came from, recorded in the ONNX metadata of its export.</summary>
/// <param name="Name">The registered model's name.</param>
/// <param name="Version">The version number.</param>
/// <param name="CheckpointSha256">Hex sha256 of the checkpoint file the graph was exported from.</param>
public sealed record RegistryProvenance(string Name, int Version, string CheckpointSha256);

/// <summary>How to export.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>A fixed batch size for tools that cannot take a dynamic one; null (the default) = dynamic <c>batch</c>.</summary>
    public int? StaticBatch { get; init; }

    /// <summary>The registered version being exported, or null for a checkpoint file.</summary>
    public RegistryProvenance? Registry { get; init; }
}

/// <summary>The <c>metadata_props</c> keys of an exported model. Every value is text.</summary>
public static class OnnxMetadataKeys
{
    /// <summary>The class labels in output order, as a JSON array of strings.</summary>
    public const string ClassLabels = "class_labels";
    public const string Architecture = "architecture";
    /// <summary>The img-norm baked into the graph, <c>"MEAN STD"</c> (<c>ImgNorm.ToString</c>); absent when the model has none.</summary>
    public const string ImgNorm = "img_norm";
    /// <summary>The square input side S the model was trained at, e.g. <c>299</c>.</summary>
    public const string Resize = "resize";
    public const string ModelId = "model_id";
    public const string TrainingId = "training_id";
    /// <summary>How to prepare the input, in words, for whoever opens the file without this code.</summary>
    public const string Preprocessing = "preprocessing";
    public const string RegistryName = "registry_name";
    public const string RegistryVersion = "registry_version";
    public const string CheckpointSha256 = "checkpoint_sha256";
}

/// <summary>
/// Exports a zoo model as a self-contained ONNX graph for IFCB tools such as WHOI's <c>amplify_onnx_inference</c>:
/// input <c>input</c>, float32 <c>[batch, 3, S, S]</c>, RGB in [0,1] (S = the checkpoint's resize); the checkpoint's
/// img-norm as the first nodes (Sub, Div); the eval-mode network (no dropout, BatchNorm on running statistics); outputs
/// <c>probabilities</c> (softmax over classes) and <c>logits</c>, both <c>[batch, classes]</c>. Opset 17, IR version 8:
/// the newest that Debian's <c>python3-onnx</c> 1.12 checker accepts, and every ONNX Runtime since 1.13 runs.
/// The graph is built from the model's modules, whatever their train/eval mode; the model is not changed.
/// </summary>
public static class OnnxExport
{
    public const int Opset = 17;
    public const long IrVersion = 8;
    public const string InputName = "input";
    public const string ProbabilitiesName = "probabilities";
    public const string LogitsName = "logits";

    /// <summary>Writes the ONNX model to <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">
    /// hparams do not describe the model, the static batch is below 1, or the resize is too small for the architecture.
    /// </exception>
    public static void Write(ClassifierNet model, ModelHparams hparams, Stream destination, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Build(model, hparams, options ?? new OnnxExportOptions()).WriteTo(destination);
    }

    /// <summary>The ONNX model as bytes, e.g. for an in-process ONNX Runtime session.</summary>
    /// <exception cref="ArgumentException">As <see cref="Write"/>.</exception>
    public static byte[] ToBytes(ClassifierNet model, ModelHparams hparams, OnnxExportOptions? options = null) =>
        Build(model, hparams, options ?? new OnnxExportOptions()).ToByteArray();

    /// <summary>The <c>classes.txt</c> that goes with an export (amplify's <c>--classes</c>): one label per line, output order.</summary>
    public static string ClassesText(IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        return string.Concat(classes.Select(c => c + "\n"));
    }

    internal static ModelProto Build(ClassifierNet model, ModelHparams hparams, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(hparams);
        ArgumentNullException.ThrowIfNull(options);
        if (hparams.Architecture != model.Architecture || hparams.Classes.Count != model.NumClasses)
            throw new ArgumentException(
                $"hparams describe {hparams.Architecture} with {hparams.Classes.Count} classes, but the model is " +
                $"{model.Architecture} with {model.NumClasses}.", nameof(hparams));
        if (options.StaticBatch is < 1)
            throw new ArgumentException($"A static batch size must be at least 1, got {options.StaticBatch}.", nameof(options));

        var builder = new OnnxGraphBuilder();
        var input = builder.Input(InputName, [3, hparams.Resize, hparams.Resize], options.StaticBatch);
        var normalised = hparams.ImgNorm is { } norm ? builder.Normalize("img_norm", input, norm.Mean, norm.Std) : input;
        var logits = builder.Rename(ArchitectureGraph.For(model, builder).Logits(model, normalised), LogitsName);
        if (logits.Shape is not [var classes] || classes != model.NumClasses)
            throw new InvalidOperationException(
                $"The exported graph ends in [{string.Join('x', logits.Shape)}], not [{model.NumClasses}] logits.");
        builder.Output(builder.Softmax(ProbabilitiesName, logits), options.StaticBatch);
        builder.Output(logits, options.StaticBatch);
        builder.Graph.Name = model.Architecture;

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            OpsetImport = { new OperatorSetIdProto { Domain = "", Version = Opset } },
            ProducerName = "ifcb",
            ProducerVersion = ProducerVersion,
            ModelVersion = options.Registry?.Version ?? 0,
            DocString = $"{model.Architecture} IFCB classifier '{hparams.ModelId}', {hparams.Classes.Count} classes.",
            Graph = builder.Graph,
        };
        foreach (var (key, value) in Metadata(hparams, options.Registry))
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return proto;
    }

    private static string ProducerVersion =>
        typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";

    private static IEnumerable<(string Key, string Value)> Metadata(ModelHparams hparams, RegistryProvenance? registry)
    {
        yield return (OnnxMetadataKeys.ClassLabels, JsonSerializer.Serialize(hparams.Classes));
        yield return (OnnxMetadataKeys.Architecture, hparams.Architecture);
        if (hparams.ImgNorm is { } norm)
            yield return (OnnxMetadataKeys.ImgNorm, norm.ToString());
        yield return (OnnxMetadataKeys.Resize, hparams.Resize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.ModelId, hparams.ModelId);
        yield return (OnnxMetadataKeys.TrainingId, hparams.TrainingId);
        yield return (OnnxMetadataKeys.Preprocessing,
            $"Grey ROI to RGB, bilinear resize to {hparams.Resize}x{hparams.Resize} (Pillow), scale to [0,1]; " +
            (hparams.ImgNorm is null ? "no normalisation." : "the img_norm is applied inside the graph, do not normalise."));
        if (registry is null)
            yield break;
        yield return (OnnxMetadataKeys.RegistryName, registry.Name);
        yield return (OnnxMetadataKeys.RegistryVersion, registry.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.CheckpointSha256, registry.CheckpointSha256);
    }
}
