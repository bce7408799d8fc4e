using Ifcb.Contracts;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// Records on a training job why the Registry refused its checkpoint for good (the job stays SUCCEEDED; its
/// registration_error says what to fix). That ends the job's follow-up, so ModelTrained is not sent again.
/// </summary>
public sealed class ModelRegistrationFailedConsumer(TrainingJobStore jobs, ILogger<ModelRegistrationFailedConsumer> logger)
    : IConsumer<ModelRegistrationFailed>
{
    public async Task Consume(ConsumeContext<ModelRegistrationFailed> context)
    {
        var message = context.Message;
        if (await jobs.GetAsync(message.JobId, context.CancellationToken) is null)
            return;
        var reason = $"Registering as '{message.Model}' failed: {message.Reason}";
        var (_, changed) = await jobs.UpdateAsync(message.JobId, j => j.RegisteredVersion is not null || j.RegistrationError == reason
            ? null
            : j with { RegistrationError = reason }, context.CancellationToken);
        if (changed)
            logger.LogWarning("Training job {JobId}: {Reason}", message.JobId, reason);
    }
}
