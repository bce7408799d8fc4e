using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ifcb.Models.Weights;

/// <summary>The two state-dict file formats torchvision users have: <c>torch.save</c> (<c>.pth</c>) and safetensors.</summary>
public enum WeightsFormat
{
    PyTorch,
    Safetensors,
}

/// <summary>Reads a whole state dict (name → tensor, on the CPU) from a <c>.pth</c> or <c>.safetensors</c> stream.</summary>
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

    /// <exception cref="InvalidDataException">The stream is not a readable state dict of that format.</exception>
    public static Dictionary<string, Tensor> Read(Stream stream, WeightsFormat format)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Both readers seek (torch.save files are zip archives; safetensors is an index plus offsets).
        var seekable = stream.CanSeek ? stream : CopyToMemory(stream);
        try
        {
            if (format == WeightsFormat.Safetensors)
                return Safetensors.LoadStateDict(seekable, leaveOpen: true);
            var table = PyTorchUnpickler.UnpickleStateDict(seekable, leaveOpen: true);
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (DictionaryEntry entry in table)
            {
                if (entry.Key is string key && entry.Value is Tensor tensor)
                    result[key] = tensor;
                else
                    throw new InvalidDataException(
                        $"The state dict holds a non-tensor entry '{entry.Key}'; save model.state_dict(), not a whole checkpoint.");
            }
            return result;
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException(
                $"Could not read a {(format == WeightsFormat.Safetensors ? "safetensors" : "torch.save")} state dict: {e.Message}. " +
                "Save it in Python with torch.save(model.state_dict(), path) (or safetensors.torch.save_file).", e);
        }
        finally
        {
            if (!ReferenceEquals(seekable, stream))
                seekable.Dispose();
        }
    }

    private static MemoryStream CopyToMemory(Stream stream)
    {
        var memory = new MemoryStream();
        stream.CopyTo(memory);
        memory.Position = 0;
        return memory;
    }
}
