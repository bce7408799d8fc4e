using System.Reflection;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Ifcb.Platform;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// The <see cref="VersionExporter"/> the Registry serves ExportVersion with: the checkpoint loaded with TorchSharp and
/// written by <see cref="OnnxExport"/>, stamped with the version's name, number and checkpoint sha256.
/// </summary>
internal static class OnnxVersionExporter
{
    /// <summary>
    /// The exporter's identity recorded on every cached export: the build of Ifcb.Models that wrote it, so a changed
    /// exporter makes each version's graph again instead of serving one written by older code.
    /// </summary>
    public static string Version { get; } = "onnx/" +
        (typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown");

    public static void Export(ModelVersion version, Stream checkpoint, Stream destination, ExportRequest request)
    {
        var loaded = Checkpoint.Load(checkpoint);
        using var model = loaded.Model;
        try
        {
            OnnxExport.Write(model, loaded.Hparams, destination, new OnnxExportOptions
            {
                StaticBatch = request.StaticBatch,
                Registry = new RegistryProvenance(version.ModelName, version.Version, version.Sha256),
            });
        }
        catch (ArgumentException e)
        {
            throw IfcbException.InvalidArgument(
                $"Version {version.Version} of '{version.ModelName}' cannot be exported to ONNX: {e.Message}");
        }
    }
}
