using Ifcb.Contracts;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>Records on a training job which registry version its checkpoint became (the job's registered_version).</summary>
public sealed class ModelVersionRegisteredConsumer(TrainingJobStore jobs) : IConsumer<ModelVersionRegistered>
{
    public async Task Consume(ConsumeContext<ModelVersionRegistered> context)
    {
        var message = context.Message;
        if (message.SourceTrainingJob is not { } jobId || !TrainingJobStore.IsValidId(jobId))
            return;
        if (await jobs.GetAsync(jobId, context.CancellationToken) is null)
            return;
        await jobs.UpdateAsync(jobId, j => j with { RegisteredVersion = $"{message.Model}/{message.Version}" }, context.CancellationToken);
    }
}
