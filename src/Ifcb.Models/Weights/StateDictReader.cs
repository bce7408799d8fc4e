using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>
/// A state dict file (<c>torch.save</c> or safetensors) opened for reading: every tensor's name, dtype and shape are
/// known at once, and a tensor's bytes go from the file straight into the tensor they are read into, so a model is
/// loaded with one copy of its weights (its own) instead of the file buffered in memory plus an intermediate state dict.
/// What is buffered: the torch.save pickle (names and shapes, bounded) or the safetensors header (bounded); and a
/// stream that cannot seek is first copied to a temporary file (both formats need random access), never to memory.
/// Every declared size is checked against the bytes actually in the file before anything is allocated.
/// </summary>
public sealed class StateDictReader : IDisposable
{
    private readonly Stream? _temporary;
    private readonly TorchSaveArchive? _torch;
    private readonly IReadOnlyDictionary<string, TorchTensorRef>? _torchTensors;
    private readonly SafetensorsFile? _safetensors;

    private StateDictReader(Stream? temporary, TorchSaveArchive? torch, IReadOnlyDictionary<string, TorchTensorRef>? torchTensors,
        SafetensorsFile? safetensors, IReadOnlyDictionary<string, StoredTensor> tensors)
    {
        _temporary = temporary;
        _torch = torch;
        _torchTensors = torchTensors;
        _safetensors = safetensors;
        Tensors = tensors;
    }

    /// <summary>Every tensor of the file by name.</summary>
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>Opens a state dict. The stream stays open (and must, while tensors are read); it is not disposed.</summary>
    /// <exception cref="InvalidDataException">Not a readable state dict of that format (the message says how to re-save it).</exception>
    public static StateDictReader Open(Stream stream, WeightsFormat format)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Stream? temporary = null;
        if (!stream.CanSeek)
        {
            temporary = new FileStream(Path.GetTempFileName(), FileMode.Open, FileAccess.ReadWrite, FileShare.None, 81920,
                FileOptions.DeleteOnClose);
            stream.CopyTo(temporary);
            temporary.Position = 0;
        }
        var seekable = temporary ?? stream;
        try
        {
            if (format == WeightsFormat.Safetensors)
            {
                var file = SafetensorsFile.Open(seekable);
                return new StateDictReader(temporary, null, null, file, file.Tensors);
            }
            var archive = TorchSaveArchive.Open(seekable, leaveOpen: true);
            try
            {
                var tensors = TensorsOf(archive.Root);
                return new StateDictReader(temporary, archive, tensors, null,
                    tensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Value.Storage.DType, kv.Value.Shape),
                        StringComparer.Ordinal));
            }
            catch
            {
                archive.Dispose();
                throw;
            }
        }
        catch (InvalidDataException e)
        {
            temporary?.Dispose();
            throw new InvalidDataException(
                $"Could not read a {(format == WeightsFormat.Safetensors ? "safetensors" : "torch.save")} state dict: {e.Message} " +
                "Save it in Python with torch.save(model.state_dict(), path) (or safetensors.torch.save_file).", e);
        }
        catch
        {
            temporary?.Dispose();
            throw;
        }
    }

    /// <summary>The name → tensor map of a torch.save pickle that holds a state dict (a dict of tensors only).</summary>
    /// <exception cref="InvalidDataException">The pickle holds something else (a whole checkpoint, a module).</exception>
    public static IReadOnlyDictionary<string, TorchTensorRef> TensorsOf(object? root)
    {
        if (root is not PickleDict dict)
            throw new InvalidDataException("The file does not hold a dict of tensors; save model.state_dict(), not the model.");
        var tensors = new Dictionary<string, TorchTensorRef>(StringComparer.Ordinal);
        foreach (var (key, value) in dict)
        {
            if (key is string name && value is TorchTensorRef tensor)
                tensors[name] = tensor;
            else
                throw new InvalidDataException(
                    $"The state dict holds a non-tensor entry '{key}'; save model.state_dict(), not a whole checkpoint.");
        }
        return tensors;
    }

    /// <summary>
    /// Reads tensor <paramref name="name"/> into <paramref name="destination"/> (same shape; values converted to its
    /// dtype).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="InvalidDataException">Its bytes are missing or do not match what the file declares.</exception>
    public void ReadInto(string name, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Tensors.ContainsKey(name))
            throw new KeyNotFoundException($"The state dict has no tensor '{name}'.");
        if (_torch is not null)
            _torch.ReadInto(_torchTensors![name], destination);
        else
            _safetensors!.ReadInto(name, destination);
    }

    /// <summary>Allocates a CPU tensor of the stored dtype and shape and reads <paramref name="name"/> into it.</summary>
    public Tensor Read(string name)
    {
        var stored = Tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"The state dict has no tensor '{name}'.");
        if (_torch is not null)
            return _torch.Read(_torchTensors![name]); // checks the storage's size before allocating
        var result = empty(stored.Shape, stored.DType);
        try
        {
            ReadInto(name, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Every tensor, freshly allocated (they join the caller's dispose scope, if any).</summary>
    public Dictionary<string, Tensor> ReadAll()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in Tensors.Keys)
                result[name] = Read(name);
            return result;
        }
        catch
        {
            foreach (var tensor in result.Values)
                tensor.Dispose();
            throw;
        }
    }

    /// <summary>How the file differs from <paramref name="model"/>'s state dict (keys and shapes).</summary>
    public StateDictComparison CompareTo(nn.Module model, IReadOnlyCollection<string>? ignored = null) =>
        StateDictComparison.Compare(model, Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Shape, StringComparer.Ordinal), ignored);

    /// <summary>
    /// Reads every tensor of <paramref name="model"/>'s state dict, except <paramref name="skip"/>, from the file into the
    /// model's own parameters and buffers. Compare first (<see cref="CompareTo"/>): a missing key or shape is an error here.
    /// </summary>
    public void LoadInto(nn.Module model, IReadOnlyCollection<string>? skip = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var skipped = new HashSet<string>(skip ?? [], StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (name, tensor) in model.state_dict())
            {
                if (!skipped.Contains(name))
                    ReadInto(name, tensor);
            }
        }
    }

    public void Dispose()
    {
        _torch?.Dispose();
        _temporary?.Dispose();
    }
}
