using System.CommandLine;
using Ifcb.Client;
using Ifcb.Inference;
using Ifcb.Models.Checkpoints;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models import FILE</c>: turns an existing model into a platform checkpoint — a torchvision state dict
/// (.pth/.safetensors, with --arch and --classes) or a neuston_net Lightning .ptl (its hyper_parameters supply the rest;
/// flags override them) — written to --out and, with --register NAME, registered on the platform.
/// </summary>
public static class ModelImportCommand
{
    public static Command Build(CliContext context)
    {
        var file = new Argument<string>("FILE")
        {
            Description = "A torchvision state dict (.pth, .safetensors) or a neuston_net .ptl checkpoint.",
        };
        var arch = new Option<string?>("--arch", "--model")
        {
            Description = "Architecture (required for state dicts), e.g. resnet18, inception_v3.",
        };
        var classes = new Option<string?>("--classes")
        {
            Description = "Class labels in output order: comma-separated, or a text file with one per line (required for state dicts).",
        };
        var imgNorm = ImgNormChoice.CreateOption();
        var pretrained = new Option<bool?>("--pretrained")
        {
            Description = "The weights started from ImageNet (turns on inception_v3's transform_input).",
        };
        var resize = new Option<int?>("--resize") { Description = "Input side (default: 299 for inception, 224 otherwise)." };
        var modelId = new Option<string?>("--model-id")
        {
            Description = "Model id written into every result file (default: the file name).",
        };
        var output = new Option<string?>("--out", "-o") { Description = "Checkpoint to write (default FILE with .ifcbmodel)." };
        var register = new Option<string?>("--register")
        {
            Description = "With a server: also register the checkpoint under this model name.",
        };
        var command = new Command("import", "Import a torchvision state dict or a neuston_net .ptl as a platform checkpoint.")
        {
            file, arch, classes, imgNorm, pretrained, resize, modelId, output, register,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path} does not exist.", path);
            var norm = ImgNormChoice.Parse(parse.GetValue(imgNorm));
            if (norm.Auto)
                throw new UsageException("--img-norm auto needs a dataset; give the model's MEAN STD.");
            var classList = ParseClasses(parse.GetValue(classes));
            LoadedCheckpoint imported;
            if (Path.GetExtension(path).Equals(".ptl", StringComparison.OrdinalIgnoreCase)
                || Path.GetExtension(path).Equals(".ckpt", StringComparison.OrdinalIgnoreCase))
            {
                imported = ModelImport.FromNeustonCheckpoint(path, new NeustonHparamsOverrides
                {
                    Architecture = parse.GetValue(arch), Classes = classList, ImgNorm = norm.Value, Pretrained = parse.GetValue(pretrained),
                    Resize = parse.GetValue(resize), ModelId = parse.GetValue(modelId),
                });
            }
            else
            {
                var architecture = parse.GetValue(arch) ?? throw new UsageException("A state dict needs --arch (e.g. --arch resnet18).");
                if (classList is null)
                    throw new UsageException("A state dict needs --classes (comma-separated labels or a file with one per line).");
                imported = ModelImport.FromStateDict(path, new StateDictImportSpec(architecture, classList)
                {
                    ImgNorm = norm.Value, Pretrained = parse.GetValue(pretrained) ?? false, Resize = parse.GetValue(resize),
                    ModelId = parse.GetValue(modelId) ?? Path.GetFileNameWithoutExtension(path),
                });
            }
            using var model = imported.Model;
            var destination = Path.GetFullPath(
                parse.GetValue(output) ?? Path.ChangeExtension(path, Ifcb.Training.Engine.TrainingArtifacts.CheckpointExtension));
            await using (var stream = File.Create(destination))
                Checkpoint.Save(stream, imported.Hparams, model);
            var h = imported.Hparams;
            context.Console.MarkupLine(Markup.Escape(
                $"{destination}: {h.Architecture}, {h.Classes.Count} classes, resize {h.Resize}, pretrained {h.Pretrained}, " +
                $"img-norm {(h.ImgNorm?.ToString() ?? "none")}"));
            if (parse.GetValue(register) is { } name)
            {
                using var platform = PlatformConnection.From(parse, context);
                var details = new VersionDetails { Tags = new Dictionary<string, string> { ["imported_from"] = Path.GetFileName(path) } };
                var version = await CheckpointRegistration.RegisterAsync(platform.Registry, destination, name, details, platform.Auth,
                    platform.Retry, ct);
                context.Console.MarkupLine(Markup.Escape($"registered {version.Name}/{version.Version} ({version.Status})"));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static IReadOnlyList<string>? ParseClasses(string? value) => value switch
    {
        null or "" => null,
        _ when File.Exists(value) => [.. File.ReadAllLines(value).Select(l => l.Trim()).Where(l => l.Length > 0)],
        _ => [.. value.Split(',').Select(c => c.Trim()).Where(c => c.Length > 0)],
    };
}
