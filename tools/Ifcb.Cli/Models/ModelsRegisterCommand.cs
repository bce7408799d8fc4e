using System.CommandLine;
using System.Globalization;
using Ifcb.Client;
using Ifcb.Protos;

namespace Ifcb.Cli;

/// <summary><c>ifcb models register CHECKPOINT --name NAME</c>: a checkpoint file as a new version (the CI path).</summary>
public static class ModelsRegisterCommand
{
    public static Command Build(CliContext context)
    {
        var checkpoint = new Argument<string>("CHECKPOINT")
        {
            Description = "A trained .ifcbmodel checkpoint (metadata is read from its hparams.json; the weights are sent, not loaded).",
        };
        var name = new Option<string>("--name") { Description = "Registered model name (created if missing).", Required = true };
        var key = new Option<string?>("--idempotency-key")
        {
            Description = "e.g. ci:$PIPELINE_ID; repeating it returns the version registered before. " +
                "Default sha256:<the file's SHA-256>, so registering the same file under the same name again " +
                "(or a retry after a failure) returns the same version.",
        };
        var commit = new Option<string?>("--commit") { Description = "Source commit (lineage)." };
        var pipeline = new Option<string?>("--pipeline-url") { Description = "CI pipeline run URL (lineage)." };
        var description = new Option<string?>("--description");
        var tags = new Option<string[]>("--tag") { Description = "KEY=VALUE version tag (repeatable)." };
        var metrics = new Option<string[]>("--metric") { Description = "NAME=NUMBER metric, e.g. f1_weighted=0.91 (repeatable)." };
        var alias = new Option<string?>("--alias") { Description = "Then point this alias at the new version." };
        var command = new Command("register", "Register a checkpoint as a new version (the CI path).")
        {
            checkpoint, name, key, commit, pipeline, description, tags, metrics, alias,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            using var platform = PlatformConnection.From(parse, context);
            var details = new VersionDetails
            {
                Metrics = ModelArguments.KeyValues(parse.GetValue(metrics), "--metric").ToDictionary(kv => kv.Key, kv =>
                    double.TryParse(kv.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                        ? number
                        : throw new UsageException($"--metric {kv.Key}={kv.Value}: the value must be a finite number.")),
                Tags = ModelArguments.KeyValues(parse.GetValue(tags), "--tag").ToDictionary(),
                IdempotencyKey = parse.GetValue(key), Description = parse.GetValue(description), Commit = parse.GetValue(commit),
                PipelineUrl = parse.GetValue(pipeline),
            };
            var version = await CheckpointRegistration.RegisterAsync(platform.Registry, parse.GetValue(checkpoint)!, parse.GetValue(name)!,
                details, platform.Auth, platform.Retry, ct);
            if (parse.GetValue(alias) is { } aliasName)
            {
                await platform.Registry.SetAliasAsync(
                    new SetAliasRequest { Name = version.Name, Alias = aliasName, Version = version.Version }, platform.Auth,
                    cancellationToken: ct);
                version = await platform.Registry.GetVersionAsync(new VersionRef { Name = version.Name, Version = version.Version },
                    cancellationToken: ct);
            }
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(version);
            else
                ModelVersionView.Render(context.Console, version);
            return ExitCodes.Success;
        });
        return command;
    }
}
