using System.Globalization;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class AliasTests(AzuriteFixture azurite)
{
    private const string Actor = "tests";

    private static async Task<ModelRegistry> WithVersionsAsync(ModelRegistry registry, string model, int count)
    {
        await registry.CreateModelAsync(model, Actor);
        for (var i = 0; i < count; i++)
        {
            var checkpoint = TestCheckpoint.Create(128);
            await registry.RegisterVersionAsync(model, checkpoint.Request(), checkpoint.Stream(), Actor);
        }

        return registry;
    }

    [Fact]
    public async Task Alias_resolves_moves_and_is_deleted()
    {
        var registry = await WithVersionsAsync((await azurite.NewRegistryAsync()).Registry, "aliased", 2);

        await registry.SetAliasAsync("aliased", "production", 1, "alice");
        var production = await registry.GetVersionAsync("aliased@production");
        Assert.Equal(1, production.Version);
        Assert.Equal(["production"], production.Aliases.ToArray());

        var moved = await registry.SetAliasAsync("aliased", "production", 2, "bob");
        Assert.Equal(2, moved.Model.Aliases["production"]);
        Assert.Equal(2, (await registry.GetVersionAsync("aliased@production")).Version);
        Assert.Empty((await registry.GetVersionAsync("aliased/1")).Aliases);

        await registry.DeleteAliasAsync("aliased", "production", "carol");
        var missing = await Assert.ThrowsAsync<IfcbException>(() => registry.GetVersionAsync("aliased@production"));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        await registry.DeleteAliasAsync("aliased", "production", "carol"); // idempotent

        var history = (await registry.GetAuditHistoryAsync("aliased")).Items.Where(e => e.Action is AuditAction.AliasSet or AuditAction.AliasDeleted).ToList();
        Assert.Equal([("", "1", "alice"), ("1", "2", "bob"), ("2", "", "carol")],
            history.Select(e => (e.Details["previous_version"], e.Details["new_version"], e.Actor)).ToArray());
    }

    [Fact]
    public async Task Aliases_only_point_at_existing_READY_versions()
    {
        var (registry, _) = await azurite.NewRegistryAsync();
        await WithVersionsAsync(registry, "strict", 1);
        var bad = TestCheckpoint.Create(100);
        await Assert.ThrowsAsync<IfcbException>(() =>
            registry.RegisterVersionAsync("strict", bad.Request() with { SizeBytes = 99 }, bad.Stream(), Actor));

        Assert.Equal(ErrorKind.FailedPrecondition,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("strict", "production", 2, Actor))).Kind);
        Assert.Equal(ErrorKind.NotFound,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("strict", "production", 3, Actor))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<IfcbException>(() => registry.SetAliasAsync("strict", "latest", 1, Actor))).Kind);
    }

    [Fact]
    public async Task Concurrent_movers_leave_one_valid_target_and_a_consistent_audit_chain()
    {
        var (registry, container) = await azurite.NewRegistryAsync();
        await WithVersionsAsync(registry, "contended", 4);
        await registry.SetAliasAsync("contended", "production", 1, "setup");

        // Each mover is its own registry instance (a separate replica) moving the alias to a different version.
        var movers = Enumerable.Range(0, 16).Select(i => (Registry: new ModelRegistry(container), Target: 1 + (i % 4), Actor: $"mover-{i}")).ToArray();
        await Task.WhenAll(movers.Select(m => Task.Run(async () =>
        {
            for (var round = 0; round < 3; round++)
            {
                await m.Registry.SetAliasAsync("contended", "production", 1 + ((m.Target + round) % 4), m.Actor);
            }
        })));

        var model = await registry.GetModelAsync("contended");
        var final = model.Aliases["production"];
        Assert.InRange(final, 1, 4);
        Assert.Single(model.Aliases);
        Assert.Equal(final, (await registry.GetVersionAsync("contended@production")).Version);

        // Ordered by the model.json revision each move produced, every move starts where the previous one ended.
        var moves = new List<AuditEntry>();
        for (string? token = null; ;)
        {
            var page = await registry.GetAuditHistoryAsync("contended", 1000, token);
            moves.AddRange(page.Items.Where(e => e.Action == AuditAction.AliasSet));
            if ((token = page.NextPageToken) is null)
            {
                break;
            }
        }

        moves = [.. moves.OrderBy(e => e.ModelRevision)];
        Assert.Equal(moves.Count, moves.Select(e => e.ModelRevision).Distinct().Count());
        Assert.Equal("", moves[0].Details["previous_version"]);
        Assert.Equal("1", moves[0].Details["new_version"]);
        for (var i = 1; i < moves.Count; i++)
        {
            Assert.Equal(moves[i - 1].Details["new_version"], moves[i].Details["previous_version"]);
            Assert.NotEqual(moves[i].Details["previous_version"], moves[i].Details["new_version"]);
        }

        Assert.Equal(final.ToString(CultureInfo.InvariantCulture), moves[^1].Details["new_version"]);
        Assert.Equal(model.Revision, moves[^1].ModelRevision);
    }
}
