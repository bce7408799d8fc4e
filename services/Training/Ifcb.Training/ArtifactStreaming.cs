using System.Security.Cryptography;
using Grpc.Core;
using Ifcb.Platform;
using Ifcb.Protos;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training;

/// <summary>A request's deadline_seconds, as Training and Runs read it.</summary>
internal static class JobDeadlines
{
    /// <summary>A request's deadline_seconds as an absolute time (null for 0); bounded by Limits.MaxJobDeadline.</summary>
    public static DateTimeOffset? From(long seconds, DateTimeOffset now) => seconds switch
    {
        0 => null,
        < 0 or > 30L * 24 * 3600 => throw IfcbException.InvalidArgument(
            $"deadline_seconds is {seconds}; give 1 to {(long)Limits.MaxJobDeadline.TotalSeconds} seconds, or 0 for none " +
            $"(limit {nameof(Limits.MaxJobDeadline)})."),
        _ => now.AddSeconds(seconds),
    };
}

/// <summary>A job's files (training artifacts, run outputs) listed and streamed to a client.</summary>
internal static class ArtifactStreaming
{
    /// <summary>The files and their sizes, with a content type guessed from the extension.</summary>
    public static async Task<ListArtifactsReply> ListAsync(BlobArtifactSink artifacts, CancellationToken cancellationToken)
    {
        var reply = new ListArtifactsReply();
        await foreach (var (name, size) in artifacts.ListAsync(cancellationToken))
            reply.Artifacts.Add(new Artifact { Name = name, Size = size, ContentType = ContentType(name) });
        return reply;
    }

    /// <summary>One file by the name the listing gave: InvalidArgument for names that escape, NotFound for unknown ones.</summary>
    public static async Task StreamArtifactAsync(BlobArtifactSink artifacts, DownloadArtifactRequest request,
        IServerStreamWriter<DataChunk> responseStream, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Contains("..", StringComparison.Ordinal)
            || request.Name.StartsWith('/'))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"Artifact name '{request.Name}' is not valid; use a name from the listing."));
        }
        var blob = artifacts.Blob(request.Name);
        if (!await blob.ExistsAsync(context.CancellationToken))
            throw new RpcException(new Status(StatusCode.NotFound, $"Job {request.JobId} has no file '{request.Name}'; see the listing."));
        await StreamAsync(blob, responseStream, context.CancellationToken);
    }

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".png" => "image/png",
        ".json" => "application/json",
        ".csv" => "text/csv",
        ".list" => "text/plain",
        _ => "application/octet-stream",
    };

    public const int ChunkSize = 256 * 1024;

    /// <summary>Streams a blob as gRPC chunks: total size on the first, SHA-256 on the last.</summary>
    public static async Task StreamAsync(Azure.Storage.Blobs.BlobClient blob, IServerStreamWriter<DataChunk> stream,
        CancellationToken cancellationToken)
    {
        var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
        await using var content = download.Value.Content;
        var total = download.Value.Details.ContentLength;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[ChunkSize];
        var first = true;
        int read;
        var pending = (DataChunk?)null;
        while ((read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
        {
            sha.AppendData(buffer, 0, read);
            if (pending is not null)
                await stream.WriteAsync(pending, cancellationToken);
            pending = new DataChunk { Data = Google.Protobuf.ByteString.CopyFrom(buffer, 0, read) };
            if (first)
            {
                pending.TotalSize = total;
                first = false;
            }
        }
        pending ??= new DataChunk { TotalSize = 0 };
        pending.Sha256 = Convert.ToHexStringLower(sha.GetHashAndReset());
        await stream.WriteAsync(pending, cancellationToken);
    }
}
