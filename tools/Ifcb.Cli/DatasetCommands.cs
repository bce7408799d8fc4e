using System.CommandLine;
using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb dataset upload|list|show|delete</c>: named class-folder datasets on the platform.</summary>
public static class DatasetCommands
{
    public static Command Build(CliContext context)
    {
        var command = new Command("dataset", "Datasets on the platform: class folders of images.");
        command.Subcommands.Add(Upload(context));
        command.Subcommands.Add(List(context));
        command.Subcommands.Add(Show(context));
        command.Subcommands.Add(Delete(context));
        command.Subcommands.Add(MakeConfig(context));
        return command;
    }

    // neuston_util.py MAKE_DATASET_CONFIG: a dataset-config CSV with presence flags, to edit and pass as SRC.
    private static Command MakeConfig(CliContext context)
    {
        var folders = new Argument<string[]>("PATH")
        {
            Description = "Class-folder datasets, first priority first.", Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string?>("--output", "-o") { Description = "Write the CSV here instead of printing it." };
        var command = new Command("make-config",
            "Write a dataset-config CSV for the given folders (priority in the order given; 1 where a folder has the class, else 0). " +
            "Edit it (0 leaves a class out, a name renames/merges) and pass it as SRC to train, norm or dataset upload.")
            { folders, output };
        command.SetHandler(context, (parse, _) =>
        {
            var datasets = parse.GetValue(folders)!
                .Select(f => (f, (IReadOnlyCollection<string>)Ifcb.Data.Datasets.DatasetSpec.ListClassFolders(f).Keys.ToList()))
                .ToList();
            var csv = Ifcb.Data.Datasets.DatasetConfig.Make(datasets);
            if (parse.GetValue(output) is { } path)
            {
                File.WriteAllText(path, csv);
                context.Info($"wrote {Path.GetFullPath(path)}");
            }
            else
                context.Console.Profile.Out.Writer.Write(csv);
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    private static Command Upload(CliContext context)
    {
        var folder = new Argument<string>("SRC")
        {
            Description = "Folder with one subfolder per class, images inside; " +
                "or a dataset-config CSV whose merge is uploaded as one dataset.",
        };
        var name = new Option<string?>("--name", "--dataset")
        {
            Description = "Dataset name; default: the folder (or CSV file) name, sanitised.",
        };
        var command = new Command("upload",
            "Upload a class-folder dataset as its new version (sending only changed files); " +
            "if another upload of the same name finishes first, this one fails and changes nothing.")
            { folder, name };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var info = await DatasetSource.UploadAsync(platform, context, parse.GetValue(folder)!, parse.GetValue(name),
                parse.GetValue(GlobalOptions.Json), ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(info);
            else
                Render(context.Console, info);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command List(CliContext context)
    {
        var command = new Command("list", "List datasets.");
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var reply = await platform.Datasets.ListAsync(new ListDatasetsRequest(), cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(reply.Datasets);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("name", "classes", "images", "bytes", "fingerprint");
            foreach (var d in reply.Datasets)
                table.AddRow(Markup.Escape(d.Name), d.Classes.Count.ToString(CultureInfo.InvariantCulture),
                    d.Images.ToString(CultureInfo.InvariantCulture), d.Bytes.ToString(CultureInfo.InvariantCulture), Short(d.Fingerprint));
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Show(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var command = new Command("show", "Show a dataset's classes and image counts.") { name };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var info = await platform.Datasets.DescribeAsync(new DatasetRef { Name = parse.GetValue(name) }, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(info);
            else
                Render(context.Console, info);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Delete(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var command = new Command("delete", "Delete a dataset and its files.") { name };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var info = await platform.Datasets.DeleteAsync(new DatasetRef { Name = parse.GetValue(name) }, platform.Auth,
                cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(info);
            else
                context.Console.MarkupLine($"Deleted dataset [bold]{Markup.Escape(info.Name)}[/] ({info.Images} images; " +
                    "jobs reading it may finish, then its files are removed).");
            return ExitCodes.Success;
        });
        return command;
    }

    private static string Count(int n, string what) => n == 1 ? $"1 {what}" : $"{n} {what}s";

    private static void Render(IAnsiConsole console, DatasetInfo info)
    {
        console.MarkupLine($"Dataset [bold]{Markup.Escape(info.Name)}[/]: {info.Images} images in {info.Classes.Count} classes, " +
                           $"{info.Bytes} bytes, fingerprint {Short(info.Fingerprint)}" +
                           (info.Generation.Length > 0 ? $", generation {Markup.Escape(info.Generation)}" : "") +
                           (info.Shards > 0 ? $", {Count(info.Shards, "shard")}" : "") +
                           (info.Uploaded + info.Skipped > 0
                               ? $" (uploaded {info.Uploaded} in {Count(info.ShardsUploaded, "new shard")}, unchanged {info.Skipped})"
                               : ""));
        var table = new Table().Border(TableBorder.Simple).AddColumns("class", "images");
        foreach (var c in info.Classes)
            table.AddRow(Markup.Escape(c.Name), c.Images.ToString(CultureInfo.InvariantCulture));
        console.Write(table);
    }

    internal static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;
}
