using static TorchSharp.torch;

namespace Ifcb.Models;

/// <summary>Maps the <c>--device auto|cpu|cuda</c> choice to a torch device.</summary>
public static class DeviceSelection
{
    public static IReadOnlyList<string> Choices { get; } = ["auto", "cpu", "cuda"];

    /// <summary>
    /// <c>auto</c>: CUDA when available, else CPU. <c>cpu</c>: CPU. <c>cuda</c> or <c>cuda:K</c>: that GPU, or an
    /// <see cref="InvalidOperationException"/> when this process cannot use CUDA.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value.</exception>
    public static Device Resolve(string choice) => Resolve(choice, cuda.is_available());

    internal static Device Resolve(string choice, bool cudaAvailable)
    {
        ArgumentNullException.ThrowIfNull(choice);
        var normalized = choice.Trim().ToLowerInvariant();
        if (normalized == "auto")
            return cudaAvailable ? CUDA : CPU;
        if (normalized == "cpu")
            return CPU;
        if (normalized == "cuda" || normalized.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!cudaAvailable)
                throw new InvalidOperationException(
                    $"Device '{choice}' was requested but CUDA is not available to this process (TorchSharp has no CUDA " +
                    "backend or no GPU is visible). Use --device cpu or --device auto.");
            return normalized == "cuda" ? CUDA : device(normalized);
        }
        throw new ArgumentException($"Unknown device '{choice}'. Use one of: {string.Join(", ", Choices)} (or cuda:N).", nameof(choice));
    }
}
