using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Data.Datasets;
using Ifcb.NormStats.Engine.Jobs;
using Ifcb.Platform;
using MassTransit;

namespace Ifcb.NormStats;

/// <summary>
/// Reads datasets through read grants from the Training service, which owns them: it asks with
/// <see cref="GrantDatasetRead"/> over the bus and opens the SAS URI it gets back. A grant covers the datasets
/// container (flat blob namespaces have no narrower read-only SAS) and is reused until shortly before it expires.
/// </summary>
public sealed class GrantedDatasetSource(IClientFactory clients, TimeProvider time, ILogger<GrantedDatasetSource> logger)
    : IDatasetSource, IDisposable
{
    /// <summary>A grant this close to its expiry is renewed first, so a shard never starts on one about to lapse.</summary>
    public static readonly TimeSpan RenewBefore = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _renewing = new(1, 1);
    private volatile Grant? _current;

    private sealed record Grant(BlobDatasetStore Store, DateTimeOffset ExpiresOn);

    public async ValueTask<BlobDatasetStore> OpenAsync(string dataset, CancellationToken cancellationToken)
    {
        if (Usable(_current) is { } current)
            return current.Store;
        await _renewing.WaitAsync(cancellationToken);
        try
        {
            if (Usable(_current) is { } renewed)
                return renewed.Store;
            var grant = await AskAsync(dataset, cancellationToken);
            logger.LogInformation("Training granted read access to the datasets until {ExpiresOn:O}", grant.ExpiresOn);
            var store = new BlobDatasetStore(new BlobContainerClient(grant.ContainerUri, BlobExtensions.ClientOptions()));
            _current = new Grant(store, grant.ExpiresOn);
            return store;
        }
        finally
        {
            _renewing.Release();
        }
    }

    private Grant? Usable(Grant? grant) => grant is not null && grant.ExpiresOn - time.GetUtcNow() > RenewBefore ? grant : null;

    private async Task<DatasetReadGrant> AskAsync(string dataset, CancellationToken cancellationToken)
    {
        try
        {
            var client = clients.CreateRequestClient<GrantDatasetRead>(RequestTimeout.After(s: (int)AskTimeout.TotalSeconds));
            return (await client.GetResponse<DatasetReadGrant>(new GrantDatasetRead(dataset), cancellationToken)).Message;
        }
        catch (RequestTimeoutException e)
        {
            throw IfcbException.Unavailable(
                $"The Training service, which owns dataset '{dataset}', did not grant read access within {AskTimeout.TotalSeconds:0} s; " +
                "it may be starting or down. Try again shortly.", e);
        }
    }

    public void Dispose() => _renewing.Dispose();
}
