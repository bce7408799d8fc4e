using Ifcb.Platform;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>
/// The engine names users give (<c>ifcb run --engine</c>, StartRunRequest.engine) and what <c>auto</c> picks: ONNX Runtime
/// on the CPU, where it classified 1.4–2.5× more ROIs per second than TorchSharp with the same threads for every
/// architecture measured (bench/Ifcb.Inference.Bench <c>engines</c>; figures in the README), and TorchSharp on a GPU,
/// which this build's ONNX Runtime cannot use.
/// </summary>
public static class InferenceEngines
{
    public const string Auto = "auto";
    public const string Torch = "torch";
    public const string Onnx = "onnx";

    /// <summary>Every accepted name, <see cref="Auto"/> first.</summary>
    public static IReadOnlyList<string> Names { get; } = [Auto, Torch, Onnx];

    /// <summary>InvalidArgument unless <paramref name="name"/> is empty (= auto) or one of <see cref="Names"/>.</summary>
    public static void Check(string? name, string field)
    {
        Limits.CheckText(name, field, 32);
        if (!string.IsNullOrEmpty(name) && !Names.Contains(name))
            throw IfcbException.InvalidArgument($"Unknown {field} '{name}'; use {string.Join(", ", Names)}.");
    }

    /// <summary>
    /// The device and engine an engine name and a device name (<c>auto</c>, <c>cpu</c>, <c>cuda</c>) mean together: the
    /// onnx engine runs on the CPU, so with it <c>auto</c> means the CPU even where a GPU exists.
    /// </summary>
    /// <exception cref="IfcbException">InvalidArgument for an unknown engine.</exception>
    public static (Device Device, InferenceEngine Engine) Resolve(string? engineName, string deviceName)
    {
        Check(engineName, "engine");
        var device = Ifcb.Models.DeviceSelection.Resolve(engineName == Onnx && deviceName == "auto" ? "cpu" : deviceName);
        return (device, Resolve(engineName, device));
    }

    /// <summary>The engine <paramref name="name"/> means on <paramref name="device"/> (empty = auto).</summary>
    /// <exception cref="IfcbException">InvalidArgument for an unknown name.</exception>
    public static InferenceEngine Resolve(string? name, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Check(name, "engine");
        return name switch
        {
            Torch => InferenceEngine.Torch,
            Onnx => InferenceEngine.Onnx,
            _ => device.type == TorchSharp.DeviceType.CPU ? InferenceEngine.Onnx : InferenceEngine.Torch,
        };
    }
}
