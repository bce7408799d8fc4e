using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>Registers the job kernel's options and background services in a service host.</summary>
public static class JobKernelHosting
{
    /// <summary>
    /// Binds <see cref="JobKernelOptions"/> from <c>Ifcb:Jobs</c> (validated at start-up) and registers a
    /// <see cref="JobExecutor"/> with <paramref name="slots"/> concurrent jobs.
    /// </summary>
    public static IServiceCollection AddIfcbJobKernel(this IServiceCollection services, IConfiguration configuration, int slots)
    {
        var options = services.AddIfcbJobOptions(configuration);
        services.AddSingleton(sp => new JobExecutor(sp.GetRequiredService<ServiceIdentity>(), options, slots,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<JobExecutor>>()));
        services.AddHostedService(sp => sp.GetRequiredService<JobExecutor>());
        return services;
    }

    /// <summary>Binds <see cref="JobKernelOptions"/> from <c>Ifcb:Jobs</c> (validated at start-up) and a system clock.</summary>
    public static JobKernelOptions AddIfcbJobOptions(this IServiceCollection services, IConfiguration configuration)
    {
        var options = (configuration.GetSection(JobKernelOptions.SectionName).Get<JobKernelOptions>() ?? new JobKernelOptions()).Validate();
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        return options;
    }

    /// <summary>
    /// Runs <paramref name="sweep"/> (a reconciler pass) every <see cref="JobKernelOptions.ReconcileInterval"/>, first at start-up.
    /// </summary>
    public static IServiceCollection AddJobReconciliation(this IServiceCollection services, string name,
        Func<IServiceProvider, CancellationToken, Task> sweep) =>
        services.AddSingleton<IHostedService>(sp => new ReconcilerService(name, sp, sweep, sp.GetRequiredService<JobKernelOptions>(),
            sp.GetRequiredService<ILogger<ReconcilerService>>()));

    /// <summary>The loop around a reconciler sweep; a failed sweep is logged and the next one runs on time.</summary>
    public sealed class ReconcilerService(string name, IServiceProvider services, Func<IServiceProvider, CancellationToken, Task> sweep,
        JobKernelOptions options, ILogger<ReconcilerService> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            // Let the host finish starting (the bus connects) before the first sweep sends anything.
            await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            using var timer = new PeriodicTimer(options.ReconcileInterval);
            do
            {
                try
                {
                    await sweep(services, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    logger.LogWarning("The {Name} reconciler sweep failed ({Reason}); the next one runs in {Seconds:0} s.", name,
                        Faults.Reason(e), options.ReconcileInterval.TotalSeconds);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
    }
}

/// <summary>Sending a newly stored job's command to the workers.</summary>
public static class JobDispatch
{
    /// <summary>
    /// Sends the command of a job just stored, waiting at most <see cref="JobKernelOptions.DispatchTimeout"/> for the
    /// broker, and records when it was sent. A broker that is down or paused is logged, not thrown: the job is stored,
    /// so the submission succeeded, and the reconciler sends the command once the broker is back.
    /// </summary>
    public static async Task<T> SendNewAsync<T>(JobStore<T> store, T job, Func<CancellationToken, Task> send, JobKernelOptions options,
        ILogger logger) where T : JobRecord<T>
    {
        try
        {
            using var timeout = new CancellationTokenSource(options.DispatchTimeout);
            await send(timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException || Faults.IsTransient(e) || e is MassTransit.MassTransitException)
        {
            logger.LogWarning("Job {JobId} is stored but its command could not be sent now ({Reason}); " +
                "the reconciler sends it within {Seconds:0} s.", job.JobId,
                e is OperationCanceledException
                    ? $"no broker confirmation within {options.DispatchTimeout.TotalSeconds:0} s"
                    : Faults.Reason(e),
                (options.DispatchGrace + options.ReconcileInterval).TotalSeconds);
            return job;
        }
        try
        {
            var (sent, _) = await store.UpdateAsync(job.JobId,
                j => j.State == JobState.Queued && j.DispatchedAt is null ? j.Dispatched(store.Time.GetUtcNow()) : null,
                CancellationToken.None);
            return sent;
        }
        catch (Exception e) when (Faults.IsTransient(e))
        {
            return job; // sent, just not recorded: at worst the reconciler sends it once more, which is harmless
        }
    }
}
