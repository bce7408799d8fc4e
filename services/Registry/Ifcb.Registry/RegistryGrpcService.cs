using Google.Protobuf;
using Grpc.Core;
using Ifcb.Protos;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// The Registry gRPC API (protos/registry.proto): a thin adapter over <see cref="ModelRegistry"/>. Errors are the
/// engine's <see cref="Ifcb.Platform.IfcbException"/>s, mapped to status codes by the platform's ErrorInterceptor;
/// every successful change is announced on the bus by <see cref="RegistryEvents"/>.
/// </summary>
public sealed class RegistryGrpcService(
    ServiceIdentity identity, ModelRegistry registry, VersionExports exports, VersionEvaluations evaluations, VersionLineage lineage,
    RegistryWebhooks webhooks, RegistryEvents events, RegistryLimits limits, ApiKeys keys)
    : Ifcb.Protos.Registry.RegistryBase
{
    /// <summary>Download chunk size: large enough that per-message overhead is small, well under gRPC's 4 MiB default limit.</summary>
    public const int DownloadChunkBytes = 1024 * 1024;

    [ReadOnlyRpc]
    public override Task<ServiceInfo> GetInfo(GetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(identity.ToServiceInfo(
            [new("max_checkpoint_bytes", limits.MaxCheckpointBytes.ToString(System.Globalization.CultureInfo.InvariantCulture))]));

    // ----- Registered models -----

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> CreateModel(CreateModelRequest request, ServerCallContext context) =>
        (await registry.CreateModelAsync(request.Name, ApiKeyInterceptor.Actor(context), request.Description, request.Tags,
            context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override async Task<Ifcb.Protos.RegisteredModel> GetModel(GetModelRequest request, ServerCallContext context) =>
        (await registry.GetModelAsync(request.Name, context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override async Task<ListModelsReply> ListModels(ListModelsRequest request, ServerCallContext context)
    {
        var page = await registry.ListModelsAsync(RegistryProtoMapping.PageSize(request.PageSize),
            RegistryProtoMapping.Optional(request.PageToken), context.CancellationToken);
        var reply = new ListModelsReply { NextPageToken = page.NextPageToken ?? "" };
        reply.Models.Add(page.Items.Select(m => m.ToProto()));
        return reply;
    }

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> UpdateModel(UpdateModelRequest request, ServerCallContext context) =>
        (await registry.UpdateModelDescriptionAsync(request.Name, request.Description, ApiKeyInterceptor.Actor(context),
            context.CancellationToken)).ToProto();

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> DeleteModel(DeleteModelRequest request, ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var deletion = await registry.DeleteModelAsync(request.Name, actor, request.Force, context.CancellationToken);
        await events.ModelDeletedAsync(deletion, actor, context.CancellationToken);
        return deletion.Model.ToProto();
    }

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> RenameModel(RenameModelRequest request, ServerCallContext context) =>
        (await registry.RenameModelAsync(request.Name, request.NewName, ApiKeyInterceptor.Actor(context), context.CancellationToken))
            .ToProto();

    // ----- Versions -----

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.ModelVersion> RegisterVersion(IAsyncStreamReader<RegisterVersionChunk> requestStream,
        ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;
        if (!await UploadedCheckpoint.NextWithinAsync(requestStream, limits.UploadIdleTimeout, cancellationToken)
            || requestStream.Current.PartCase != RegisterVersionChunk.PartOneofCase.Header)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                "RegisterVersion must start with a header message (name, metadata, sha256, size), followed by the checkpoint bytes."));
        }

        var header = requestStream.Current.Header;
        var request = header.ToEngine();
        // Everything about the request, the size limit included, is checked before the model is created or a byte stored.
        RegistryValidation.ModelName(header.Name);
        RegistryValidation.NewVersion(request, limits.MaxCheckpointBytes);

        var actor = ApiKeyInterceptor.Actor(context);
        await registry.EnsureModelAsync(header.Name, actor, cancellationToken);
        // Only now may the client send the bytes: a refusal above reaches it before any are in flight.
        await context.WriteResponseHeadersAsync(new Metadata { { UploadProtocol.SendDataHeader, "1" } });
        var registration = await UploadedCheckpoint.ConsumeAsync(requestStream, header.Size, limits.UploadIdleTimeout,
            async checkpoint =>
            {
                try
                {
                    return await registry.RegisterVersionAsync(header.Name, request, checkpoint, actor, cancellationToken);
                }
                catch (Exception e) when (ModelRegistry.FailedVersionOf(e) is { } failed)
                {
                    // Announced here, where the engine's failure is still in hand (a client failure replaces it below).
                    await events.VersionFailedAsync(failed, actor);
                    throw;
                }
            }, cancellationToken);
        await events.VersionRegisteredAsync(registration.Version, actor, cancellationToken);
        return registration.Version.ToProto();
    }

    [ReadOnlyRpc]
    public override async Task<Ifcb.Protos.ModelVersion> GetVersion(VersionRef request, ServerCallContext context) =>
        (await registry.GetVersionAsync(request.ToEngine(), context.CancellationToken)).ToProto();

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.ModelVersion> UpdateVersion(UpdateVersionRequest request, ServerCallContext context) =>
        (await registry.UpdateVersionAsync(request.Name, request.Version, request.ToEngine(), ApiKeyInterceptor.Actor(context),
            context.CancellationToken)).ToProto();

    [ReadOnlyRpc]
    public override async Task<SearchVersionsReply> SearchVersions(SearchVersionsRequest request, ServerCallContext context)
    {
        var page = await registry.SearchVersionsAsync(request.ToEngine(), SearchOrder.ForVersions(request.OrderBy),
            RegistryProtoMapping.PageSize(request.PageSize), RegistryProtoMapping.Optional(request.PageToken), context.CancellationToken);
        var reply = new SearchVersionsReply { NextPageToken = page.NextPageToken ?? "" };
        reply.Versions.Add(page.Items.Select(v => v.ToProto()));
        return reply;
    }

    [ReadOnlyRpc]
    public override async Task<SearchModelsReply> SearchModels(SearchModelsRequest request, ServerCallContext context)
    {
        var page = await registry.SearchModelsAsync(request.Filter, request.OrderBy, RegistryProtoMapping.PageSize(request.PageSize),
            RegistryProtoMapping.Optional(request.PageToken), context.CancellationToken);
        var reply = new SearchModelsReply { NextPageToken = page.NextPageToken ?? "" };
        reply.Models.Add(page.Items.Select(m => m.ToProto()));
        return reply;
    }

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.ModelVersion> DeleteVersion(DeleteVersionRequest request, ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var deleted = await registry.DeleteVersionAsync(request.Name, request.Version, actor, request.Force, context.CancellationToken);
        await events.VersionDeletedAsync(deleted, actor, context.CancellationToken);
        return deleted.ToProto();
    }

    // ----- Tags -----

    [RequiresApiKey]
    public override Task<Ifcb.Protos.RegisteredModel> SetModelTag(SetTagRequest request, ServerCallContext context) =>
        ChangeModelTagAsync(request.Name, request.Key, request.Value, context);

    [RequiresApiKey]
    public override Task<Ifcb.Protos.RegisteredModel> DeleteModelTag(DeleteTagRequest request, ServerCallContext context) =>
        ChangeModelTagAsync(request.Name, request.Key, null, context);

    [RequiresApiKey]
    public override Task<Ifcb.Protos.ModelVersion> SetVersionTag(SetTagRequest request, ServerCallContext context) =>
        ChangeVersionTagAsync(request.Name, request.Version, request.Key, request.Value, context);

    [RequiresApiKey]
    public override Task<Ifcb.Protos.ModelVersion> DeleteVersionTag(DeleteTagRequest request, ServerCallContext context) =>
        ChangeVersionTagAsync(request.Name, request.Version, request.Key, null, context);

    /// <summary>Sets (or with a null value removes) a model tag, and announces it if that changed the tag.</summary>
    private async Task<Ifcb.Protos.RegisteredModel> ChangeModelTagAsync(string name, string key, string? value, ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var change = await registry.ChangeModelTagAsync(name, key, value, actor, context.CancellationToken);
        await events.TagChangedAsync(name, null, key, value, change.Changed, actor, context.CancellationToken);
        return change.Value.ToProto();
    }

    /// <summary>Sets (or with a null value removes) a version tag, and announces it if that changed the tag.</summary>
    private async Task<Ifcb.Protos.ModelVersion> ChangeVersionTagAsync(string name, int version, string key, string? value,
        ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var change = await registry.ChangeVersionTagAsync(name, version, key, value, actor, context.CancellationToken);
        await events.TagChangedAsync(name, version, key, value, change.Changed, actor, context.CancellationToken);
        return change.Value.ToProto();
    }

    // ----- Aliases -----

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> SetAlias(SetAliasRequest request, ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var change = await registry.SetAliasAsync(request.Name, request.Alias, request.Version, actor, context.CancellationToken);
        await events.AliasChangedAsync(change, actor, context.CancellationToken);
        return change.Model.ToProto();
    }

    [RequiresApiKey]
    public override async Task<Ifcb.Protos.RegisteredModel> DeleteAlias(DeleteAliasRequest request, ServerCallContext context)
    {
        var actor = ApiKeyInterceptor.Actor(context);
        var change = await registry.DeleteAliasAsync(request.Name, request.Alias, actor, context.CancellationToken);
        await events.AliasChangedAsync(change, actor, context.CancellationToken);
        return change.Model.ToProto();
    }

    // ----- Checkpoints and history -----

    [ReadOnlyRpc]
    public override async Task DownloadCheckpoint(VersionRef request, IServerStreamWriter<DataChunk> responseStream,
        ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;
        await using var download = await registry.OpenCheckpointAsync(request.ToEngine(), cancellationToken);
        await SendChunksAsync(download.Content, download.SizeBytes, download.Sha256, responseStream.WriteAsync, cancellationToken);
    }

    [ReadOnlyRpc]
    public override async Task ExportVersion(ExportVersionRequest request, IServerStreamWriter<ExportChunk> responseStream,
        ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;
        if (request.Format is not ("" or ExportRequest.Onnx))
        {
            throw Ifcb.Platform.IfcbException.InvalidArgument(
                $"Unknown export format '{request.Format}'; the one format is {ExportRequest.Onnx}.");
        }
        var export = new ExportRequest(request.StaticBatch == 0 ? null : request.StaticBatch);
        await using var opened = await exports.OpenAsync((request.Version ?? new VersionRef()).ToEngine(), export, cancellationToken);
        await responseStream.WriteAsync(new ExportChunk
        {
            Info = new ExportInfo
            {
                Version = opened.Version.ToProto(), Format = ExportRequest.Onnx, FileName = export.FileName, Cached = opened.Cached,
            },
        }, cancellationToken);
        await SendChunksAsync(opened.Content, opened.SizeBytes, opened.Sha256,
            (chunk, token) => responseStream.WriteAsync(new ExportChunk { Chunk = chunk }, token), cancellationToken);
    }

    [ReadOnlyRpc]
    public override async Task<ListEvaluationsReply> ListEvaluations(VersionRef request, ServerCallContext context)
    {
        var reply = new ListEvaluationsReply();
        foreach (var e in await evaluations.ListAsync(request.ToEngine(), context.CancellationToken))
        {
            reply.Evaluations.Add(new Evaluation
            {
                Dataset = e.Dataset, DatasetFingerprint = e.DatasetFingerprint, JobId = e.JobId,
                EvaluatedAt = e.EvaluatedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture), Images = e.Images,
                Accuracy = e.Accuracy, F1Weighted = e.F1Weighted, F1Macro = e.F1Macro, ReportJson = e.ReportJson,
            });
        }
        return reply;
    }

    [ReadOnlyRpc]
    public override async Task<Ifcb.Protos.Lineage> GetLineage(VersionRef request, ServerCallContext context)
    {
        var found = await lineage.GetAsync(request.ToEngine(), context.CancellationToken);
        var reply = new Ifcb.Protos.Lineage
        {
            Version = found.Version.ToProto(),
            UsesTotal = found.UsesTotal,
        };
        reply.Children.Add(found.Children.Select(c => c.Version));
        reply.Uses.Add(found.Uses.Select(u => new Ifcb.Protos.VersionUse
        {
            JobId = u.JobId, Kind = u.Kind, At = u.At.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        }));
        return reply;
    }

    /// <summary>
    /// Sends <paramref name="content"/> as DataChunks. One chunk is read ahead so the last chunk is known when it is sent
    /// and can carry the sha256. The content streams verify size and sha256 on the read that reaches the end, so
    /// corrupted storage fails the call (DataLoss) before the last chunk, and the client never receives a sha256 for
    /// bytes that do not match it.
    /// </summary>
    private static async Task SendChunksAsync(Stream content, long size, string sha256, Func<DataChunk, CancellationToken, Task> write,
        CancellationToken cancellationToken)
    {
        var current = await ReadChunkAsync(content, cancellationToken);
        var first = true;
        while (current.Length > 0)
        {
            var next = await ReadChunkAsync(content, cancellationToken);
            await write(new DataChunk
            {
                Data = UnsafeByteOperations.UnsafeWrap(current),
                TotalSize = first ? size : 0,
                Sha256 = next.Length == 0 ? sha256 : "",
            }, cancellationToken);
            first = false;
            current = next;
        }
    }

    [ReadOnlyRpc]
    public override async Task<HistoryReply> GetHistory(GetHistoryRequest request, ServerCallContext context)
    {
        var page = await registry.GetAuditHistoryAsync(request.Name, RegistryProtoMapping.PageSize(request.PageSize),
            RegistryProtoMapping.Optional(request.PageToken), context.CancellationToken);
        var reply = new HistoryReply { NextPageToken = page.NextPageToken ?? "" };
        reply.Entries.Add(page.Items.Select(e => e.ToProto()));
        return reply;
    }

    // ----- API keys -----

    [RequiresAdmin]
    public override async Task<CreateApiKeyReply> CreateApiKey(CreateApiKeyRequest request, ServerCallContext context)
    {
        var created = await keys.CreateAsync(request.Name, Ifcb.Platform.ApiRoles.Parse(request.Role), ApiKeyInterceptor.Actor(context),
            context.CancellationToken);
        return new CreateApiKeyReply { Info = created.Record.ToProto(), Key = created.Key };
    }

    [RequiresAdmin]
    public override async Task<ListApiKeysReply> ListApiKeys(ListApiKeysRequest request, ServerCallContext context)
    {
        var reply = new ListApiKeysReply();
        reply.Keys.Add((await keys.ListAsync(context.CancellationToken)).Select(k => k.ToProto()));
        return reply;
    }

    [RequiresAdmin]
    public override async Task<ApiKeyInfo> RevokeApiKey(RevokeApiKeyRequest request, ServerCallContext context) =>
        (await keys.RevokeAsync(request.Name, ApiKeyInterceptor.Actor(context), context.CancellationToken)).ToProto();

    // ----- Webhooks (deliveries are made by DeliverWebhookConsumer, never inside an RPC) -----

    [RequiresAdmin]
    public override async Task<Ifcb.Protos.Webhook> CreateWebhook(CreateWebhookRequest request, ServerCallContext context) =>
        (await webhooks.CreateAsync(new NewWebhook(request.Url, RegistryProtoMapping.Optional(request.Model), [.. request.Events],
            request.Secret), ApiKeyInterceptor.Actor(context), context.CancellationToken)).ToProto();

    [RequiresAdmin]
    public override async Task<ListWebhooksReply> ListWebhooks(ListWebhooksRequest request, ServerCallContext context)
    {
        var reply = new ListWebhooksReply();
        reply.Webhooks.Add((await webhooks.ListAsync(context.CancellationToken)).Select(w => w.ToProto()));
        return reply;
    }

    [RequiresAdmin]
    public override async Task<Ifcb.Protos.Webhook> DeleteWebhook(WebhookRef request, ServerCallContext context) =>
        (await webhooks.DeleteAsync(request.Id, context.CancellationToken)).ToProto();

    [RequiresAdmin]
    public override async Task<Ifcb.Protos.WebhookDelivery> TestWebhook(WebhookRef request, ServerCallContext context)
    {
        var delivery = await webhooks.PingAsync(request.Id, ApiKeyInterceptor.Actor(context), context.CancellationToken);
        await events.DeliveryDueAsync(delivery, context.CancellationToken);
        return delivery.ToProto();
    }

    [RequiresAdmin]
    public override async Task<ListWebhookDeliveriesReply> ListWebhookDeliveries(ListWebhookDeliveriesRequest request,
        ServerCallContext context)
    {
        var page = await webhooks.ListDeliveriesAsync(request.Id, RegistryProtoMapping.PageSize(request.PageSize),
            RegistryProtoMapping.Optional(request.PageToken), context.CancellationToken);
        var reply = new ListWebhookDeliveriesReply { NextPageToken = page.NextPageToken ?? "" };
        reply.Deliveries.Add(page.Items.Select(d => d.ToProto()));
        return reply;
    }

    /// <summary>
    /// Reads up to one chunk (fewer bytes only at the end); empty at the end. A fresh array, since gRPC keeps it until sent.
    /// </summary>
    private static async Task<ReadOnlyMemory<byte>> ReadChunkAsync(Stream content, CancellationToken cancellationToken)
    {
        var buffer = new byte[DownloadChunkBytes];
        var read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        return buffer.AsMemory(0, read);
    }
}
