using Grpc.Core;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The Watch RPCs of job-running services: stream the job now, then every time its stored record changes, until it
/// reaches a terminal state. Records live in blob storage, so "changes" means a newer UpdatedAt on a poll.
/// </summary>
public static class JobWatch
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    public static async Task StreamUntilTerminalAsync<TRecord, TMessage>(
        Func<CancellationToken, Task<TRecord>> read,
        Func<TRecord, DateTimeOffset> updatedAt,
        Func<TRecord, bool> isTerminal,
        Func<TRecord, TMessage> toMessage,
        IServerStreamWriter<TMessage> stream,
        CancellationToken cancellationToken)
    {
        var job = await read(cancellationToken);
        await stream.WriteAsync(toMessage(job), cancellationToken);
        var lastUpdate = updatedAt(job);
        while (!isTerminal(job))
        {
            await Task.Delay(PollInterval, cancellationToken);
            job = await read(cancellationToken);
            if (updatedAt(job) == lastUpdate)
                continue;
            lastUpdate = updatedAt(job);
            await stream.WriteAsync(toMessage(job), cancellationToken);
        }
    }
}
