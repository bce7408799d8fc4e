using System.IO.Compression;
using System.Text.Json;
using Ifcb.Models.Weights;
using Ifcb.Platform.Checkpoints;
using TorchSharp.PyBridge;

namespace Ifcb.Models.Checkpoints;

/// <summary>A checkpoint read back: its hparams and the rebuilt model, on the CPU, in eval mode.</summary>
public sealed record LoadedCheckpoint(ModelHparams Hparams, ClassifierNet Model);

/// <summary>
/// The trained-model artifact: a zip with <c>hparams.json</c> and <c>state_dict.pth</c>.
/// Why a zip of two entries rather than safetensors metadata: the hparams stay readable with any unzip tool and a text
/// editor; <c>state_dict.pth</c> is a plain <c>torch.save</c> state dict with torchvision's keys, so Python users load it with
/// <c>torch.load</c> after unzipping; and both entries are written by maintained code (System.IO.Compression, PyBridge's
/// pickler) instead of a hand-rolled safetensors header writer (PyBridge cannot write safetensors metadata).
/// <c>hparams.json</c> is a <see cref="CheckpointHeader"/>, the same bounded document the Registry and the CLI read
/// without libtorch.
/// </summary>
public static class Checkpoint
{
    public const string HparamsEntry = CheckpointHeader.HparamsEntry;
    public const string WeightsEntry = CheckpointHeader.WeightsEntry;

    /// <summary>Format marker in hparams.json, bumped on incompatible changes.</summary>
    public const int FormatVersion = CheckpointHeader.CurrentFormatVersion;

    /// <summary>Writes hparams and the model's full state dict; the model is left as it was.</summary>
    /// <exception cref="ArgumentException">
    /// hparams do not describe the model (architecture or class count differ) or break a limit a loader would refuse
    /// (see <see cref="CheckpointHeader.Validate"/>).
    /// </exception>
    public static void Save(Stream destination, ModelHparams hparams, ClassifierNet model)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(hparams);
        ArgumentNullException.ThrowIfNull(model);
        if (hparams.Architecture != model.Architecture || hparams.Classes.Count != model.NumClasses)
            throw new ArgumentException(
                $"hparams describe {hparams.Architecture} with {hparams.Classes.Count} classes, but the model is " +
                $"{model.Architecture} with {model.NumClasses}.", nameof(hparams));
        var header = hparams.ToHeader();
        try
        {
            header.Validate();
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException($"These hparams would make a checkpoint no loader accepts: {e.Message}", nameof(hparams), e);
        }

        using var zip = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
        using (var entry = zip.CreateEntry(HparamsEntry, CompressionLevel.Optimal).Open())
            JsonSerializer.Serialize(entry, header, CheckpointHeader.Json);
        // Stored, not deflated: the weights are dense floats (deflate gains little), and a stored entry can be read in
        // place by Load, with no copy of the weights.
        using var weights = zip.CreateEntry(WeightsEntry, CompressionLevel.NoCompression).Open();
        ExportPyTorch(model, weights);
    }

    /// <summary>
    /// Reads a checkpoint and rebuilds its model (CPU, eval mode); no training arguments are needed. hparams.json is read
    /// and checked first (<see cref="CheckpointHeader.Read"/>: class count, labels, resize, size), so a checkpoint that
    /// breaks a limit is refused before any model is allocated. The weights then go from the file straight into the
    /// model's parameters (<see cref="StateDictReader.LoadInto"/>): the stored <c>state_dict.pth</c> entry is read in
    /// place, so nothing but its small pickle is buffered. Pass a seekable stream (a file, or a buffer already in
    /// memory); any other is first copied to a temporary file (the zip directory is at the end), never to memory.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// Not a checkpoint, hparams out of bounds, an unknown architecture, or weights that do not fit.
    /// </exception>
    public static LoadedCheckpoint Load(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        using var temporary = source.CanSeek ? null : CopyToTemporaryFile(source);
        var checkpoint = temporary ?? source;
        var start = checkpoint.Position;
        var hparams = ModelHparams.FromHeader(CheckpointHeader.Read(checkpoint));

        checkpoint.Position = start;
        using var weights = StoredZipEntry.OpenInPlace(checkpoint, WeightsEntry) ?? CopyEntryToTemporaryFile(checkpoint, start);
        using var reader = StateDictReader.Open(weights, WeightsFormat.PyTorch);
        ClassifierNet model;
        try
        {
            model = ModelZoo.Create(hparams.Architecture, hparams.Classes.Count, hparams.Pretrained);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The checkpoint's architecture is not one this platform builds: {e.Message}", e);
        }
        try
        {
            var comparison = reader.CompareTo(model);
            if (!comparison.Matches)
                throw new InvalidDataException($"The checkpoint's weights do not fit {hparams.Architecture}: {comparison.Describe()}");
            reader.LoadInto(model);
            model.eval();
            return new LoadedCheckpoint(hparams, model);
        }
        catch
        {
            model.Dispose();
            throw;
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

    private static FileStream CopyToTemporaryFile(Stream source)
    {
        var file = NewTemporaryFile();
        try
        {
            source.CopyTo(file);
            file.Position = 0;
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // Only for a checkpoint whose weights entry was re-zipped with compression: Save never writes one.
    private static FileStream CopyEntryToTemporaryFile(Stream checkpoint, long start)
    {
        checkpoint.Position = start;
        using var zip = new ZipArchive(checkpoint, ZipArchiveMode.Read, leaveOpen: true);
        using var entry = zip.GetEntry(WeightsEntry)!.Open();
        return CopyToTemporaryFile(entry);
    }

    private static FileStream NewTemporaryFile() =>
        new(Path.GetTempFileName(), FileMode.Open, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose);
}
