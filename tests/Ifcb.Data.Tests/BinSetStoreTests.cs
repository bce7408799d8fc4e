using Ifcb.Data.Bins;
using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Tests;

/// <summary>Bin sets against real Azurite: each upload is its own set, complete once listed, owned by one run.</summary>
public sealed class BinSetStoreTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static readonly UploadLimits Generous = new(1 << 20, 100, 16 << 20);

    private static IReadOnlyList<string> FilesOf(string binPath) =>
        [.. new[] { ".adc", ".hdr", ".roi" }.Select(e => binPath + e)];

    private static async Task<BinSetListing> UploadAsync(BlobBinSetStore store, string name, IEnumerable<string> files, UploadLimits? limits = null)
    {
        await using var writer = await store.BeginUploadAsync(name, limits ?? Generous);
        foreach (var path in files)
        {
            await using var content = File.OpenRead(path);
            await writer.AddFileAsync(Path.GetFileName(path), content, CancellationToken.None);
        }
        return await writer.CommitAsync(CancellationToken.None);
    }

    private static async Task<List<string>> BlobsAsync(Azure.Storage.Blobs.BlobContainerClient container)
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
            names.Add(blob.Name);
        return names;
    }

    [Fact]
    public async Task Two_uploads_with_one_name_get_their_own_sets_and_never_mix_bins()
    {
        var store = new BlobBinSetStore(azurite.NewContainer());
        await store.DeleteUnclaimedOlderThanAsync(TimeSpan.Zero); // no container yet: nothing to do
        var first = await UploadAsync(store, "run-1", FilesOf(TestData.WhiteBin));
        var second = await UploadAsync(store, "run-1", FilesOf(TestData.V1Bin)); // the same RUN_ID used again

        Assert.NotEqual(first.Id, second.Id);
        Assert.All(new[] { first, second }, s => Assert.Matches("^run-1-[0-9a-f]{12}$", s.Id));
        Assert.Equal(["D20130526T095207_IFCB013.adc", "D20130526T095207_IFCB013.hdr", "D20130526T095207_IFCB013.roi"],
            (await store.ListAsync(first.Id, CancellationToken.None)).Select(f => f.File));
        Assert.Equal(["IFCB5_2012_028_081515.adc", "IFCB5_2012_028_081515.hdr", "IFCB5_2012_028_081515.roi"],
            (await store.ListAsync(second.Id, CancellationToken.None)).Select(f => f.File));
        Assert.Equal(new FileInfo(TestData.V1Bin + ".roi").Length, second.Files.Single(f => f.File.EndsWith(".roi", StringComparison.Ordinal)).Size);

        var folder = TestData.TempDirectory();
        try
        {
            Assert.Equal(3, await store.DownloadAsync(second.Id, folder, CancellationToken.None));
            Assert.Equal(FilesOf(TestData.V1Bin).Select(File.ReadAllBytes), FilesOf(Path.Combine(folder, "IFCB5_2012_028_081515")).Select(File.ReadAllBytes));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.ListAsync("run-1", CancellationToken.None));
    }

    [Fact]
    public async Task A_set_does_not_exist_before_its_listing_is_written_and_an_abandoned_upload_leaves_nothing()
    {
        var container = azurite.NewContainer();
        var store = new BlobBinSetStore(container);
        var emptyBins = Path.Combine(TestData.Bins, "empty");
        await using (var writer = await store.BeginUploadAsync("partial", Generous))
        {
            foreach (var path in Directory.GetFiles(emptyBins).Order(StringComparer.Ordinal))
            {
                await using var content = File.OpenRead(path);
                await writer.AddFileAsync(Path.GetFileName(path), content, CancellationToken.None);
            }
            Assert.Equal(6, (await BlobsAsync(container)).Count);
            var missing = await Assert.ThrowsAsync<KeyNotFoundException>(() => store.GetAsync(writer.Id, CancellationToken.None));
            Assert.Contains("did not finish", missing.Message);
            await Assert.ThrowsAsync<KeyNotFoundException>(() => store.ClaimAsync(writer.Id, "job-1"));
            Assert.Empty(await store.ListSetsAsync());

            var listing = await writer.CommitAsync(CancellationToken.None);
            Assert.Equal([0L, 3303, 0, 0, 302, 2], listing.Files.Select(f => f.Size)); // empty files are files too
            Assert.Equal([listing.Id], (await store.ListSetsAsync()).Select(s => s.Id));
        }

        await using (var abandoned = await store.BeginUploadAsync("abandoned", Generous))
            await abandoned.WriteAsync("D20130526T095207_IFCB013.adc", new byte[] { 1, 2, 3 }, last: false, CancellationToken.None);
        Assert.DoesNotContain(await BlobsAsync(container), n => n.StartsWith("binsets/abandoned-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_set_belongs_to_the_one_run_that_claims_it_until_deleted()
    {
        var store = new BlobBinSetStore(azurite.NewContainer());
        var set = await UploadAsync(store, "claimed", FilesOf(TestData.WhiteBin));
        var contenders = await Task.WhenAll(new[] { "job-a", "job-b", "job-c" }.Select(async job =>
        {
            try
            {
                return (job, (await store.ClaimAsync(set.Id, job)).ClaimedBy, (IfcbException?)null);
            }
            catch (IfcbException e)
            {
                return (job, null, e);
            }
        }));
        var winner = Assert.Single(contenders, c => c.Item3 is null);
        Assert.Equal(winner.job, winner.ClaimedBy);
        Assert.All(contenders.Where(c => c.Item3 is not null), c =>
        {
            Assert.Equal(ErrorKind.FailedPrecondition, c.Item3!.Kind);
            Assert.Contains($"belongs to run {winner.job}", c.Item3.Message);
        });
        Assert.Equal(winner.job, (await store.ClaimAsync(set.Id, winner.job)).ClaimedBy); // a redelivered StartRun/RunModel
        Assert.Equal(winner.job, (await store.GetAsync(set.Id, CancellationToken.None)).ClaimedBy);

        Assert.Equal(4, await store.DeleteAsync(set.Id)); // listing and three files
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.GetAsync(set.Id, CancellationToken.None));
        Assert.Equal(0, await store.DeleteAsync(set.Id));
    }

    [Fact]
    public async Task Unclaimed_sets_and_unfinished_uploads_are_collected_after_the_given_age_claimed_sets_are_kept()
    {
        var container = azurite.NewContainer();
        var store = new BlobBinSetStore(container);
        var unclaimed = await UploadAsync(store, "unclaimed", FilesOf(TestData.WhiteBin));
        var claimed = await UploadAsync(store, "claimed", FilesOf(TestData.WhiteBin));
        await store.ClaimAsync(claimed.Id, "job-1");
        var crashed = await store.BeginUploadAsync("crashed", Generous); // a server that died mid-upload never disposes its writer
        await crashed.WriteAsync("D20130526T095207_IFCB013.adc", new byte[] { 1, 2, 3 }, last: true, CancellationToken.None);
        // A set stored before listings: binsets/{RUN_ID}/{file}.
        await container.GetBlobClient("binsets/old-run/D20130526T095207_IFCB013.adc").UploadAsync(BinaryData.FromBytes([1]));

        Assert.Equal(0, await store.DeleteUnclaimedOlderThanAsync(TimeSpan.FromHours(1)));
        await Task.Delay(TimeSpan.FromSeconds(2.2)); // Last-Modified has whole seconds
        Assert.Equal(3, await store.DeleteUnclaimedOlderThanAsync(TimeSpan.FromSeconds(1)));
        Assert.All(await BlobsAsync(container), n => Assert.StartsWith($"binsets/{claimed.Id}/", n));
        Assert.Equal(3, (await store.ListAsync(claimed.Id, CancellationToken.None)).Count);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => store.ListAsync(unclaimed.Id, CancellationToken.None));
    }

    [Fact]
    public async Task An_upload_is_bounded_and_its_names_checked_as_it_streams_in()
    {
        var store = new BlobBinSetStore(azurite.NewContainer());
        var limits = new UploadLimits(MaxFileBytes: 50_000, MaxFiles: 2, MaxTotalBytes: 60_000) { MaxFileBytesSetting = "Ifcb:MaxBinFileBytes", MaxFilesSetting = "Ifcb:MaxUploadBinFiles" };

        var tooLarge = await Assert.ThrowsAsync<IfcbException>(() => UploadAsync(store, "big", [TestData.WhiteBin + ".roi"], limits));
        Assert.Equal(ErrorKind.InvalidArgument, tooLarge.Kind);
        Assert.Contains("D20130526T095207_IFCB013.roi is larger than", tooLarge.Message);
        Assert.Contains("Ifcb:MaxBinFileBytes", tooLarge.Message);

        var tooMany = await Assert.ThrowsAsync<IfcbException>(() => UploadAsync(store, "many", FilesOf(TestData.V1Bin).Take(2).Append(TestData.WhiteBin + ".hdr"), limits));
        Assert.Contains("more than 2 files (limit Ifcb:MaxUploadBinFiles)", tooMany.Message);

        var notABin = await Assert.ThrowsAsync<ArgumentException>(() => UploadAsync(store, "other", [Path.Combine(TestData.Root, "README.md")]));
        Assert.Contains("not an IFCB bin file", notABin.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => UploadAsync(store, "../escape", FilesOf(TestData.WhiteBin)));

        await using var writer = await store.BeginUploadAsync("twice", Generous);
        await writer.WriteAsync("D20130526T095207_IFCB013.hdr", new byte[] { 1 }, last: true, CancellationToken.None);
        var twice = await Assert.ThrowsAsync<IfcbException>(() => writer.WriteAsync("D20130526T095207_IFCB013.hdr", new byte[] { 2 }, last: true, CancellationToken.None));
        Assert.Contains("appears twice", twice.Message);

        var longName = new string('r', ResourceName.MaxDatasetNameLength);
        Assert.True(ResourceName.IsValidDatasetName(BlobBinSetStore.NewId(longName)));
        var empty = await Assert.ThrowsAsync<IfcbException>(() => UploadAsync(store, longName, []));
        Assert.Contains("no files", empty.Message);
    }
}
