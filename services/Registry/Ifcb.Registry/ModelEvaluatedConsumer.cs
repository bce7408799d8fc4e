using Ifcb.Contracts;
using Ifcb.Platform;
using Ifcb.Registry.Engine;
using MassTransit;

namespace Ifcb.Registry;

/// <summary>
/// Keeps a platform evaluation (ModelEvaluated, from a Training worker) on the registry version it scored, one record per
/// dataset content. A version deleted meanwhile, or a record the engine refuses, is logged and dropped: an evaluation
/// can always be run again.
/// </summary>
public sealed class ModelEvaluatedConsumer(VersionEvaluations evaluations, ILogger<ModelEvaluatedConsumer> logger)
    : IConsumer<ModelEvaluated>
{
    public async Task Consume(ConsumeContext<ModelEvaluated> context)
    {
        var e = context.Message;
        try
        {
            await evaluations.RecordAsync(e.ModelVersion, new EvaluationRecord(e.Dataset, e.DatasetFingerprint, e.JobId, e.EvaluatedAt,
                e.Images, e.Accuracy, e.F1Weighted, e.F1Macro, e.ReportJson), context.CancellationToken);
            logger.LogInformation("Evaluation {JobId} of {Version} on {Dataset} ({Fingerprint}) recorded: f1_weighted {F1}.", e.JobId,
                e.ModelVersion, e.Dataset, e.DatasetFingerprint, e.F1Weighted);
        }
        catch (IfcbException failure)
        {
            logger.LogWarning("Evaluation {JobId} of {Version} not recorded: {Reason}", e.JobId, e.ModelVersion, failure.Message);
        }
    }
}
