using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// <see cref="VersionExports"/> against Azurite with a stand-in exporter that records its calls (the ONNX exporter itself
/// is tested in Ifcb.Models.Tests; the whole path, CLI to registry to ONNX, in the end-to-end CliTests).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class VersionExportsTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    /// <summary>Writes "export of SHA (batch N)" and counts how often it ran.</summary>
    private sealed class CountingExporter
    {
        private int _calls;

        public int Calls => _calls;

        public Func<ModelVersion, ExportRequest, Task>? WhileExporting { get; init; }

        public void Export(ModelVersion version, Stream checkpoint, Stream destination, ExportRequest request)
        {
            Interlocked.Increment(ref _calls);
            Assert.Equal(version.Sha256, Convert.ToHexStringLower(SHA256.HashData(checkpoint)));
            WhileExporting?.Invoke(version, request).GetAwaiter().GetResult();
            destination.Write(Expected(version, request));
        }

        public static byte[] Expected(ModelVersion version, ExportRequest request) =>
            Encoding.UTF8.GetBytes($"export of {version.Sha256} (batch {request.StaticBatch?.ToString() ?? "dynamic"})");
    }

    private static readonly ExportRequest Dynamic = new(null);

    private async Task<(ModelRegistry Registry, BlobContainerClient Container, ModelVersion Version)> RegisteredAsync(string name)
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await registry.CreateModelAsync(name, Actor);
        var checkpoint = TestCheckpoint.Create();
        var registered = await registry.RegisterVersionAsync(name, checkpoint.Request(), checkpoint.Stream(), Actor);
        return (registry, container, registered.Version);
    }

    private static async Task<(byte[] Bytes, bool Cached, string Sha256)> ReadAsync(VersionExports exports, ModelRef reference,
        ExportRequest request)
    {
        await using var export = await exports.OpenAsync(reference, request);
        using var copy = new MemoryStream();
        await export.Content.CopyToAsync(copy);
        Assert.Equal(export.SizeBytes, copy.Length);
        Assert.Equal(export.Sha256, Convert.ToHexStringLower(SHA256.HashData(copy.ToArray())));
        return (copy.ToArray(), export.Cached, export.Sha256);
    }

    [Fact]
    public async Task The_first_request_exports_and_caches_the_next_one_reads_the_cached_blob()
    {
        var (registry, container, version) = await RegisteredAsync("exported");
        var exporter = new CountingExporter();
        var exports = new VersionExports(container, registry, exporter.Export, "exporter-1");

        var first = await ReadAsync(exports, ModelRef.ToLatest("exported"), Dynamic);
        Assert.False(first.Cached);
        Assert.Equal(CountingExporter.Expected(version, Dynamic), first.Bytes);
        Assert.Contains("models/exported/versions/0000001/exports/model.onnx", await container.BlobNamesAsync("models/exported/"));

        // Another process (a second replica) reads what the first one stored.
        var second = await ReadAsync(new VersionExports(container, registry, exporter.Export, "exporter-1"), ModelRef.ToVersion("exported", 1),
            Dynamic);
        Assert.True(second.Cached);
        Assert.Equal(first.Bytes, second.Bytes);
        Assert.Equal(1, exporter.Calls);

        // A static batch is another file, exported once too.
        var batch8 = new ExportRequest(8);
        Assert.False((await ReadAsync(exports, ModelRef.ToLatest("exported"), batch8)).Cached);
        var cached8 = await ReadAsync(exports, ModelRef.ToLatest("exported"), batch8);
        Assert.True(cached8.Cached);
        Assert.Equal(CountingExporter.Expected(version, batch8), cached8.Bytes);
        Assert.Contains("models/exported/versions/0000001/exports/model.batch8.onnx", await container.BlobNamesAsync("models/exported/"));
        Assert.Equal(2, exporter.Calls);
    }

    [Fact]
    public async Task A_changed_exporter_exports_again_instead_of_serving_the_old_graph()
    {
        var (registry, container, _) = await RegisteredAsync("refreshed");
        var exporter = new CountingExporter();
        await ReadAsync(new VersionExports(container, registry, exporter.Export, "exporter-1"), ModelRef.ToLatest("refreshed"), Dynamic);

        var upgraded = new VersionExports(container, registry, exporter.Export, "exporter-2");
        Assert.False((await ReadAsync(upgraded, ModelRef.ToLatest("refreshed"), Dynamic)).Cached);
        Assert.True((await ReadAsync(upgraded, ModelRef.ToLatest("refreshed"), Dynamic)).Cached);
        Assert.Equal(2, exporter.Calls);
    }

    [Fact]
    public async Task Replicas_racing_on_a_missing_export_both_serve_it_and_one_blob_remains()
    {
        var (registry, container, version) = await RegisteredAsync("raced");
        // Both exports are in progress before either stores its result.
        var bothStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = 0;
        var exporter = new CountingExporter
        {
            WhileExporting = async (_, _) =>
            {
                if (Interlocked.Increment(ref started) == 2)
                    bothStarted.SetResult();
                await bothStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            },
        };
        var replicas = Enumerable.Range(0, 2).Select(_ => new VersionExports(container, registry, exporter.Export, "exporter-1")).ToArray();

        var results = await Task.WhenAll(replicas.Select(r => ReadAsync(r, ModelRef.ToLatest("raced"), Dynamic)));

        Assert.Equal(2, exporter.Calls);
        Assert.All(results, r => Assert.Equal(CountingExporter.Expected(version, Dynamic), r.Bytes));
        Assert.Single(await container.BlobNamesAsync("models/raced/versions/0000001/exports/"));
        Assert.True((await ReadAsync(replicas[0], ModelRef.ToLatest("raced"), Dynamic)).Cached);
    }

    [Fact]
    public async Task Deleting_the_version_deletes_its_exports()
    {
        var (registry, container, _) = await RegisteredAsync("dropped");
        var exports = new VersionExports(container, registry, new CountingExporter().Export, "exporter-1");
        await ReadAsync(exports, ModelRef.ToLatest("dropped"), Dynamic);
        await ReadAsync(exports, ModelRef.ToLatest("dropped"), new ExportRequest(4));

        await registry.DeleteVersionAsync("dropped", 1, Actor);

        Assert.Empty(await container.BlobNamesAsync("models/dropped/versions/"));
    }

    [Fact]
    public async Task Refusals_store_nothing_and_a_corrupted_cache_is_not_trusted()
    {
        var (registry, container, _) = await RegisteredAsync("refused");
        var exports = new VersionExports(container, registry, (_, _, _, _) =>
            throw IfcbException.InvalidArgument("cannot be exported to ONNX: the resize is too small"), "exporter-1");

        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => exports.OpenAsync(ModelRef.ToLatest("refused"), Dynamic))).Kind);
        Assert.Empty(await container.BlobNamesAsync("models/refused/versions/0000001/exports/"));
        foreach (var batch in new[] { 0, -1, Limits.MaxBatch + 1 })
        {
            var bounded = await Assert.ThrowsAsync<IfcbException>(() => exports.OpenAsync(ModelRef.ToLatest("refused"), new ExportRequest(batch)));
            Assert.Equal(ErrorKind.InvalidArgument, bounded.Kind);
            Assert.Contains("static_batch", bounded.Message, StringComparison.Ordinal);
        }
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => exports.OpenAsync(ModelRef.ToVersion("refused", 9), Dynamic))).Kind);

        // A cached blob whose bytes no longer match the sha256 it was stored with fails the read that reaches its end.
        var working = new VersionExports(container, registry, new CountingExporter().Export, "exporter-1");
        await ReadAsync(working, ModelRef.ToLatest("refused"), Dynamic);
        var blob = container.GetBlobClient("models/refused/versions/0000001/exports/model.onnx");
        var metadata = (await blob.GetPropertiesAsync()).Value.Metadata;
        await blob.UploadAsync(BinaryData.FromString("tampered bytes"), overwrite: true);
        await blob.SetMetadataAsync(metadata);
        await using var tampered = await working.OpenAsync(ModelRef.ToLatest("refused"), Dynamic);
        Assert.True(tampered.Cached);
        Assert.Equal(ErrorKind.DataLoss,
            (await Assert.ThrowsAsync<IfcbException>(() => tampered.Content.CopyToAsync(Stream.Null))).Kind);
    }
}
