using System.CommandLine;
using System.Diagnostics;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Ifcb.Platform;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models export MODEL --format onnx [-o model.onnx] [--static-batch N]</c>: a checkpoint file (exported here) or
/// a registered version (NAME, NAME/VERSION, NAME@ALIAS with <c>--server</c>: exported by the registry, which caches
/// the graph beside the checkpoint and serves the cached blob next time) as one self-contained ONNX graph (img-norm
/// inside, outputs <c>probabilities</c> and <c>logits</c>; see src/Ifcb.Models/Onnx/README.md) for IFCB tools such as
/// WHOI's amplify_onnx_inference, with <c>classes.txt</c> (one label per line, output order; amplify's <c>--classes</c>)
/// written beside it.
/// </summary>
public static class ModelExportCommand
{
    public const string ClassesFileName = "classes.txt";

    /// <summary>What the command wrote, as <c>--json</c> prints it.</summary>
    public sealed record ExportReport(string Path, string ClassesPath, string Format, string Architecture, int Classes,
        int Resize, string Batch, string? ImgNorm, long Bytes, double Seconds)
    {
        /// <summary>For a registered version: NAME/VERSION, and whether the registry served its cached export.</summary>
        public string? Version { get; init; }

        public bool? Cached { get; init; }

        public string? Sha256 { get; init; }
    }

    public static Command Build(CliContext context)
    {
        var model = new Argument<string>("MODEL")
        {
            Description = "A .ifcbmodel checkpoint file, or with --server a registered version: NAME, NAME/VERSION or NAME@ALIAS.",
        };
        var format = new Option<string>("--format") { Description = "Export format.", DefaultValueFactory = _ => "onnx" }
            .AcceptOnlyFromAmong("onnx");
        var output = new Option<string?>("--out", "-o")
        {
            Description = $"File to write (default MODEL with .onnx, NAME-vVERSION.onnx for a registered version); " +
                $"{ClassesFileName} is written in the same folder.",
        };
        var staticBatch = new Option<int?>("--static-batch")
        {
            Description = "Declare a fixed batch size N instead of a dynamic one, for tools that need it.",
        };
        var command = new Command("export", "Export a checkpoint as an ONNX model (with classes.txt) for other IFCB tools.")
        {
            model, format, output, staticBatch,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var source = parse.GetValue(model)!;
            if (parse.GetValue(staticBatch) is { } batch)
                Limits.Check(batch, 1, Limits.MaxBatch, "--static-batch", nameof(Limits.MaxBatch));
            var report = File.Exists(source)
                ? await ExportFileAsync(source, parse.GetValue(output), parse.GetValue(staticBatch), ct)
                : await ExportRegisteredAsync(parse, context, source, parse.GetValue(output), parse.GetValue(staticBatch), ct);
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(report);
            }
            else
            {
                var origin = report.Version is null ? ""
                    : $"{report.Version} ({(report.Cached == true ? "the registry's cached export" : "exported by the registry")}) → ";
                context.Console.MarkupLine(Markup.Escape(
                    $"{origin}{report.Path}: {report.Architecture}, " +
                    $"input [{report.Batch}, 3, {report.Resize}, {report.Resize}] in [0,1], " +
                    $"img-norm {report.ImgNorm ?? "none"} inside, outputs probabilities and logits over {report.Classes} classes " +
                    $"({report.Bytes / 1e6:0.#} MB, {report.Seconds:0.#} s); labels in {report.ClassesPath}"));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task<ExportReport> ExportFileAsync(string source, string? output, int? staticBatch, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        LoadedCheckpoint checkpoint;
        await using (var file = File.OpenRead(source))
            checkpoint = Checkpoint.Load(file);
        using var loaded = checkpoint.Model;
        var destination = Path.GetFullPath(output ?? Path.ChangeExtension(source, ".onnx"));
        var folder = Path.GetDirectoryName(destination)!;
        Directory.CreateDirectory(folder);
        var classesPath = Path.Combine(folder, ClassesFileName);
        // Written beside the destination and moved into place, so a failed export never leaves half a model behind.
        var partial = destination + ".partial";
        try
        {
            await using (var file = File.Create(partial))
                OnnxExport.Write(loaded, checkpoint.Hparams, file, new OnnxExportOptions { StaticBatch = staticBatch });
            File.Move(partial, destination, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
        await File.WriteAllTextAsync(classesPath, OnnxExport.ClassesText(checkpoint.Hparams.Classes), ct);

        var h = checkpoint.Hparams;
        return new ExportReport(destination, classesPath, "onnx", h.Architecture, h.Classes.Count, h.Resize, BatchText(staticBatch),
            h.ImgNorm?.ToString(), new FileInfo(destination).Length, clock.Elapsed.TotalSeconds);
    }

    private static async Task<ExportReport> ExportRegisteredAsync(ParseResult parse, CliContext context, string source, string? output,
        int? staticBatch, CancellationToken ct)
    {
        using var platform = PlatformConnection.From(parse, context);
        if (!platform.Has(PlatformService.Registry) || !ModelRef.TryParse(source, out var reference, out _))
        {
            throw new FileNotFoundException(
                $"No checkpoint file '{source}'; to export a registered version (NAME, NAME/VERSION, NAME@ALIAS) pass --server.", source);
        }
        var clock = Stopwatch.StartNew();
        var exported = await ModelExports.ExportAsync(platform.Registry, reference, staticBatch,
            version => output ?? $"{version.Name}-v{version.Version}.onnx", platform.Retry, ct);
        var (version, metadata) = (exported.Version, exported.Version.Metadata);
        var classesPath = Path.Combine(Path.GetDirectoryName(exported.Path)!, ClassesFileName);
        await File.WriteAllTextAsync(classesPath, OnnxExport.ClassesText(metadata.Classes), ct);
        return new ExportReport(exported.Path, classesPath, "onnx", metadata.Arch, metadata.Classes.Count, metadata.Resize,
            BatchText(staticBatch), metadata.ImgNorm?.ToImgNorm().ToString(), exported.Size, clock.Elapsed.TotalSeconds)
        {
            Version = $"{version.Name}/{version.Version}", Cached = exported.Cached, Sha256 = exported.Sha256,
        };
    }

    private static string BatchText(int? staticBatch) =>
        staticBatch?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "dynamic";
}
