using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using Ifcb.Platform;
using Ifcb.Platform.Jobs;
using Ifcb.Training.Engine.Jobs;

namespace Ifcb.Training.Engine.Sweeps;

/// <summary>A trial as the sweep records it: its grid position, axis values and the training job that runs it.</summary>
public sealed record SweepTrialRecord
{
    public required int Index { get; init; }
    public required List<SweepParam> Params { get; init; }
    /// <summary>Chosen when the sweep is stored, before the job is: a trial whose job is missing is submitted again.</summary>
    public required string JobId { get; init; }
}

/// <summary>
/// A sweep as stored in blob storage (sweeps/{id}/job.json beside the training jobs), ETag-guarded like them. A sweep
/// is RUNNING from the start (its trials are the jobs that run), ends SUCCEEDED, FAILED or CANCELLED when every trial
/// has ended, and keeps a follow-up until its best trial is registered (when <see cref="RegisterBest"/> is set).
/// </summary>
public sealed record SweepRecord : JobRecord<SweepRecord>
{
    /// <summary>The request every trial starts from, with the seed resolved (all trials share it).</summary>
    public required TrainingRequestSpec Base { get; init; }
    public required SweepAxes Axes { get; init; }
    /// <summary>Each trial's deadline, in seconds after its submission (the base request's deadline_seconds); 0 = none.</summary>
    public long TrialDeadlineSeconds { get; init; }
    public required string Metric { get; init; }
    public required string Direction { get; init; }
    /// <summary>The model name the winner is registered under; null = register nothing.</summary>
    public string? RegisterBest { get; init; }
    public required List<SweepTrialRecord> Trials { get; init; }
    /// <summary>The winning trial's job, set when the sweep SUCCEEDED.</summary>
    public string? BestJobId { get; init; }
    /// <summary>When this sweep last sent the winner's checkpoint to the Registry (sent again after a while if unanswered).</summary>
    public DateTimeOffset? RegistrationSentAt { get; init; }
    public string? RegisteredVersion { get; init; }
    public string? RegistrationError { get; init; }

    public SweepMetric Ranking() => SweepMetric.Parse(Metric, Direction);

    public override string DescribeProgress() => string.Create(CultureInfo.InvariantCulture, $"{Trials.Count} trials");

    /// <summary>A succeeded sweep with register_best stays active until the Registry registered (or refused) its winner.</summary>
    public override bool NeedsFollowUp() =>
        State == JobState.Succeeded && RegisterBest is not null && BestJobId is not null && RegisteredVersion is null
        && RegistrationError is null;

    /// <summary>
    /// Every trial has ended: CANCELLED if a cancel was requested, else SUCCEEDED with <paramref name="bestJobId"/> as
    /// the winner, or FAILED when no trial succeeded.
    /// </summary>
    public SweepRecord Finish(string? bestJobId, DateTimeOffset now)
    {
        if (CancelRequested)
            return Cancel(CancelReason ?? "cancelled", now);
        return bestJobId is null
            ? Fail("No trial succeeded with a metric to rank; see the trials' errors.", now)
            : Succeed(now) with { BestJobId = bestJobId };
    }

    /// <summary>Records that the winner's checkpoint was sent to the Registry now.</summary>
    /// <exception cref="IfcbException">FailedPrecondition: the sweep has nothing to register.</exception>
    public SweepRecord RegistrationSent(DateTimeOffset now) => NeedsFollowUp()
        ? this with { RegistrationSentAt = now }
        : throw IfcbException.FailedPrecondition($"Sweep {JobId} is {StateName} and has no winner waiting to be registered.");

    /// <summary>Copies the outcome of the winner's registration (its version, or the Registry's refusal).</summary>
    public SweepRecord RegistrationEnded(string? version, string? error) =>
        this with { RegisteredVersion = version, RegistrationError = version is null ? error : null };

    /// <summary>
    /// The norm-stats job id (32 hex digits) that the sweep's img_norm=auto trials of one input size share: the trials
    /// of one sweep have the same dataset, class configuration and seed, so only the size tells their statistics apart.
    /// </summary>
    public static string NormStatsJobIdFor(string sweepId, int resize) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"img-norm-auto:sweep:{sweepId}:{resize}"))))[..32];
}

/// <summary>Sweeps: <c>sweeps/{id}/job.json</c> in the Training service's container, with the job kernel's active markers.</summary>
public sealed class SweepStore(BlobContainerClient container, TimeProvider? time = null)
    : JobStore<SweepRecord>(container, "sweeps/", TrainingOutputs.Json, time)
{
    /// <summary>
    /// Claims sending a finished sweep's winner to the Registry now: the send is recorded only if the record still shows
    /// <paramref name="lastSent"/>, the send the caller saw (an ETag-guarded write), and that is at least
    /// <paramref name="resendAfter"/> ago. Of replicas that saw the same record, exactly one gets true and sends.
    /// </summary>
    /// <returns>False: nothing waits to be registered, it was sent too recently, or another replica claimed it.</returns>
    public async Task<bool> ClaimRegistrationAsync(string sweepId, DateTimeOffset? lastSent, TimeSpan resendAfter,
        CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        if (lastSent is { } sent && now - sent < resendAfter)
            return false;
        var (_, claimed) = await UpdateAsync(sweepId,
            s => s.NeedsFollowUp() && s.RegistrationSentAt == lastSent ? s.RegistrationSent(now) : null, cancellationToken);
        return claimed;
    }
}
