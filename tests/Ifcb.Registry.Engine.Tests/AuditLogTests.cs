using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary><see cref="AuditLog"/> on its own: what an appended entry holds, and paging through a history oldest first.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AuditLogTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Entries_page_oldest_first_and_a_token_only_fits_its_own_model()
    {
        var parts = await EngineParts.CreateAsync(azurite);
        var started = parts.Clock.GetUtcNow();
        for (var i = 1; i <= 5; i++)
        {
            await parts.Audit.AppendAsync("logged", "tests", AuditAction.VersionRegistered, i, null, [("n", $"{i}")], CancellationToken.None);
            await parts.Audit.AppendAsync("other", "tests", AuditAction.ModelUpdated, null, null, [], CancellationToken.None);
            parts.Clock.Advance(TimeSpan.FromSeconds(1));
        }

        var versions = new List<int?>();
        var pageSizes = new List<int>();
        string? token = null;
        string? firstToken = null;
        do
        {
            var page = await parts.Audit.HistoryAsync("logged", 2, token, CancellationToken.None);
            versions.AddRange(page.Items.Select(e => e.Version));
            pageSizes.Add(page.Items.Count);
            firstToken ??= page.NextPageToken;
            token = page.NextPageToken;
        }
        while (token is not null);

        Assert.Equal([1, 2, 3, 4, 5], versions);
        Assert.Equal([2, 2, 1], pageSizes);
        var all = await parts.Audit.HistoryAsync("logged", 1000, null, CancellationToken.None);
        Assert.Null(all.NextPageToken);
        Assert.Equal(Enumerable.Range(0, 5).Select(s => started.AddSeconds(s)), all.Items.Select(e => e.Timestamp));
        Assert.All(all.Items, e => Assert.Equal(("logged", "tests", AuditAction.VersionRegistered), (e.ModelName, e.Actor, e.Action)));
        Assert.Equal("3", all.Items[2].Details["n"]);

        var misused = await Assert.ThrowsAsync<IfcbException>(() => parts.Audit.HistoryAsync("other", 2, firstToken, CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidArgument, misused.Kind);
        Assert.Empty((await parts.Audit.HistoryAsync("never-logged", 10, null, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task A_model_change_carries_its_revision_and_an_alias_move_says_before_and_after()
    {
        var parts = await EngineParts.CreateAsync(azurite);
        var model = await parts.CreateModelAsync("aliased");
        var moved = (await parts.Models.UpdateAsync("aliased", "mover", m => m with { Description = "x" }, CancellationToken.None)).Value;

        await parts.Audit.AppendAsync(moved, "mover", AuditAction.AliasSet, 3, AuditLog.AliasMove("production", 2, 3), CancellationToken.None);
        parts.Clock.Advance(TimeSpan.FromTicks(1));
        await parts.Audit.AppendAsync(moved, "mover", AuditAction.AliasDeleted, 3, AuditLog.AliasMove("production", 3, null), CancellationToken.None);

        var entries = (await parts.Audit.HistoryAsync("aliased", 10, null, CancellationToken.None)).Items;
        Assert.Equal([model.Revision + 1, model.Revision + 1], entries.Select(e => e.ModelRevision));
        Assert.Equal(
            [("alias", "production"), ("new_version", "3"), ("previous_version", "2")],
            entries[0].Details.Select(d => (d.Key, d.Value)));
        Assert.Equal(("3", ""), (entries[1].Details["previous_version"], entries[1].Details["new_version"]));
    }
}
