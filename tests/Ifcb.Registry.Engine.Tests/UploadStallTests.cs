using Google.Protobuf;
using Grpc.Core;
using Ifcb.Protos;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>The service's upload pump drops a client that stops sending, instead of holding its PENDING version.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class UploadStallTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    /// <summary>A client stream that sends some data chunks and then goes silent (MoveNext never completes until cancelled).</summary>
    private sealed class SilentAfter(IReadOnlyList<ByteString> chunks) : IAsyncStreamReader<RegisterVersionChunk>
    {
        private int _next;

        public RegisterVersionChunk Current { get; private set; } = null!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (_next < chunks.Count)
            {
                Current = new RegisterVersionChunk { Data = chunks[_next++] };
                return true;
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
            return false;
        }
    }

    [Fact]
    public async Task A_client_that_stops_sending_is_dropped_after_the_idle_timeout_and_its_version_FAILED()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync("silent", Actor);
        var checkpoint = TestCheckpoint.Create(64 * 1024);
        var client = new SilentAfter([ByteString.CopyFrom(checkpoint.Bytes, 0, 1000)]);

        var error = await Assert.ThrowsAsync<RpcException>(() => UploadedCheckpoint.ConsumeAsync(client, checkpoint.Bytes.Length,
            TimeSpan.FromSeconds(1), content => registry.RegisterVersionAsync("silent", checkpoint.Request("k"), content, Actor),
            CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("UploadIdleTimeout", error.Status.Detail, StringComparison.Ordinal);
        var version = await registry.GetVersionAsync("silent/1");
        Assert.Equal(ModelVersionStatus.Failed, version.Status);
        Assert.Contains("No RegisterVersion message arrived", version.StatusMessage, StringComparison.Ordinal);
    }
}
