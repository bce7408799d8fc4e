using System.Collections.Immutable;
using System.Globalization;
using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Registry.Engine;
using Proto = Ifcb.Protos;

namespace Ifcb.Registry;

/// <summary>Translates between registry.proto messages and the engine's records.</summary>
internal static class RegistryProtoMapping
{
    public static Proto.RegisteredModel ToProto(this RegisteredModel model)
    {
        var reply = new Proto.RegisteredModel
        {
            Name = model.Name, Description = model.Description, LatestVersion = model.LatestVersion,
            CreatedAt = Timestamp(model.CreatedAt), UpdatedAt = Timestamp(model.UpdatedAt),
            CreatedBy = model.CreatedBy, UpdatedBy = model.UpdatedBy, Revision = model.Revision,
        };
        reply.Tags.Add(model.Tags);
        reply.Aliases.Add(model.Aliases);
        return reply;
    }

    public static Proto.ModelVersion ToProto(this ModelVersion version)
    {
        var metadata = new Proto.VersionMetadata
        {
            Arch = version.Arch, Pretrained = version.Pretrained, Description = version.Description,
            SourceTrainingJob = version.Source.TrainingJobId ?? "", SourceCommit = version.Source.Commit ?? "",
            SourcePipelineUrl = version.Source.PipelineUrl ?? "", ParentVersion = version.Source.ParentVersion ?? "",
            DatasetFingerprint = version.DatasetFingerprint ?? "",
            Resize = version.Resize ?? 0, ImgNorm = version.ImgNorm is { } norm ? Proto.ImgNormProtos.ToProto(norm) : null,
        };
        metadata.Classes.Add(version.Classes);
        if (version.ClassThresholds is { } thresholds)
            metadata.ClassThresholds.Add(thresholds);
        metadata.Metrics.Add(version.Metrics);
        metadata.Tags.Add(version.Tags);

        var reply = new Proto.ModelVersion
        {
            Name = version.ModelName, Version = version.Version, Status = ToProto(version.Status), Metadata = metadata,
            CheckpointSha256 = version.Sha256, CheckpointSize = version.SizeBytes, CreatedAt = Timestamp(version.CreatedAt),
            CreatedBy = version.CreatedBy, StatusMessage = version.StatusMessage ?? "", IdempotencyKey = version.IdempotencyKey ?? "",
            UpdatedAt = Timestamp(version.UpdatedAt), UpdatedBy = version.UpdatedBy,
        };
        reply.Aliases.Add(version.Aliases);
        return reply;
    }

    /// <summary>A key's record as clients see it: never its digest.</summary>
    public static Proto.ApiKeyInfo ToProto(this ApiKeyRecord key) => new()
    {
        Name = key.Name, Role = key.Role.Name(), CreatedAt = Timestamp(key.CreatedAt), CreatedBy = key.CreatedBy,
        RevokedAt = key.RevokedAt is { } revoked ? Timestamp(revoked) : "", RevokedBy = key.RevokedBy ?? "",
    };

    /// <summary>A webhook without its secret: the API never returns one.</summary>
    public static Proto.Webhook ToProto(this Webhook webhook)
    {
        var reply = new Proto.Webhook
        {
            Id = webhook.Id, Url = webhook.Url, Model = webhook.Model ?? "", SecretSet = webhook.Secret.Length > 0, Active = webhook.Active,
            CreatedAt = Timestamp(webhook.CreatedAt), CreatedBy = webhook.CreatedBy,
        };
        reply.Events.Add(webhook.Events.IsDefault ? [] : webhook.Events);
        return reply;
    }

    public static Proto.WebhookDelivery ToProto(this WebhookDelivery delivery) => new()
    {
        Id = delivery.Id, WebhookId = delivery.WebhookId, Event = delivery.Event,
        Status = delivery.Status switch
        {
            WebhookDeliveryStatus.Pending => Proto.WebhookDeliveryStatus.Pending,
            WebhookDeliveryStatus.Delivered => Proto.WebhookDeliveryStatus.Delivered,
            WebhookDeliveryStatus.Failed => Proto.WebhookDeliveryStatus.Failed,
            _ => Proto.WebhookDeliveryStatus.Unspecified,
        },
        Attempts = delivery.Attempts, LastStatusCode = delivery.LastStatusCode ?? 0, LastError = delivery.LastError ?? "",
        NextAttemptAt = delivery.NextAttemptAt is { } next ? Timestamp(next) : "", CreatedAt = Timestamp(delivery.CreatedAt),
        UpdatedAt = Timestamp(delivery.UpdatedAt), DeliveredAt = delivery.DeliveredAt is { } at ? Timestamp(at) : "",
        Payload = delivery.Payload,
    };

    public static Proto.AuditEntry ToProto(this AuditEntry entry)
    {
        var reply = new Proto.AuditEntry
        {
            At = Timestamp(entry.Timestamp), Actor = entry.Actor, Action = ActionName(entry), Version = entry.Version ?? 0,
            ModelRevision = entry.ModelRevision ?? 0,
        };
        reply.Details.Add(entry.Details);
        return reply;
    }

    /// <summary>What a registration header asks for, as the engine's request (validated by the engine).</summary>
    public static NewModelVersion ToEngine(this Proto.RegisterVersionHeader header)
    {
        var metadata = header.Metadata ?? new Proto.VersionMetadata();
        return new NewModelVersion
        {
            Arch = metadata.Arch, Classes = [.. metadata.Classes], Pretrained = metadata.Pretrained,
            ImgNorm = metadata.ImgNorm is { } norm ? ImgNorm(norm) : null,
            Metrics = metadata.Metrics.ToImmutableSortedDictionary(StringComparer.Ordinal),
            Tags = metadata.Tags.ToImmutableSortedDictionary(StringComparer.Ordinal),
            Description = metadata.Description,
            Source = new VersionSource
            {
                TrainingJobId = Optional(metadata.SourceTrainingJob), Commit = Optional(metadata.SourceCommit),
                PipelineUrl = Optional(metadata.SourcePipelineUrl), ParentVersion = Optional(metadata.ParentVersion),
            },
            DatasetFingerprint = Optional(metadata.DatasetFingerprint),
            Resize = metadata.Resize == 0 ? null : metadata.Resize,
            Sha256 = header.Sha256, SizeBytes = header.Size, IdempotencyKey = Optional(header.IdempotencyKey),
        };
    }

    /// <exception cref="IfcbException">InvalidArgument: not 1 or 3 finite means and as many stds, each &gt; 0.</exception>
    public static ImgNorm ImgNorm(Proto.ImgNormValues values) => WireInput(() => Proto.ImgNormProtos.ToImgNorm(values));

    public static VersionFilter ToEngine(this Proto.SearchVersionsRequest request) => new()
    {
        ModelName = Optional(request.Name),
        Status = request.Status == Proto.VersionStatus.Unspecified ? null : ToEngine(request.Status),
        Tags = request.Tags.ToImmutableSortedDictionary(StringComparer.Ordinal),
        Metrics = [.. request.Metrics.Select(m => new MetricThreshold(m.Metric, Operator(m.Op), m.Value))],
        Expression = SearchFilter.ForVersions(request.Filter),
    };

    /// <summary>The fields an UpdateVersion request sets; absent optional fields stay null (unchanged).</summary>
    public static VersionUpdate ToEngine(this Proto.UpdateVersionRequest request) => new()
    {
        Description = request.HasDescription ? request.Description : null,
        SetMetrics = request.SetMetrics.ToImmutableSortedDictionary(StringComparer.Ordinal),
        RemoveMetrics = [.. request.RemoveMetrics],
        SourceCommit = request.HasSourceCommit ? request.SourceCommit : null,
        SourcePipelineUrl = request.HasSourcePipelineUrl ? request.SourcePipelineUrl : null,
    };

    /// <exception cref="IfcbException">InvalidArgument: the fields do not make a reference (empty name, version out of range).</exception>
    public static ModelRef ToEngine(this Proto.VersionRef reference) => WireInput(() => Proto.ModelRefProtos.ToModelRef(reference));

    /// <summary>A client's message that does not make a domain value is the client's error: InvalidArgument, with its reason.</summary>
    private static T WireInput<T>(Func<T> convert)
    {
        try
        {
            return convert();
        }
        catch (FormatException e)
        {
            throw IfcbException.InvalidArgument(e.Message);
        }
    }

    /// <summary>The API's page size: 0 means the default of 100; the engine rejects anything outside 1..1000.</summary>
    public static int PageSize(int requested) => requested == 0 ? 100 : requested;

    public static string? Optional(string value) => string.IsNullOrEmpty(value) ? null : value;

    private static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static Proto.VersionStatus ToProto(ModelVersionStatus status) => status switch
    {
        ModelVersionStatus.Pending => Proto.VersionStatus.Pending,
        ModelVersionStatus.Ready => Proto.VersionStatus.Ready,
        ModelVersionStatus.Failed => Proto.VersionStatus.Failed,
        _ => Proto.VersionStatus.Unspecified,
    };

    private static ModelVersionStatus ToEngine(Proto.VersionStatus status) => status switch
    {
        Proto.VersionStatus.Pending => ModelVersionStatus.Pending,
        Proto.VersionStatus.Ready => ModelVersionStatus.Ready,
        Proto.VersionStatus.Failed => ModelVersionStatus.Failed,
        _ => throw IfcbException.InvalidArgument(
            $"Version status {(int)status} is unknown; use PENDING, READY, FAILED or UNSPECIFIED (any)."),
    };

    private static ComparisonOperator Operator(string op) => op.Trim() switch
    {
        ">=" => ComparisonOperator.GreaterThanOrEqual,
        ">" => ComparisonOperator.GreaterThan,
        "<=" => ComparisonOperator.LessThanOrEqual,
        "<" => ComparisonOperator.LessThan,
        "==" or "=" => ComparisonOperator.Equal,
        "!=" => ComparisonOperator.NotEqual,
        _ => throw IfcbException.InvalidArgument(
            $"Metric operator '{op}' is unknown; use one of >=, >, <=, <, ==, !=."),
    };

    private static string ActionName(AuditEntry entry) => entry.Action switch
    {
        AuditAction.ModelCreated => "model.created",
        AuditAction.ModelUpdated => "model.updated",
        AuditAction.ModelDeleted => "model.deleted",
        AuditAction.ModelRenamed => "model.renamed",
        AuditAction.VersionUpdated => "version.updated",
        AuditAction.ModelTagSet => "model.tag_set",
        AuditAction.ModelTagDeleted => "model.tag_deleted",
        AuditAction.VersionRegistered => "version.registered",
        AuditAction.VersionFailed => "version.failed",
        AuditAction.VersionTagSet => "version.tag_set",
        AuditAction.VersionTagDeleted => "version.tag_deleted",
        AuditAction.VersionDeleted => "version.deleted",
        AuditAction.AliasSet => entry.Details.TryGetValue("previous_version", out var previous) && previous.Length > 0
            ? "alias.moved"
            : "alias.set",
        AuditAction.AliasDeleted => "alias.deleted",
        _ => entry.Action.ToString(),
    };

}
