using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Contracts;
using Ifcb.Protos;
using MassTransit;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Diagnostics.ProbePlumbing (diagnostics.proto), hosted by every service: writes a probe blob, asks other services
/// over RabbitMQ to read it, and returns what each read. Exists so tests and operators can prove that bus and blob
/// storage connect the services; the dashboard shows the whole probe as one trace.
/// </summary>
public sealed class PlumbingProbeService(ServiceIdentity identity, BlobServiceClient blobs, IClientFactory clients)
    : Ifcb.Protos.Diagnostics.DiagnosticsBase
{
    public const string Container = "diagnostics";

    public override async Task<ProbePlumbingReply> ProbePlumbing(ProbePlumbingRequest request, ServerCallContext context)
    {
        if (request.Targets.Count == 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Name at least one target service, e.g. \"normstats\"."));
        var timeout = TimeSpan.FromMilliseconds(request.TimeoutMs > 0 ? request.TimeoutMs : 30_000);

        var probeId = NewId.NextGuid();
        var blobName = $"probes/{probeId}.txt";
        var content = Encoding.UTF8.GetBytes($"probe {probeId} from {identity.InstanceId} at {DateTimeOffset.UtcNow:O}");
        var container = blobs.GetBlobContainerClient(Container);
        await container.CreateIfNotExistsAsync(cancellationToken: context.CancellationToken);
        await container.GetBlobClient(blobName).UploadAsync(new BinaryData(content), overwrite: true, context.CancellationToken);

        var reply = new ProbePlumbingReply
        {
            ProbeId = probeId.ToString(),
            OriginService = identity.Service,
            BlobName = blobName,
            BlobSha256 = Convert.ToHexStringLower(SHA256.HashData(content)),
        };
        var answers = request.Targets.Select(async target =>
        {
            var started = Stopwatch.GetTimestamp();
            var client = clients.CreateRequestClient<ReadProbeBlob>(new Uri($"queue:{target}-probe"), RequestTimeout.After(ms: (int)timeout.TotalMilliseconds));
            try
            {
                var response = await client.GetResponse<ProbeBlobRead>(
                    new ReadProbeBlob(probeId, Container, blobName, identity.Service), context.CancellationToken);
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
                    $"Service '{target}' did not answer the probe within {timeout.TotalSeconds:0.#} s (queue {target}-probe)."));
            }
        });
        reply.Answers.AddRange(await Task.WhenAll(answers));
        return reply;
    }
}

/// <summary>Answers <see cref="ReadProbeBlob"/>: reads the blob another service wrote and returns its SHA-256.</summary>
public sealed class ReadProbeBlobConsumer(ServiceIdentity identity, BlobServiceClient blobs) : IConsumer<ReadProbeBlob>
{
    public async Task Consume(ConsumeContext<ReadProbeBlob> context)
    {
        var blob = blobs.GetBlobContainerClient(context.Message.Container).GetBlobClient(context.Message.BlobName);
        var content = await blob.DownloadContentAsync(context.CancellationToken);
        var sha = Convert.ToHexStringLower(SHA256.HashData(content.Value.Content.ToMemory().Span));
        await context.RespondAsync(new ProbeBlobRead(context.Message.ProbeId, identity.Service, identity.InstanceId, sha));
    }
}
