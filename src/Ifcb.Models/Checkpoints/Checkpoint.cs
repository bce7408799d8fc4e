using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ifcb.Data;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Models.Checkpoints;

/// <summary>A checkpoint read back: its hparams and the rebuilt model, on the CPU, in eval mode.</summary>
public sealed record LoadedCheckpoint(ModelHparams Hparams, ClassifierNet Model);

/// <summary>
/// The trained-model artifact: a zip with <c>hparams.json</c> and <c>state_dict.pth</c>.
/// Why a zip of two entries rather than safetensors metadata: the hparams stay readable with any unzip tool and a text
/// editor; <c>state_dict.pth</c> is a plain <c>torch.save</c> state dict with torchvision's keys, so Python users load it with
/// <c>torch.load</c> after unzipping; and both entries are written by maintained code (System.IO.Compression, PyBridge's
/// pickler) instead of a hand-rolled safetensors header writer (PyBridge cannot write safetensors metadata).
/// </summary>
public static class Checkpoint
{
    public const string HparamsEntry = "hparams.json";
    public const string WeightsEntry = "state_dict.pth";

    /// <summary>Format marker in hparams.json, bumped on incompatible changes.</summary>
    public const int FormatVersion = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Writes hparams and the model's full state dict; the model is left as it was.</summary>
    /// <exception cref="ArgumentException">hparams do not describe the model (architecture or class count differ).</exception>
    public static void Save(Stream destination, ModelHparams hparams, ClassifierNet model)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(hparams);
        ArgumentNullException.ThrowIfNull(model);
        if (hparams.Architecture != model.Architecture || hparams.Classes.Count != model.NumClasses)
            throw new ArgumentException(
                $"hparams describe {hparams.Architecture} with {hparams.Classes.Count} classes, but the model is " +
                $"{model.Architecture} with {model.NumClasses}.", nameof(hparams));

        using var zip = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
        using (var entry = zip.CreateEntry(HparamsEntry, CompressionLevel.Optimal).Open())
            JsonSerializer.Serialize(entry, HparamsDocument.From(hparams), Json);
        // Weights are already dense floats: storing them uncompressed keeps save/load fast.
        using var weights = zip.CreateEntry(WeightsEntry, CompressionLevel.NoCompression).Open();
        ExportPyTorch(model, weights);
    }

    /// <summary>Reads a checkpoint and rebuilds its model (CPU, eval mode); no training arguments are needed.</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, or its weights do not fit its hparams.</exception>
    public static LoadedCheckpoint Load(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(source, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Not a model checkpoint (expected a zip with {HparamsEntry} and {WeightsEntry}).", e);
        }
        using (zip)
        {
            var hparamsEntry = zip.GetEntry(HparamsEntry) ?? throw new InvalidDataException($"The checkpoint has no {HparamsEntry}.");
            var weightsEntry = zip.GetEntry(WeightsEntry) ?? throw new InvalidDataException($"The checkpoint has no {WeightsEntry}.");
            HparamsDocument document;
            using (var stream = hparamsEntry.Open())
                document = JsonSerializer.Deserialize<HparamsDocument>(stream, Json)
                    ?? throw new InvalidDataException($"{HparamsEntry} is empty.");
            var hparams = document.ToHparams();

            var model = ModelZoo.Create(hparams.Architecture, hparams.Classes.Count, hparams.Pretrained);
            using (var scope = NewDisposeScope())
            using (var weights = weightsEntry.Open())
            {
                var stateDict = Weights.StateDictFile.Read(weights, Weights.WeightsFormat.PyTorch);
                var comparison = Weights.StateDictComparison.Compare(model, stateDict);
                if (!comparison.Matches)
                {
                    model.Dispose();
                    throw new InvalidDataException($"The checkpoint's weights do not fit {hparams.Architecture}: {comparison.Describe()}");
                }
                using (no_grad())
                    model.load_state_dict(stateDict, strict: true);
            }
            model.eval();
            return new LoadedCheckpoint(hparams, model);
        }
    }

    /// <summary>
    /// Writes the model's state dict as a <c>torch.save</c> file with torchvision's keys, for
    /// <c>torchvision.models.X(num_classes=N).load_state_dict(torch.load(f), strict=True)</c>.
    /// </summary>
    public static void ExportPyTorch(ClassifierNet model, Stream destination)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(destination);
        // The pickler writes a zip and needs a seekable stream; zip entry streams are not.
        using var buffer = new MemoryStream();
        model.save_py(buffer, leaveOpen: true);
        buffer.Position = 0;
        buffer.CopyTo(destination);
    }

    private sealed record ImgNormDocument(double[] Mean, double[] Std);

    private sealed record HparamsDocument(
        int FormatVersion,
        string Arch,
        string[] Classes,
        int Resize,
        ImgNormDocument? ImgNorm,
        bool Pretrained,
        long Seed,
        string ModelId,
        string TrainingId,
        string? DatasetFingerprint,
        DateTimeOffset Created,
        string PlatformVersion,
        Dictionary<string, string>? Extras)
    {
        public static HparamsDocument From(ModelHparams h) => new(
            Checkpoint.FormatVersion, h.Architecture, [.. h.Classes], h.Resize,
            h.ImgNorm is null ? null : new ImgNormDocument([.. h.ImgNorm.Mean], [.. h.ImgNorm.Std]),
            h.Pretrained, h.Seed, h.ModelId, h.TrainingId, h.DatasetFingerprint, h.CreatedUtc, h.PlatformVersion,
            h.Extras is null ? null : new Dictionary<string, string>(h.Extras));

        public ModelHparams ToHparams()
        {
            if (FormatVersion != Checkpoint.FormatVersion)
                throw new InvalidDataException(
                    $"Checkpoint format {FormatVersion} is not supported by this version (it reads format {Checkpoint.FormatVersion}).");
            if (string.IsNullOrEmpty(Arch) || Classes is null || Classes.Length == 0)
                throw new InvalidDataException($"{HparamsEntry} lacks the architecture or the class list.");
            ImgNorm? norm;
            try
            {
                norm = ImgNorm is null ? null : new ImgNorm(ImgNorm.Mean, ImgNorm.Std);
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"{HparamsEntry} holds an invalid img_norm: {e.Message}", e);
            }
            return new ModelHparams(Arch, Classes, Resize, norm, Pretrained, Seed, ModelId, TrainingId, DatasetFingerprint,
                Created, PlatformVersion, Extras);
        }
    }
}
