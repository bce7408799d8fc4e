using MassTransit;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The platform bus: MassTransit over RabbitMQ, from the connection string "messaging"
/// (e.g. <c>amqp://guest:guest@127.0.0.1:5672</c>).
/// </summary>
public static class MessagingExtensions
{
    public const string ConnectionStringName = "messaging";

    /// <summary>In-process retries of a consumer that failed with a transient fault (about a minute of backoff in all).</summary>
    public const int RetryLimit = 7;

    /// <summary>
    /// Registers MassTransit with RabbitMQ. <paramref name="configureConsumers"/> registers the service's consumers.
    /// Queue names are "{service}-{consumer}", so replicas of one service compete for its queues while different
    /// services each get their own copy of published events. Queues are durable (MassTransit's default), publishes
    /// wait for broker confirms, and a consumer failing with a transient fault is retried in process with back-off; a
    /// short message whose worker dies stays unacknowledged and RabbitMQ redelivers it to another instance. Long jobs
    /// do not hold their message (see JobExecutor).
    /// </summary>
    public static TBuilder AddIfcbMessaging<TBuilder>(this TBuilder builder, string serviceName,
        Action<IBusRegistrationConfigurator>? configureConsumers = null) where TBuilder : IHostApplicationBuilder
    {
        var connectionString = builder.Configuration.GetConnectionString(ConnectionStringName)
            ?? throw new InvalidOperationException(
                $"Connection string '{ConnectionStringName}' is missing. Run the service under Ifcb.AppHost, or set " +
                $"ConnectionStrings__{ConnectionStringName}=amqp://user:password@host:port.");

        builder.Services.AddMassTransit(bus =>
        {
            bus.SetEndpointNameFormatter(new KebabCaseEndpointNameFormatter(serviceName, includeNamespace: false));
            bus.AddConsumer<ReadProbeBlobConsumer>().Endpoint(e => e.Name = $"{serviceName}-probe");
            configureConsumers?.Invoke(bus);
            bus.UsingRabbitMq((context, rabbit) =>
            {
                var uri = new Uri(connectionString);
                rabbit.Host(uri, host =>
                {
                    var userInfo = uri.UserInfo.Split(':', 2);
                    if (userInfo.Length == 2)
                    {
                        host.Username(Uri.UnescapeDataString(userInfo[0]));
                        host.Password(Uri.UnescapeDataString(userInfo[1]));
                    }
                    host.PublisherConfirmation = true;
                });
                // Only transient faults (storage, broker, peer outages) are worth retrying; a consumer's own error would
                // fail the same way again, so it goes to the error queue (or the consumer records it) at once.
                rabbit.UseMessageRetry(retry =>
                {
                    retry.Handle<Exception>(Ifcb.Platform.Faults.IsTransient);
                    retry.Exponential(RetryLimit, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500));
                });
                rabbit.ConfigureEndpoints(context);
            });
        });
        return builder;
    }
}
