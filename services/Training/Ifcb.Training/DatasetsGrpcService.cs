using Grpc.Core;
using Ifcb.Data.Datasets;
using Ifcb.Platform;
using Ifcb.Protos;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Training;

/// <summary>The Datasets gRPC API (protos/training.proto): class-folder image datasets in blob storage.</summary>
public sealed class DatasetsGrpcService(BlobDatasetStore datasets, Ifcb.Data.Bins.BlobBinSetStore binSets, IConfiguration configuration) : Datasets.DatasetsBase
{
    private long MaxFileBytes => configuration.GetValue("Ifcb:MaxUploadFileBytes", 32L * 1024 * 1024);
    private long MaxUploadBytes => configuration.GetValue("Ifcb:MaxUploadBytes", 8L * 1024 * 1024 * 1024);

    [RequiresApiKey]
    public override async Task<DatasetInfo> Upload(IAsyncStreamReader<DatasetUploadChunk> requestStream, ServerCallContext context)
    {
        var staging = Directory.CreateTempSubdirectory("ifcb-upload-");
        try
        {
            string? name = null;
            long total = 0;
            FileStream? open = null;
            string? openKey = null;
            try
            {
                await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
                {
                    if (chunk.PartCase == DatasetUploadChunk.PartOneofCase.Header)
                    {
                        name = Validate(() => ResourceName.ValidateDatasetName(chunk.Header.Name));
                        continue;
                    }
                    if (name is null)
                        throw new RpcException(new Status(StatusCode.InvalidArgument, "Send the upload header (dataset name) before any file chunk."));
                    var file = chunk.File;
                    var className = Validate(() => ResourceName.ValidateClassName(file.ClassName));
                    var fileName = Validate(() => ResourceName.ValidateFileName(file.FileName));
                    var key = $"{className}/{fileName}";
                    if (key != openKey)
                    {
                        if (open is not null)
                            await open.DisposeAsync();
                        Directory.CreateDirectory(Path.Combine(staging.FullName, className));
                        open = new FileStream(Path.Combine(staging.FullName, className, fileName), FileMode.Append);
                        openKey = key;
                    }
                    total += file.Data.Length;
                    if (open!.Length + file.Data.Length > MaxFileBytes)
                        throw new RpcException(new Status(StatusCode.InvalidArgument,
                            $"{key} is larger than the {MaxFileBytes / (1024 * 1024)} MiB per-file limit (Ifcb:MaxUploadFileBytes)."));
                    if (total > MaxUploadBytes)
                        throw new RpcException(new Status(StatusCode.InvalidArgument,
                            $"The upload exceeds the {MaxUploadBytes / (1024 * 1024)} MiB limit (Ifcb:MaxUploadBytes)."));
                    await open.WriteAsync(file.Data.Memory, context.CancellationToken);
                    if (file.Last)
                    {
                        await open.DisposeAsync();
                        open = null;
                        openKey = null;
                    }
                }
            }
            finally
            {
                if (open is not null)
                    await open.DisposeAsync();
            }
            if (name is null)
                throw new RpcException(new Status(StatusCode.InvalidArgument, "The upload had no header; send the dataset name first."));

            DatasetUploadResult result;
            try
            {
                result = await datasets.UploadFromFolderAsync(name, staging.FullName, cancellationToken: context.CancellationToken);
            }
            catch (InvalidDataException e)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
            }
            var info = ToInfo(result.Manifest);
            info.Uploaded = result.Uploaded;
            info.Skipped = result.AlreadyPresent;
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
        string? name = null;
        var files = new HashSet<string>(StringComparer.Ordinal);
        long bytes = 0;
        string? current = null;
        using var buffer = new MemoryStream();
        async Task FlushAsync()
        {
            if (current is null)
                return;
            buffer.Position = 0;
            await binSets.UploadFileAsync(name!, current, buffer, context.CancellationToken);
            files.Add(current);
            buffer.SetLength(0);
            current = null;
        }
        await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
        {
            if (chunk.PartCase == DatasetUploadChunk.PartOneofCase.Header)
            {
                name = Validate(() => ResourceName.ValidateDatasetName(chunk.Header.Name));
                continue;
            }
            if (name is null)
                throw new RpcException(new Status(StatusCode.InvalidArgument, "Send the upload header (bin set name) before any file chunk."));
            var fileName = Validate(() => Ifcb.Data.Bins.BlobBinSetStore.ValidateFileName(chunk.File.FileName));
            if (fileName != current)
            {
                await FlushAsync();
                if (files.Contains(fileName))
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"{fileName} appears twice in this upload; a bin set is flat, so every bin (lid) may appear once."));
            }
            current = fileName;
            bytes += chunk.File.Data.Length;
            if (buffer.Length + chunk.File.Data.Length > MaxFileBytes * 16)
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"{fileName} is larger than the per-file limit for bins."));
            await buffer.WriteAsync(chunk.File.Data.Memory, context.CancellationToken);
            if (chunk.File.Last)
                await FlushAsync();
        }
        await FlushAsync();
        if (name is null)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "The upload had no header; send the bin set name first."));
        return new BinSetInfo { Name = name, Files = files.Count, Bytes = bytes };
    }

    [ReadOnlyRpc]
    public override async Task<ListDatasetsReply> List(ListDatasetsRequest request, ServerCallContext context)
    {
        var reply = new ListDatasetsReply();
        foreach (var name in await datasets.ListAsync(context.CancellationToken))
            reply.Datasets.Add(ToInfo(await datasets.GetManifestAsync(name, context.CancellationToken)));
        return reply;
    }

    [ReadOnlyRpc]
    public override async Task<DatasetInfo> Describe(DatasetRef request, ServerCallContext context) =>
        ToInfo(await Map(() => datasets.GetManifestAsync(request.Name, context.CancellationToken)));

    [RequiresApiKey]
    public override async Task<DatasetInfo> Delete(DatasetRef request, ServerCallContext context)
    {
        var manifest = await Map(() => datasets.GetManifestAsync(request.Name, context.CancellationToken));
        await datasets.DeleteAsync(request.Name, context.CancellationToken);
        return ToInfo(manifest);
    }

    private static DatasetInfo ToInfo(DatasetManifest manifest)
    {
        var info = new DatasetInfo { Name = manifest.Name, Fingerprint = manifest.Fingerprint, Images = manifest.Files.Count, Bytes = manifest.TotalBytes };
        info.Classes.AddRange(manifest.CountPerClass.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => new ClassCount { Name = c.Key, Images = c.Value }));
        return info;
    }

    private static string Validate(Func<string> validate)
    {
        try
        {
            return validate();
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }

    private static async Task<T> Map<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (KeyNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, e.Message));
        }
    }
}
