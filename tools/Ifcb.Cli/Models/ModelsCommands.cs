using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Grpc.Core;
using Ifcb.Client;
using Ifcb.Contracts;
using Ifcb.Platform.Checkpoints;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models ...</c>: the model registry. A model reference is <c>NAME</c> (the model, or its newest READY version),
/// <c>NAME/VERSION</c> or <c>NAME@ALIAS</c>.
/// </summary>
public static partial class ModelsCommands
{
    public static Command Build(CliContext context)
    {
        var command = new Command("models", "The model registry: registered models, versions, aliases, tags.");
        command.Subcommands.Add(List(context));
        command.Subcommands.Add(Show(context));
        command.Subcommands.Add(Versions(context));
        command.Subcommands.Add(Alias(context));
        command.Subcommands.Add(Tag(context));
        command.Subcommands.Add(Download(context));
        command.Subcommands.Add(Register(context));
        command.Subcommands.Add(ModelImportCommand.Build(context));
        command.Subcommands.Add(Delete(context));
        command.Subcommands.Add(History(context));
        return command;
    }

    private static Argument<string> Reference(string description = "NAME, NAME/VERSION, NAME/latest or NAME@ALIAS.") => new("MODEL") { Description = description };

    private static Command List(CliContext context)
    {
        var limit = new Option<int>("--limit") { Description = "At most this many models.", DefaultValueFactory = _ => 100 };
        var command = new Command("list", "List registered models.") { limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var models = (await platform.Registry.ListModelsAsync(new ListModelsRequest { PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000) }, cancellationToken: ct)).Models;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(models);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("name", "latest", "aliases", "description", "updated");
            foreach (var m in models)
                table.AddRow(Markup.Escape(m.Name), m.LatestVersion.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", m.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"@{a.Key}→{a.Value}"))),
                    Markup.Escape(m.Description), m.UpdatedAt);
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Show(CliContext context)
    {
        var reference = Reference("NAME shows the model; NAME/VERSION or NAME@ALIAS shows that version.");
        var command = new Command("show", "Show a registered model or one of its versions.") { reference };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var target = ModelRef.Parse(parse.GetValue(reference)!);
            var json = parse.GetValue(GlobalOptions.Json);
            if (target.SelectsVersion)
            {
                var version = await platform.Registry.GetVersionAsync(target.ToVersionRef(), cancellationToken: ct);
                if (json)
                    context.WriteJson(version);
                else
                    RenderVersion(context.Console, version);
                return ExitCodes.Success;
            }
            var model = await platform.Registry.GetModelAsync(new GetModelRequest { Name = target.Name }, cancellationToken: ct);
            if (json)
                context.WriteJson(model);
            else
            {
                var table = Fields();
                table.AddRow("name", Markup.Escape(model.Name));
                table.AddRow("description", Markup.Escape(model.Description));
                table.AddRow("latest_version", model.LatestVersion.ToString(CultureInfo.InvariantCulture));
                table.AddRow("aliases", Markup.Escape(string.Join(", ", model.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"@{a.Key}→{a.Value}"))));
                table.AddRow("tags", Markup.Escape(string.Join(", ", model.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"))));
                table.AddRow("created", $"{model.CreatedAt} by {Markup.Escape(model.CreatedBy)}");
                table.AddRow("updated", $"{model.UpdatedAt} by {Markup.Escape(model.UpdatedBy)}");
                context.Console.Write(table);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Versions(CliContext context)
    {
        var name = new Argument<string?>("NAME") { Description = "Model name; omit to search every model.", Arity = ArgumentArity.ZeroOrOne };
        var tags = new Option<string[]>("--tag") { Description = "KEY=VALUE version tags that must all match (repeatable)." };
        var metrics = new Option<string[]>("--metric") { Description = "Metric conditions such as f1_weighted>=0.8 (repeatable)." };
        var status = new Option<string?>("--status") { Description = "Only versions in this status." }.AcceptOnlyFromAmong("pending", "ready", "failed");
        var limit = new Option<int>("--limit") { Description = "At most this many versions.", DefaultValueFactory = _ => 100 };
        var command = new Command("versions", "List or search model versions.") { name, tags, metrics, status, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var request = new SearchVersionsRequest
            {
                Name = parse.GetValue(name) ?? "",
                PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000),
                Status = parse.GetValue(status) switch
                {
                    "pending" => VersionStatus.Pending,
                    "ready" => VersionStatus.Ready,
                    "failed" => VersionStatus.Failed,
                    _ => VersionStatus.Unspecified,
                },
            };
            foreach (var (key, value) in KeyValues(parse.GetValue(tags), "--tag"))
                request.Tags[key] = value;
            foreach (var condition in parse.GetValue(metrics) ?? [])
                request.Metrics.Add(ParseThreshold(condition));
            var versions = (await platform.Registry.SearchVersionsAsync(request, cancellationToken: ct)).Versions;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(versions);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "version", "status", "arch", "aliases", "f1_weighted", "created", "source");
            foreach (var v in versions)
                table.AddRow(Markup.Escape(v.Name), v.Version.ToString(CultureInfo.InvariantCulture), StatusName(v.Status), Markup.Escape(v.Metadata?.Arch ?? ""),
                    Markup.Escape(string.Join(", ", v.Aliases.Select(a => "@" + a))),
                    v.Metadata?.Metrics.TryGetValue("f1_weighted", out var f1) == true ? f1.ToString("0.000", CultureInfo.InvariantCulture) : "",
                    v.CreatedAt, Markup.Escape(Source(v)));
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Alias(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var alias = new Argument<string>("ALIAS") { Description = "Alias without '@', e.g. production." };
        var version = new Argument<int?>("VERSION") { Description = "Version to point the alias at (omit with --delete).", Arity = ArgumentArity.ZeroOrOne };
        var delete = new Option<bool>("--delete") { Description = "Remove the alias." };
        var command = new Command("alias", "Point an alias at a READY version (created or moved atomically), or remove it.") { name, alias, version, delete };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            RegisteredModel model;
            if (parse.GetValue(delete))
            {
                if (parse.GetValue(version) is not null)
                    throw new UsageException("models alias --delete takes NAME ALIAS without a VERSION.");
                model = await platform.Registry.DeleteAliasAsync(new DeleteAliasRequest { Name = parse.GetValue(name), Alias = parse.GetValue(alias) }, platform.Auth, cancellationToken: ct);
            }
            else
            {
                var target = parse.GetValue(version) ?? throw new UsageException("models alias needs NAME ALIAS VERSION (or --delete).");
                model = await platform.Registry.SetAliasAsync(new SetAliasRequest { Name = parse.GetValue(name), Alias = parse.GetValue(alias), Version = target }, platform.Auth, cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(model);
            else
                context.Console.MarkupLine(model.Aliases.TryGetValue(parse.GetValue(alias)!, out var v)
                    ? $"{Markup.Escape(model.Name)}@{Markup.Escape(parse.GetValue(alias)!)} → version {v}"
                    : $"{Markup.Escape(model.Name)}@{Markup.Escape(parse.GetValue(alias)!)} removed");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Tag(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var key = new Argument<string>("KEY");
        var value = new Argument<string?>("VALUE") { Arity = ArgumentArity.ZeroOrOne, Description = "Omit with --delete." };
        var version = new Option<int?>("--version") { Description = "Tag this version instead of the model." };
        var delete = new Option<bool>("--delete") { Description = "Remove the tag." };
        var command = new Command("tag", "Set or remove a tag on a model (or with --version, on a version).") { name, key, value, version, delete };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var registry = platform.Registry;
            var (modelName, tagKey, tagValue, versionNumber) = (parse.GetValue(name)!, parse.GetValue(key)!, parse.GetValue(value), parse.GetValue(version));
            Google.Protobuf.IMessage reply;
            if (parse.GetValue(delete))
            {
                var request = new DeleteTagRequest { Name = modelName, Key = tagKey, Version = versionNumber ?? 0 };
                reply = versionNumber is null
                    ? await registry.DeleteModelTagAsync(request, platform.Auth, cancellationToken: ct)
                    : await registry.DeleteVersionTagAsync(request, platform.Auth, cancellationToken: ct);
            }
            else
            {
                var request = new SetTagRequest { Name = modelName, Key = tagKey, Value = tagValue ?? throw new UsageException("models tag needs NAME KEY VALUE (or --delete)."), Version = versionNumber ?? 0 };
                reply = versionNumber is null
                    ? await registry.SetModelTagAsync(request, platform.Auth, cancellationToken: ct)
                    : await registry.SetVersionTagAsync(request, platform.Auth, cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(reply);
            else
                context.Console.MarkupLine(Markup.Escape($"{modelName}{(versionNumber is { } n ? $"/{n}" : "")}: {tagKey}{(parse.GetValue(delete) ? " removed" : "=" + tagValue)}"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Download(CliContext context)
    {
        var reference = Reference("NAME (newest READY version), NAME/VERSION or NAME@ALIAS.");
        var output = new Option<string?>("--out", "-o") { Description = "File to write (default NAME-vVERSION.ifcbmodel)." };
        var command = new Command("download", "Download a version's checkpoint, verifying its size and SHA-256.") { reference, output };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var (version, path, downloaded) = await DownloadAsync(platform, parse.GetValue(reference)!, parse.GetValue(output), ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(new { version.Name, version.Version, Path = path, downloaded.Sha256, downloaded.Size });
            else
                context.Console.MarkupLine(Markup.Escape($"{version.Name}/{version.Version} → {path} ({downloaded.Size} bytes, sha256 {downloaded.Sha256})"));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// Resolves a model reference (NAME, NAME/VERSION, NAME@ALIAS) and downloads that version's checkpoint to
    /// <paramref name="output"/> (default NAME-vVERSION.ifcbmodel), verifying size and SHA-256.
    /// </summary>
    public static async Task<(ModelVersion Version, string Path, (string Sha256, long Size) Downloaded)> DownloadAsync(
        PlatformConnection platform, string reference, string? output, CancellationToken ct)
    {
        var target = ModelRef.Parse(reference);
        var version = await platform.Registry.GetVersionAsync(target.ToVersionRef(), cancellationToken: ct);
        var path = Path.GetFullPath(output ?? $"{version.Name}-v{version.Version}{Ifcb.Training.Engine.TrainingArtifacts.CheckpointExtension}");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var partial = path + ".partial";
        (string Sha256, long Size) downloaded;
        // Download the version resolved above, so a moving alias cannot change what is written between the calls.
        var exact = new VersionRef { Name = version.Name, Version = version.Version };
        await using (var file = File.Create(partial))
        {
            var registry = platform.Registry;
            downloaded = await ChunkedDownload.DownloadAsync("Registry.DownloadCheckpoint", token => registry.DownloadCheckpoint(exact, cancellationToken: token),
                file, c => (c.Data.Memory, c.TotalSize, c.Sha256), platform.Retry, cancellationToken: ct);
        }
        File.Move(partial, path, overwrite: true);
        return (version, path, downloaded);
    }

    private static Command Register(CliContext context)
    {
        var checkpoint = new Argument<string>("CHECKPOINT") { Description = "A trained .ifcbmodel checkpoint (metadata is read from its hparams.json; the weights are sent, not loaded)." };
        var name = new Option<string>("--name") { Description = "Registered model name (created if missing).", Required = true };
        var key = new Option<string?>("--idempotency-key")
        {
            Description = "e.g. ci:$PIPELINE_ID; repeating it returns the version registered before. Default sha256:<the file's SHA-256>, " +
                "so registering the same file under the same name again (or a retry after a failure) returns the same version.",
        };
        var commit = new Option<string?>("--commit") { Description = "Source commit (lineage)." };
        var pipeline = new Option<string?>("--pipeline-url") { Description = "CI pipeline run URL (lineage)." };
        var description = new Option<string?>("--description");
        var tags = new Option<string[]>("--tag") { Description = "KEY=VALUE version tag (repeatable)." };
        var metrics = new Option<string[]>("--metric") { Description = "NAME=NUMBER metric, e.g. f1_weighted=0.91 (repeatable)." };
        var alias = new Option<string?>("--alias") { Description = "Then point this alias at the new version." };
        var command = new Command("register", "Register a checkpoint as a new version (the CI path).") { checkpoint, name, key, commit, pipeline, description, tags, metrics, alias };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var metricValues = KeyValues(parse.GetValue(metrics), "--metric").ToDictionary(kv => kv.Key, kv =>
                double.TryParse(kv.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                    ? number
                    : throw new UsageException($"--metric {kv.Key}={kv.Value}: the value must be a finite number."));
            var version = await RegisterCheckpointAsync(platform, parse.GetValue(checkpoint)!, parse.GetValue(name)!, metricValues,
                KeyValues(parse.GetValue(tags), "--tag").ToDictionary(), parse.GetValue(key), parse.GetValue(description), parse.GetValue(commit),
                parse.GetValue(pipeline), ct);
            if (parse.GetValue(alias) is { } aliasName)
            {
                await platform.Registry.SetAliasAsync(new SetAliasRequest { Name = version.Name, Alias = aliasName, Version = version.Version }, platform.Auth, cancellationToken: ct);
                version = await platform.Registry.GetVersionAsync(new VersionRef { Name = version.Name, Version = version.Version }, cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(version);
            else
                RenderVersion(context.Console, version);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Delete(CliContext context)
    {
        var reference = Reference("NAME deletes the model; NAME/VERSION deletes one version and its checkpoint.");
        var force = new Option<bool>("--force") { Description = "Model: also delete every version. Version: also remove aliases pointing at it." };
        var command = new Command("delete", "Delete a model or a version.") { reference, force };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var target = ModelRef.Parse(parse.GetValue(reference)!);
            if (target.Selector is ModelSelector.Alias or ModelSelector.Latest)
                throw new UsageException($"Delete a version by number (NAME/VERSION), not by '{target}'.");
            Google.Protobuf.IMessage deleted = target.Version is { } number
                ? await platform.Registry.DeleteVersionAsync(new DeleteVersionRequest { Name = target.Name, Version = number, Force = parse.GetValue(force) }, platform.Auth, cancellationToken: ct)
                : await platform.Registry.DeleteModelAsync(new DeleteModelRequest { Name = target.Name, Force = parse.GetValue(force) }, platform.Auth, cancellationToken: ct);
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(deleted);
            else
                context.Console.MarkupLine($"Deleted {Markup.Escape(parse.GetValue(reference)!)}.");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command History(CliContext context)
    {
        var name = new Argument<string>("NAME");
        var limit = new Option<int>("--limit") { Description = "At most this many entries.", DefaultValueFactory = _ => 100 };
        var command = new Command("history", "The model's audit log, oldest first.") { name, limit };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var entries = (await platform.Registry.GetHistoryAsync(new GetHistoryRequest { Name = parse.GetValue(name), PageSize = Math.Clamp(parse.GetValue(limit), 1, 1000) }, cancellationToken: ct)).Entries;
            if (parse.GetValue(GlobalOptions.Json))
            {
                context.WriteJson(entries);
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("at", "actor", "action", "version", "details");
            foreach (var e in entries)
                table.AddRow(e.At, Markup.Escape(e.Actor), e.Action, e.Version == 0 ? "" : e.Version.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", e.Details.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"))));
            context.Console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The idempotency key <c>models register</c> sends when none is given: the same file under the same name is one version.</summary>
    public static string DefaultIdempotencyKey(string checkpointSha256) => "sha256:" + checkpointSha256;

    /// <summary>
    /// Registers a checkpoint through Registry.RegisterVersion with the metadata in its hparams.json (architecture,
    /// classes, img-norm, input size, pretrained, dataset fingerprint). Only the zip's directory and hparams.json are
    /// read, never the weights, so this needs no libtorch; the Registry checks the upload. Always sent with an
    /// idempotency key (<see cref="DefaultIdempotencyKey"/> unless one is given), so a failed attempt is sent again
    /// and a repeated registration returns the version registered before.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a checkpoint, or its hparams are malformed or out of bounds; the message names the file and the field.</exception>
    public static async Task<ModelVersion> RegisterCheckpointAsync(PlatformConnection platform, string checkpointPath, string name,
        IReadOnlyDictionary<string, double> metrics, IReadOnlyDictionary<string, string> tags, string? idempotencyKey, string? description,
        string? commit, string? pipelineUrl, CancellationToken cancellationToken)
    {
        if (!File.Exists(checkpointPath))
            throw new FileNotFoundException($"Checkpoint {checkpointPath} does not exist.", checkpointPath);
        await using var file = File.OpenRead(checkpointPath);
        CheckpointHeader hparams;
        try
        {
            hparams = CheckpointHeader.Read(file);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{checkpointPath}: {e.Message}", e);
        }
        file.Position = 0;
        var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
        var size = file.Position;
        file.Position = 0;
        var metadata = new VersionMetadata
        {
            Arch = hparams.Arch, Pretrained = hparams.Pretrained, Resize = hparams.Resize, Description = description ?? "",
            SourceCommit = commit ?? "", SourcePipelineUrl = pipelineUrl ?? "", DatasetFingerprint = hparams.DatasetFingerprint ?? "",
        };
        metadata.Classes.AddRange(hparams.Classes);
        if (hparams.ImgNorm is { } norm)
            metadata.ImgNorm = norm.ToImgNorm().ToProto();
        foreach (var (metric, value) in metrics)
            metadata.Metrics[metric] = value;
        foreach (var (tag, value) in tags)
            metadata.Tags[tag] = value;
        var header = new RegisterVersionHeader
        {
            Name = name, Metadata = metadata, Sha256 = sha256, Size = size,
            IdempotencyKey = string.IsNullOrWhiteSpace(idempotencyKey) ? DefaultIdempotencyKey(sha256) : idempotencyKey,
        };
        return await RegistryUpload.RegisterCheckpointAsync(platform.Registry, header, file, platform.Auth, retry: platform.Retry,
            cancellationToken: cancellationToken);
    }

    private static IEnumerable<KeyValuePair<string, string>> KeyValues(string[]? pairs, string flag)
    {
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
                throw new UsageException($"{flag} {pair}: write KEY=VALUE.");
            yield return new(pair[..equals], pair[(equals + 1)..]);
        }
    }

    /// <summary>Parses a metric condition such as <c>f1_weighted&gt;=0.8</c>.</summary>
    public static MetricThreshold ParseThreshold(string condition)
    {
        var match = ThresholdPattern().Match(condition);
        if (!match.Success || !double.TryParse(match.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            throw new UsageException($"--metric {condition}: write NAME OP NUMBER with OP one of >= > <= < == != (e.g. f1_weighted>=0.8).");
        return new MetricThreshold { Metric = match.Groups[1].Value.Trim(), Op = match.Groups[2].Value, Value = value };
    }

    [GeneratedRegex(@"^\s*([^<>=!]+?)\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$")]
    private static partial Regex ThresholdPattern();

    private static Table Fields() => new Table().Border(TableBorder.Simple).HideHeaders().AddColumns("field", "value");

    private static void RenderVersion(IAnsiConsole console, ModelVersion v)
    {
        var table = Fields();
        table.AddRow("version", Markup.Escape($"{v.Name}/{v.Version}"));
        table.AddRow("status", StatusName(v.Status) + (v.StatusMessage.Length > 0 ? " — " + Markup.Escape(v.StatusMessage) : ""));
        table.AddRow("aliases", Markup.Escape(string.Join(", ", v.Aliases.Select(a => "@" + a))));
        if (v.Metadata is { } m)
        {
            table.AddRow("arch", Markup.Escape(m.Arch));
            table.AddRow("classes", Markup.Escape($"{m.Classes.Count}: {string.Join(", ", m.Classes.Take(10))}{(m.Classes.Count > 10 ? ", …" : "")}"));
            table.AddRow("resize", m.Resize.ToString(CultureInfo.InvariantCulture));
            table.AddRow("img_norm", m.ImgNorm is null ? "" : Markup.Escape($"{string.Join(',', m.ImgNorm.Mean)} {string.Join(',', m.ImgNorm.Std)}"));
            table.AddRow("metrics", Markup.Escape(string.Join(", ", m.Metrics.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key}={x.Value:0.####}"))));
            table.AddRow("tags", Markup.Escape(string.Join(", ", m.Tags.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key}={x.Value}"))));
        }
        table.AddRow("source", Markup.Escape(Source(v)));
        table.AddRow("checkpoint", $"{v.CheckpointSize} bytes, sha256 {v.CheckpointSha256}");
        table.AddRow("created", $"{v.CreatedAt} by {Markup.Escape(v.CreatedBy)}");
        console.Write(table);
    }

    private static string Source(ModelVersion v) =>
        v.Metadata is null ? "" :
        v.Metadata.SourceTrainingJob.Length > 0 ? "job " + v.Metadata.SourceTrainingJob :
        v.Metadata.SourceCommit.Length > 0 ? "commit " + v.Metadata.SourceCommit :
        v.IdempotencyKey;

    private static string StatusName(VersionStatus status) => status switch
    {
        VersionStatus.Pending => "pending",
        VersionStatus.Ready => "ready",
        VersionStatus.Failed => "failed",
        _ => "unspecified",
    };
}
