using Azure.Storage.Blobs;
using Grpc.Core;
using Ifcb.Platform;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// The Registry reports its failures through the platform's one ErrorInterceptor: every engine failure, provoked
/// against real storage, maps to the status code of its kind with the engine's message unchanged.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ErrorMappingTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private static async Task<Status> StatusOfAsync(Func<Task> call)
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(call);
        return ErrorInterceptor.ToStatus(failure);
    }

    [Fact]
    public async Task Engine_failures_map_to_their_status_codes_with_the_engine_message()
    {
        var (registry, _) = await azurite.NewRegistryAsync(new RegistryOptions { MaxCheckpointBytes = 1 << 20 });
        await registry.CreateModelAsync("mapped", Actor);
        var checkpoint = TestCheckpoint.Create();
        await registry.RegisterVersionAsync("mapped", checkpoint.Request(), checkpoint.Stream(), Actor);
        await registry.SetAliasAsync("mapped", "production", 1, Actor);
        var other = TestCheckpoint.Create();

        var cases = new (StatusCode Code, string MessagePart, Func<Task> Call)[]
        {
            (StatusCode.NotFound, "does not exist", () => registry.GetModelAsync("missing")),
            (StatusCode.AlreadyExists, "already exists", () => registry.CreateModelAsync("mapped", Actor)),
            (StatusCode.InvalidArgument, "model name", () => registry.CreateModelAsync("../escape", Actor)),
            (StatusCode.FailedPrecondition, "@production", () => registry.DeleteVersionAsync("mapped", 1, Actor)),
            (StatusCode.DataLoss, "sha256", () => registry.RegisterVersionAsync("mapped", checkpoint.Request() with { Sha256 = other.Sha256 },
                checkpoint.Stream(), Actor)),
            (StatusCode.ResourceExhausted, "at most", () => registry.RegisterVersionAsync("mapped",
                checkpoint.Request() with { SizeBytes = 2 << 20 }, checkpoint.Stream(), Actor)),
            (StatusCode.InvalidArgument, "Page token", () => registry.ListModelsAsync(pageToken: "garbage")),
            (StatusCode.InvalidArgument, "Invalid filter at position 12, 'OR'", () => registry.SearchVersionsAsync("name = 'a' OR name = 'b'", "")),
            (StatusCode.InvalidArgument, "Invalid order_by at position 1, 'f1'", () => registry.SearchModelsAsync("", "f1 DESC")),
            (StatusCode.NotFound, "was renamed to 'mapped-2'", async () =>
            {
                await registry.CreateModelAsync("mapped-1", Actor);
                await registry.RenameModelAsync("mapped-1", "mapped-2", Actor);
                await registry.GetModelAsync("mapped-1");
            }),
        };

        foreach (var (code, part, call) in cases)
        {
            var failure = await Assert.ThrowsAsync<IfcbException>(call);
            var status = ErrorInterceptor.ToStatus(failure);
            Assert.Equal(code, status.StatusCode);
            Assert.Equal(failure.Message, status.Detail);
            Assert.Contains(part, status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Unreachable_storage_is_Unavailable()
    {
        // Nothing listens on port 1; no retries, so the outage surfaces at once as it would after the SDK's retries.
        var options = new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
        var unreachable = new BlobServiceClient(
            $"DefaultEndpointsProtocol=http;AccountName={Testing.AzuriteInstance.AccountName};AccountKey={Testing.AzuriteInstance.AccountKey};" +
            $"BlobEndpoint=http://127.0.0.1:1/{Testing.AzuriteInstance.AccountName};", options);
        var registry = new ModelRegistry(unreachable.GetBlobContainerClient("registry"));

        var status = await StatusOfAsync(() => registry.GetModelAsync("any"));

        Assert.Equal(StatusCode.Unavailable, status.StatusCode);
        Assert.Contains("retry", status.Detail, StringComparison.Ordinal);
    }
}
