using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>The two state-dict file formats torchvision users have: <c>torch.save</c> (<c>.pth</c>) and safetensors.</summary>
public enum WeightsFormat
{
    PyTorch,
    Safetensors,
}

/// <summary>One tensor as a state-dict file describes it; its bytes stay in the file until it is read.</summary>
public sealed record StoredTensor(ScalarType DType, long[] Shape);

/// <summary>File names and whole-file reads of state dicts (name → tensor, on the CPU).</summary>
public static class StateDictFile
{
    /// <summary><c>.safetensors</c> → safetensors; <c>.pth</c>, <c>.pt</c>, <c>.bin</c> → torch.save.</summary>
    /// <exception cref="ArgumentException">Any other extension.</exception>
    public static WeightsFormat FormatOf(string fileName)
    {
        var extension = Path.GetExtension(fileName).ToLowerInvariant();
        return extension switch
        {
            ".safetensors" => WeightsFormat.Safetensors,
            ".pth" or ".pt" or ".bin" => WeightsFormat.PyTorch,
            _ => throw new ArgumentException(
                $"'{fileName}' is neither a torch.save state dict (.pth/.pt) nor a .safetensors file.", nameof(fileName)),
        };
    }

    public static string Extension(WeightsFormat format) => format == WeightsFormat.Safetensors ? ".safetensors" : ".pth";

    /// <summary>
    /// Reads every tensor into fresh CPU tensors (one allocation each, filled straight from the file). To fill a model,
    /// <see cref="StateDictReader.LoadInto"/> avoids even that copy.
    /// </summary>
    /// <exception cref="InvalidDataException">The stream is not a readable state dict of that format.</exception>
    public static Dictionary<string, Tensor> Read(Stream stream, WeightsFormat format)
    {
        using var reader = StateDictReader.Open(stream, format);
        return reader.ReadAll();
    }
}
