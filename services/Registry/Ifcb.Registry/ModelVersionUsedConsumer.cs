using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Records lineage: a platform job used a version (ModelVersionUsed, from a Training worker). A version deleted meanwhile,
/// or a record the engine refuses, is logged and dropped.
/// </summary>
public sealed class ModelVersionUsedConsumer(VersionLineage lineage, ILogger<ModelVersionUsedConsumer> logger)
    : IConsumer<ModelVersionUsed>
{
    public async Task Consume(ConsumeContext<ModelVersionUsed> context)
    {
        var used = context.Message;
        try
        {
            await lineage.RecordUseAsync(used.ModelVersion, new VersionUse(used.JobId, used.Kind, used.At), context.CancellationToken);
        }
        catch (IfcbException failure)
        {
            logger.LogWarning("Use of {Version} by job {JobId} not recorded: {Reason}", used.ModelVersion, used.JobId, failure.Message);
        }
    }
}
