using Ifcb.Contracts;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// Records on a training job which registry version its checkpoint became (the job's registered_version); that ends
/// the job's follow-up, so the reconciler stops sending ModelTrained again.
/// </summary>
public sealed class ModelVersionRegisteredConsumer(TrainingJobStore jobs) : IConsumer<ModelVersionRegistered>
{
    public async Task Consume(ConsumeContext<ModelVersionRegistered> context)
    {
        var message = context.Message;
        if (message.SourceTrainingJob is not { } jobId || await jobs.GetAsync(jobId, context.CancellationToken) is null)
            return;
        var version = $"{message.Model}/{message.Version}";
        await jobs.UpdateAsync(jobId, j => j.RegisteredVersion == version ? null : j with { RegisteredVersion = version },
            context.CancellationToken);
    }
}
