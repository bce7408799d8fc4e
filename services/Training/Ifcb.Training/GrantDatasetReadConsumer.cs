using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform.Storage;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// Answers <see cref="GrantDatasetRead"/>: the datasets are Training's, and another service (NormStats) reads them only
/// through the read-only, expiring SAS URI this returns; it never names Training's container or holds a write key.
/// </summary>
public sealed class GrantDatasetReadConsumer(BlobServiceClient blobs, TimeProvider time, ILogger<GrantDatasetReadConsumer> logger)
    : IConsumer<GrantDatasetRead>
{
    /// <summary>How long a grant is valid; readers renew it before it lapses.</summary>
    public static readonly TimeSpan Validity = TimeSpan.FromHours(2);

    public async Task Consume(ConsumeContext<GrantDatasetRead> context)
    {
        var expiresOn = time.GetUtcNow() + Validity;
        var container = blobs.GetBlobContainerClient(TrainingServiceExtensions.DatasetsContainer);
        var uri = await BlobReadGrant.ForContainerAsync(container, expiresOn, context.CancellationToken);
        logger.LogInformation("Granted read access to the datasets (asked for '{Dataset}') until {ExpiresOn:O}", context.Message.Dataset,
            expiresOn);
        await context.RespondAsync(new DatasetReadGrant(context.Message.Dataset, uri, expiresOn));
    }
}
