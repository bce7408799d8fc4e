using Ifcb.Contracts;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;
using MassTransit;

namespace Ifcb.Training;

/// <summary>
/// The workers' job queue: one RabbitMQ priority queue, <c>training-jobs</c>, that carries both TrainModel and RunModel
/// commands, so a free worker slot always takes the highest-priority job of either kind (see <see cref="JobPriority"/>).
/// Commands are sent to the queue's exchange with the job's priority as the message priority; they are not published,
/// so queues of earlier versions (training-train-model, training-run-model) receive nothing new. A job whose command
/// was left in such a queue is sent again here by the reconciler (<see cref="JobKernelOptions.RedispatchAfter"/>).
/// </summary>
public static class JobQueue
{
    public const string Name = "training-jobs";

    private static readonly Uri Address = new($"exchange:{Name}");

    public static Task SendAsync(ISendEndpointProvider sender, TrainingJobRecord job, CancellationToken cancellationToken) =>
        SendAsync(sender, new TrainModel(job.JobId), job.Priority, cancellationToken);

    public static Task SendAsync(ISendEndpointProvider sender, RunJobRecord run, CancellationToken cancellationToken) =>
        SendAsync(sender, new RunModel(run.JobId), run.Priority, cancellationToken);

    /// <summary>
    /// Puts both job consumers on the one priority queue, each delivery limited to the worker's slots (a delivery that
    /// finds every slot busy is handed back, see <see cref="JobExecutor"/>).
    /// </summary>
    public static void AddJobConsumers(IBusRegistrationConfigurator bus, int slots)
    {
        bus.AddConsumer<TrainModelConsumer>().Endpoint(e => Limit(e, slots));
        bus.AddConsumer<RunModelConsumer>().Endpoint(e => Limit(e, slots));
        bus.AddConfigureEndpointsCallback((_, queueName, endpoint) =>
        {
            if (queueName == Name && endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
                rabbit.EnablePriority(JobPriorities.MaxBrokerPriority);
        });
    }

    private static void Limit(IEndpointRegistrationConfigurator endpoint, int slots)
    {
        endpoint.Name = Name;
        endpoint.PrefetchCount = slots;
        endpoint.ConcurrentMessageLimit = slots;
    }

    private static async Task SendAsync<T>(ISendEndpointProvider sender, T command, JobPriority priority,
        CancellationToken cancellationToken) where T : class
    {
        var endpoint = await sender.GetSendEndpoint(Address);
        await endpoint.Send(command, context => context.TrySetPriority(priority.BrokerPriority()), cancellationToken);
    }
}
