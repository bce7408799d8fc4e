using System.Collections.Concurrent;
using Ifcb.Contracts;
using MassTransit;

namespace Ifcb.EndToEnd.Tests;

/// <summary>A test-side subscriber on the platform's real RabbitMQ: records every platform event it receives.</summary>
public sealed class BusEvents : IAsyncDisposable
{
    private readonly ConcurrentQueue<object> _received = new();
    private IBusControl _bus = null!;

    public static async Task<BusEvents> StartAsync(string connectionString)
    {
        var events = new BusEvents();
        var uri = new Uri(connectionString);
        events._bus = Bus.Factory.CreateUsingRabbitMq(rabbit =>
        {
            rabbit.Host(uri, h =>
            {
                h.Username("guest");
                h.Password("guest");
            });
            rabbit.ReceiveEndpoint("e2e-tests-events", e =>
            {
                e.AutoDelete = true;
                e.Durable = false;
                events.Record<ModelTrained>(e);
                events.Record<TrainingFailed>(e);
                events.Record<TrainingCancelled>(e);
                events.Record<TrainingProgressed>(e);
                events.Record<NormStatsComputed>(e);
                events.Record<ModelVersionRegistered>(e);
                events.Record<ModelAliasChanged>(e);
                events.Record<ModelVersionDeleted>(e);
                events.Record<BinsClassified>(e);
                events.Record<RunFinished>(e);
            });
        });
        await events._bus.StartAsync();
        return events;
    }

    private void Record<T>(IReceiveEndpointConfigurator endpoint) where T : class =>
        endpoint.Handler<T>(context =>
        {
            _received.Enqueue(context.Message);
            return Task.CompletedTask;
        });

    public IReadOnlyList<T> All<T>() => [.. _received.OfType<T>()];

    /// <summary>Waits for the first event of type <typeparamref name="T"/> matching <paramref name="match"/>.</summary>
    public async Task<T> WaitForAsync<T>(Func<T, bool> match, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (true)
        {
            if (_received.OfType<T>().FirstOrDefault(match) is { } found)
                return found;
            try
            {
                await Task.Delay(100, cancel.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No {typeof(T).Name} matching the condition within {timeout.TotalSeconds:0} s.");
            }
        }
    }

    public async ValueTask DisposeAsync() => await _bus.StopAsync();
}
