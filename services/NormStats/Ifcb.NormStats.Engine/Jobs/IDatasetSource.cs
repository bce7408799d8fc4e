using Azure.Storage.Blobs;
using Ifcb.Data.Datasets;

namespace Ifcb.NormStats.Engine.Jobs;

/// <summary>
/// Where the coordinator reads a dataset. Datasets belong to the Training service; NormStats never names its
/// containers but reads through a grant Training gives it (the NormStats host's <c>GrantedDatasetSource</c>).
/// </summary>
public interface IDatasetSource
{
    /// <summary>The store that holds <paramref name="dataset"/> (it may still answer "no such dataset").</summary>
    ValueTask<BlobDatasetStore> OpenAsync(string dataset, CancellationToken cancellationToken);
}

/// <summary>A container the caller may read directly: tests, benchmarks, and a process that owns the datasets.</summary>
public sealed class ContainerDatasetSource(BlobContainerClient container) : IDatasetSource
{
    private readonly BlobDatasetStore _store = new(container);

    public ValueTask<BlobDatasetStore> OpenAsync(string dataset, CancellationToken cancellationToken) => ValueTask.FromResult(_store);
}
