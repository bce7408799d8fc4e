using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Protos;
using MassTransit;
using Microsoft.Extensions.Logging;
using RequestFailedException = Azure.RequestFailedException;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Diagnostics.ProbePlumbing (diagnostics.proto), hosted by every service: writes a probe blob, asks other services
/// over RabbitMQ to read it, returns what each read and deletes the blob. Exists so tests and operators can prove that
/// bus and blob storage connect the services; the dashboard shows the whole probe as one trace. It writes, so it needs
/// the API key, and it only ever talks to the platform's own services (see <see cref="ProbePlan"/>).
/// </summary>
public sealed class PlumbingProbeService(ServiceIdentity identity, BlobServiceClient blobs, IClientFactory clients)
    : Ifcb.Protos.Diagnostics.DiagnosticsBase
{
    public const string Container = "diagnostics";

    public const string BlobPrefix = "probes/";

    [RequiresApiKey]
    public override async Task<ProbePlumbingReply> ProbePlumbing(ProbePlumbingRequest request, ServerCallContext context)
    {
        var plan = ProbePlan.From(request);

        var probeId = NewId.NextGuid();
        var blobName = $"{BlobPrefix}{probeId}.txt";
        var content = Encoding.UTF8.GetBytes($"probe {probeId} from {identity.InstanceId} at {DateTimeOffset.UtcNow:O}");
        var container = blobs.GetBlobContainerClient(Container);
        await container.CreateIfNotExistsAsync(cancellationToken: context.CancellationToken);
        var blob = container.GetBlobClient(blobName);
        try
        {
            await blob.UploadAsync(new BinaryData(content), overwrite: true, context.CancellationToken);
            var reply = new ProbePlumbingReply
            {
                ProbeId = probeId.ToString(),
                OriginService = identity.Service,
                BlobName = blobName,
                BlobSha256 = Convert.ToHexStringLower(SHA256.HashData(content)),
            };
            reply.Answers.AddRange(await Task.WhenAll(plan.Targets.Select(target =>
                AskAsync(target, new ReadProbeBlob(probeId, Container, blobName, identity.Service), plan.Timeout,
                    context.CancellationToken))));
            return reply;
        }
        finally
        {
            // Every answer is in (or the wait is over): the probe leaves nothing behind, whatever happened. Not the
            // caller's token: a cancelled call must still clean up.
            await blob.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
        }
    }

    private async Task<ProbeAnswer> AskAsync(string target, ReadProbeBlob question, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var client = clients.CreateRequestClient<ReadProbeBlob>(new Uri($"queue:{target}-probe"),
            RequestTimeout.After(ms: (int)timeout.TotalMilliseconds));
        try
        {
            var response = await client.GetResponse<ProbeBlobRead>(question, cancellationToken);
            return new ProbeAnswer
            {
                Service = response.Message.Service,
                InstanceId = response.Message.InstanceId,
                BlobSha256 = response.Message.BlobSha256,
                RoundTripMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds,
            };
        }
        catch (RequestTimeoutException)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"Service '{target}' did not answer the probe within {timeout.TotalSeconds:0.###} s (queue {target}-probe)."));
        }
    }
}

/// <summary>Answers <see cref="ReadProbeBlob"/>: reads the blob another service wrote and returns its SHA-256.</summary>
public sealed class ReadProbeBlobConsumer(ServiceIdentity identity, BlobServiceClient blobs, ILogger<ReadProbeBlobConsumer> logger)
    : IConsumer<ReadProbeBlob>
{
    public async Task Consume(ConsumeContext<ReadProbeBlob> context)
    {
        // Only probe blobs: the message names a container and blob, and this consumer must not read anything else.
        if (context.Message.Container != PlumbingProbeService.Container
            || !context.Message.BlobName.StartsWith(PlumbingProbeService.BlobPrefix, StringComparison.Ordinal)
            || context.Message.BlobName.Contains("..", StringComparison.Ordinal))
        {
            logger.LogWarning("Ignored a probe request for {Container}/{Blob}: probes read only {ProbeContainer}/{Prefix}*",
                context.Message.Container, context.Message.BlobName, PlumbingProbeService.Container, PlumbingProbeService.BlobPrefix);
            return;
        }
        var blob = blobs.GetBlobContainerClient(context.Message.Container).GetBlobClient(context.Message.BlobName);
        BinaryData content;
        try
        {
            content = (await blob.DownloadContentAsync(context.CancellationToken)).Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // The origin deletes its blob once its wait is over, so a late delivery finds nothing: nobody waits for
            // this answer any more, and failing would only park the message in an error queue.
            logger.LogInformation("Probe {ProbeId} from {Origin} arrived after its blob was removed; not answering",
                context.Message.ProbeId, context.Message.OriginService);
            return;
        }
        var sha = Convert.ToHexStringLower(SHA256.HashData(content.ToMemory().Span));
        await context.RespondAsync(new ProbeBlobRead(context.Message.ProbeId, identity.Service, identity.InstanceId, sha));
    }
}
