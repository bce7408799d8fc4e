using Grpc.Core;
using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Protos;

namespace Ifcb.Training;

/// <summary>
/// The Datasets gRPC API (protos/datasets.proto): class-folder image datasets and RUN bin sets in blob storage. Uploads
/// are counted against their limits as they stream in; failures are IfcbException/ArgumentException/KeyNotFoundException,
/// which the ErrorInterceptor maps to InvalidArgument, NotFound and Aborted.
/// </summary>
public sealed class DatasetsGrpcService(BlobDatasetStore datasets, BlobBinSetStore binSets, IConfiguration configuration)
    : Datasets.DatasetsBase
{
    private UploadLimits DatasetLimits => new(
        configuration.GetValue("Ifcb:MaxUploadFileBytes", 32L * 1024 * 1024),
        configuration.GetValue("Ifcb:MaxUploadFiles", 1_000_000),
        configuration.GetValue("Ifcb:MaxUploadBytes", 8L * 1024 * 1024 * 1024))
    {
        MaxFileBytesSetting = "Ifcb:MaxUploadFileBytes", MaxFilesSetting = "Ifcb:MaxUploadFiles",
        MaxTotalBytesSetting = "Ifcb:MaxUploadBytes",
    };

    private UploadLimits BinSetLimits => new(
        configuration.GetValue("Ifcb:MaxBinFileBytes", 512L * 1024 * 1024),
        configuration.GetValue("Ifcb:MaxUploadBinFiles", 30_000),
        configuration.GetValue("Ifcb:MaxUploadBytes", 8L * 1024 * 1024 * 1024))
    {
        MaxFileBytesSetting = "Ifcb:MaxBinFileBytes", MaxFilesSetting = "Ifcb:MaxUploadBinFiles",
        MaxTotalBytesSetting = "Ifcb:MaxUploadBytes",
    };

    [RequiresApiKey]
    public override async Task<DatasetInfo> Upload(IAsyncStreamReader<DatasetUploadChunk> requestStream, ServerCallContext context)
    {
        // The dataset as it is when the upload begins: if another upload or a delete finishes first, this one is Aborted
        // instead of silently replacing what that one wrote. Images go into shards as they arrive (nothing is staged).
        DatasetUploadSession? session = null;
        try
        {
            var budget = new UploadBudget(DatasetLimits, "dataset upload");
            var file = new MemoryStream();
            (string Class, string File)? open = null;
            await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
            {
                if (chunk.PartCase == DatasetUploadChunk.PartOneofCase.Header)
                {
                    if (session is not null)
                        throw IfcbException.InvalidArgument("The upload has a second header; send the dataset name once, first.");
                    session = await datasets.BeginUploadAsync(ResourceName.ValidateDatasetName(chunk.Header.Name),
                        cancellationToken: context.CancellationToken);
                    continue;
                }
                if (session is null)
                    throw IfcbException.InvalidArgument("Send the upload header (dataset name) before any file chunk.");
                var part = chunk.File;
                var name = (ResourceName.ValidateClassName(part.ClassName), ResourceName.ValidateFileName(part.FileName));
                if (open is { } previous && previous != name)
                    await AddAsync(session, previous, file, context.CancellationToken); // chunks of the next file: this one ended
                if (budget.Add($"{name.Item1}/{name.Item2}", part.Data.Length))
                    open = name;
                file.Write(part.Data.Span);
                if (part.Last)
                {
                    await AddAsync(session, name, file, context.CancellationToken);
                    open = null;
                    budget.EndFile();
                }
            }
            if (session is null)
                throw IfcbException.InvalidArgument("The upload had no header; send the dataset name first.");
            if (open is { } unfinished)
                await AddAsync(session, unfinished, file, context.CancellationToken);

            DatasetUploadResult result;
            try
            {
                result = await session.CommitAsync(context.CancellationToken);
            }
            catch (InvalidDataException e)
            {
                throw IfcbException.InvalidArgument(e.Message);
            }
            var info = ToInfo(result.Dataset);
            info.Uploaded = result.Uploaded;
            info.Skipped = result.AlreadyPresent;
            info.ShardsUploaded = result.ShardsUploaded;
            return info;
        }
        finally
        {
            if (session is not null)
                await session.DisposeAsync();
        }
    }

    private static async Task AddAsync(DatasetUploadSession session, (string Class, string File) name, MemoryStream file,
        CancellationToken cancellationToken)
    {
        var content = file.ToArray();
        file.SetLength(0);
        try
        {
            await session.AddAsync(name.Class, name.File, content, cancellationToken);
        }
        catch (ArgumentException e)
        {
            throw IfcbException.InvalidArgument(e.Message);
        }
    }

    [RequiresApiKey]
    public override async Task<BinSetInfo> UploadBins(IAsyncStreamReader<DatasetUploadChunk> requestStream, ServerCallContext context)
    {
        BinSetWriter? writer = null;
        try
        {
            await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
            {
                if (chunk.PartCase == DatasetUploadChunk.PartOneofCase.Header)
                {
                    if (writer is not null)
                        throw IfcbException.InvalidArgument("The upload has a second header; send the bin set name once, first.");
                    writer = await binSets.BeginUploadAsync(chunk.Header.Name, BinSetLimits, context.CancellationToken);
                    continue;
                }
                if (writer is null)
                    throw IfcbException.InvalidArgument("Send the upload header (bin set name) before any file chunk.");
                await writer.WriteAsync(chunk.File.FileName, chunk.File.Data.Memory, chunk.File.Last, context.CancellationToken);
            }
            if (writer is null)
                throw IfcbException.InvalidArgument("The upload had no header; send the bin set name first.");
            var listing = await writer.CommitAsync(context.CancellationToken);
            return new BinSetInfo { Name = listing.Name, Id = listing.Id, Files = listing.Files.Count, Bytes = listing.Bytes };
        }
        finally
        {
            if (writer is not null)
                await writer.DisposeAsync();
        }
    }

    [ReadOnlyRpc]
    public override async Task<ListDatasetsReply> List(ListDatasetsRequest request, ServerCallContext context)
    {
        var reply = new ListDatasetsReply();
        foreach (var name in await datasets.ListAsync(context.CancellationToken))
        {
            try
            {
                reply.Datasets.Add(ToInfo(await datasets.DescribeAsync(name, context.CancellationToken)));
            }
            catch (KeyNotFoundException)
            {
                // deleted between listing and reading
            }
        }
        return reply;
    }

    [ReadOnlyRpc]
    public override async Task<DatasetInfo> Describe(DatasetRef request, ServerCallContext context) =>
        ToInfo(await datasets.DescribeAsync(request.Name, context.CancellationToken));

    [RequiresApiKey]
    public override async Task<DatasetInfo> Delete(DatasetRef request, ServerCallContext context) =>
        ToInfo(await datasets.DeleteAsync(request.Name, context.CancellationToken));

    private static DatasetInfo ToInfo(DatasetDescription dataset)
    {
        var info = new DatasetInfo
        {
            Name = dataset.Name, Fingerprint = dataset.Fingerprint, Images = dataset.FileCount, Bytes = dataset.TotalBytes,
            Generation = dataset.Generation ?? "", Shards = dataset.Shards,
        };
        info.Classes.AddRange(dataset.CountPerClass.OrderBy(c => c.Key, StringComparer.Ordinal)
            .Select(c => new ClassCount { Name = c.Key, Images = c.Value }));
        return info;
    }
}
