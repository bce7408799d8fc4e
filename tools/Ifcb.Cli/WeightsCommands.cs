using System.CommandLine;
using Azure.Storage.Blobs;
using Ifcb.Models;
using Ifcb.Models.Weights;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb weights import ARCH FILE</c>: a torchvision ImageNet state dict (.pth or .safetensors), validated against the
/// architecture, into a weights store. There is no weights RPC: the store is a local folder (local-mode training reads
/// it) or, with <c>--blobs CONNECTION_STRING</c>, the platform's blob container <c>weights</c> that the Training
/// service reads.
/// </summary>
public static class WeightsCommands
{
    public sealed record ImportReport(string Architecture, string StoredAs, string Location);

    public static Command Build(CliContext context)
    {
        var command = new Command("weights", "Pretrained ImageNet weights for --untrain-less training.");
        command.Subcommands.Add(Import(context));
        return command;
    }

    private static Command Import(CliContext context)
    {
        var architecture = new Argument<string>("ARCH")
        {
            Description = $"Architecture: {string.Join(", ", ModelZoo.Architectures.Where(ModelZoo.SupportsPretrained))}.",
        };
        var file = new Argument<string>("FILE")
        {
            Description = "torchvision state dict: torch.save(model.state_dict()) .pth, or .safetensors.",
        };
        var weights = WeightsDirectory.CreateOption();
        var blobs = new Option<string?>("--blobs")
        {
            Description = "Azure Storage connection string: import into the platform's 'weights' container instead.",
        };
        var command = new Command("import", "Validate a torchvision ImageNet state dict and store it for training.")
        {
            architecture, file, weights, blobs,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var arch = parse.GetValue(architecture)!;
            if (!ModelZoo.Architectures.Contains(arch))
                throw new UsageException($"Unknown architecture '{arch}'. Choose one of: {string.Join(", ", ModelZoo.Architectures)}.");
            if (!ModelZoo.SupportsPretrained(arch))
                throw new UsageException($"'{arch}' has no torchvision ImageNet weights on this platform; train it with --untrain.");
            var path = parse.GetValue(file)!;
            if (!File.Exists(path))
                throw new FileNotFoundException($"Weights file {path} does not exist.", path);
            var format = StateDictFile.FormatOf(path);
            IWeightsStore store = parse.GetValue(blobs) is { Length: > 0 } connection
                ? new BlobWeightsStore(new BlobServiceClient(connection))
                : new FileSystemWeightsStore(WeightsDirectory.Resolve(parse, weights, context));
            await using var stream = File.OpenRead(path);
            var stored = await PretrainedWeights.ImportAsync(store, arch, stream, format, ct);
            var report = new ImportReport(arch, stored, store.Describe(stored));
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(report);
            else
                context.Console.MarkupLine(Markup.Escape($"Imported {arch} ImageNet weights as {report.Location}."));
            return ExitCodes.Success;
        });
        return command;
    }
}
