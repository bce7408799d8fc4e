using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// Diagnostics.ProbePlumbing as a hostile or careless client meets it: only the platform's services as targets (a
/// request string never names a queue), a bounded wait, and no probe blob left behind, whatever happened.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class DiagnosticsProbeTests(PlatformFixture platform)
{
    private Diagnostics.DiagnosticsClient Diagnostics(string service) => new(platform.Channel(service));

    private async Task<List<string>> ProbeBlobsAsync()
    {
        var container = new BlobServiceClient(await platform.App.GetConnectionStringAsync("blobs")).GetBlobContainerClient("diagnostics");
        var names = new List<string>();
        if (!await container.ExistsAsync())
            return names;
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "probes/", CancellationToken.None))
            names.Add(blob.Name);
        return names;
    }

    /// <summary>The broker's answer for a queue: 200 when it exists, 404 when it does not.</summary>
    private async Task<HttpStatusCode> QueueStatusAsync(string queue)
    {
        using var http = new HttpClient { BaseAddress = platform.App.GetEndpoint("rabbitmq", "management") };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.ASCII.GetBytes("guest:guest")));
        using var response = await http.GetAsync($"/api/queues/%2F/{Uri.EscapeDataString(queue)}");
        return response.StatusCode;
    }

    [Fact]
    public async Task A_probe_deletes_its_blob_once_every_target_answered()
    {
        var reply = await Diagnostics("registry").ProbePlumbingAsync(
            new ProbePlumbingRequest { Targets = { "training", "normstats" }, TimeoutMs = 30_000 }, PlatformFixture.Auth);

        Assert.Equal(2, reply.Answers.Count);
        Assert.All(reply.Answers, answer => Assert.Equal(reply.BlobSha256, answer.BlobSha256));
        Assert.DoesNotContain(reply.BlobName, await ProbeBlobsAsync());
    }

    [Fact]
    public async Task A_probe_whose_target_does_not_answer_in_time_deletes_its_blob_too()
    {
        // No answer crosses RabbitMQ and blob storage within a millisecond.
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Diagnostics("training").ProbePlumbingAsync(
            new ProbePlumbingRequest { Targets = { "normstats" }, TimeoutMs = 1 }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("normstats", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(await ProbeBlobsAsync());
    }

    [Fact]
    public async Task A_probe_to_an_unknown_service_is_refused_and_declares_no_queue()
    {
        Assert.Equal(HttpStatusCode.OK, await QueueStatusAsync("normstats-probe"));

        var error = await Assert.ThrowsAsync<RpcException>(async () => await Diagnostics("training").ProbePlumbingAsync(
            new ProbePlumbingRequest { Targets = { "attacker-chosen" }, TimeoutMs = 1000 }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("training, normstats, registry", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, await QueueStatusAsync("attacker-chosen-probe"));
        Assert.Empty(await ProbeBlobsAsync());
    }

    [Fact]
    public async Task A_probe_that_would_wait_longer_than_the_limit_is_refused_naming_it()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Diagnostics("normstats").ProbePlumbingAsync(
            new ProbePlumbingRequest { Targets = { "registry" }, TimeoutMs = int.MaxValue }, PlatformFixture.Auth));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("MaxProbeTimeout", error.Status.Detail, StringComparison.Ordinal);
    }
}
