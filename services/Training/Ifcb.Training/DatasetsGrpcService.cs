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
        var staging = Directory.CreateTempSubdirectory("ifcb-upload-");
        try
        {
            // The dataset as it is when the upload begins: if another upload or a delete finishes first, this one is
            // Aborted instead of silently replacing what that one wrote.
            DatasetHead? head = null;
            var budget = new UploadBudget(DatasetLimits, "dataset upload");
            FileStream? open = null;
            string? openKey = null;
            try
            {
                await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
                {
                    if (chunk.PartCase == DatasetUploadChunk.PartOneofCase.Header)
                    {
                        if (head is not null)
                            throw IfcbException.InvalidArgument("The upload has a second header; send the dataset name once, first.");
                        head = await datasets.ReadHeadAsync(ResourceName.ValidateDatasetName(chunk.Header.Name), context.CancellationToken);
                        continue;
                    }
                    if (head is null)
                        throw IfcbException.InvalidArgument("Send the upload header (dataset name) before any file chunk.");
                    var file = chunk.File;
                    var key = $"{ResourceName.ValidateClassName(file.ClassName)}/{ResourceName.ValidateFileName(file.FileName)}";
                    if (key != openKey && open is not null)
                    {
                        await open.DisposeAsync();
                        open = null;
                    }
                    if (budget.Add(key, file.Data.Length))
                    {
                        Directory.CreateDirectory(Path.Combine(staging.FullName, file.ClassName));
                        open = new FileStream(Path.Combine(staging.FullName, file.ClassName, file.FileName), FileMode.CreateNew);
                        openKey = key;
                    }
                    await open!.WriteAsync(file.Data.Memory, context.CancellationToken);
                    if (file.Last)
                    {
                        await open.DisposeAsync();
                        open = null;
                        openKey = null;
                        budget.EndFile();
                    }
                }
            }
            finally
            {
                if (open is not null)
                    await open.DisposeAsync();
            }
            if (head is null)
                throw IfcbException.InvalidArgument("The upload had no header; send the dataset name first.");

            DatasetUploadResult result;
            try
            {
                result = await datasets.UploadFromFolderAsync(head.Name, staging.FullName, basedOn: head,
                    cancellationToken: context.CancellationToken);
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
            staging.Delete(recursive: true);
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
