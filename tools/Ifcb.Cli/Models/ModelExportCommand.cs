using System.CommandLine;
using System.Diagnostics;
using Ifcb.Models.Checkpoints;
using Ifcb.Models.Onnx;
using Ifcb.Platform;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models export MODEL --format onnx [-o model.onnx] [--static-batch N]</c>: a checkpoint file as one
/// self-contained ONNX graph (img-norm inside, outputs <c>probabilities</c> and <c>logits</c>; see
/// src/Ifcb.Models/Onnx/README.md) for IFCB tools such as WHOI's amplify_onnx_inference, with <c>classes.txt</c> (one
/// label per line, output order; amplify's <c>--classes</c>) written beside it.
/// </summary>
public static class ModelExportCommand
{
    public const string ClassesFileName = "classes.txt";

    /// <summary>What the command wrote, as <c>--json</c> prints it.</summary>
    public sealed record ExportReport(string Path, string ClassesPath, string Format, string Architecture, int Classes,
        int Resize, string Batch, string? ImgNorm, long Bytes, double Seconds);

    public static Command Build(CliContext context)
    {
        var model = new Argument<string>("MODEL") { Description = "A .ifcbmodel checkpoint file." };
        var format = new Option<string>("--format") { Description = "Export format.", DefaultValueFactory = _ => "onnx" }
            .AcceptOnlyFromAmong("onnx");
        var output = new Option<string?>("--out", "-o")
        {
            Description = $"File to write (default MODEL with .onnx); {ClassesFileName} is written in the same folder.",
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
            if (!File.Exists(source))
                throw new FileNotFoundException(
                    $"No checkpoint file '{source}'. To export a registered version, download it first " +
                    "(ifcb models download NAME/VERSION -o FILE) and export the file.", source);
            if (parse.GetValue(staticBatch) is { } batch)
                Limits.Check(batch, 1, Limits.MaxBatch, "--static-batch", nameof(Limits.MaxBatch));
            var clock = Stopwatch.StartNew();
            LoadedCheckpoint checkpoint;
            await using (var file = File.OpenRead(source))
                checkpoint = Checkpoint.Load(file);
            using var loaded = checkpoint.Model;
            var destination = Path.GetFullPath(parse.GetValue(output) ?? Path.ChangeExtension(source, ".onnx"));
            var folder = Path.GetDirectoryName(destination)!;
            Directory.CreateDirectory(folder);
            var classesPath = Path.Combine(folder, ClassesFileName);
            // Written beside the destination and moved into place, so a failed export never leaves half a model behind.
            var partial = destination + ".partial";
            try
            {
                await using (var file = File.Create(partial))
                    OnnxExport.Write(loaded, checkpoint.Hparams, file, new OnnxExportOptions { StaticBatch = parse.GetValue(staticBatch) });
                File.Move(partial, destination, overwrite: true);
            }
            finally
            {
                File.Delete(partial);
            }
            await File.WriteAllTextAsync(classesPath, OnnxExport.ClassesText(checkpoint.Hparams.Classes), ct);

            var h = checkpoint.Hparams;
            var report = new ExportReport(destination, classesPath, "onnx", h.Architecture, h.Classes.Count, h.Resize,
                parse.GetValue(staticBatch)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "dynamic",
                h.ImgNorm?.ToString(), new FileInfo(destination).Length, clock.Elapsed.TotalSeconds);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(report);
            else
                context.Console.MarkupLine(Markup.Escape(
                    $"{report.Path}: {report.Architecture}, input [{report.Batch}, 3, {report.Resize}, {report.Resize}] in [0,1], " +
                    $"img-norm {report.ImgNorm ?? "none"} inside, outputs probabilities and logits over {report.Classes} classes " +
                    $"({report.Bytes / 1e6:0.#} MB, {report.Seconds:0.#} s); labels in {report.ClassesPath}"));
            return ExitCodes.Success;
        });
        return command;
    }
}
