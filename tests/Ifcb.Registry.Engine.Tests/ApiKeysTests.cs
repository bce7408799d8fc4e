using System.Security.Cryptography;
using System.Text;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// <see cref="ApiKeys"/> against Azurite: a key is shown once and stored only as its SHA-256, names follow the model-name
/// rule and are never reused, a revoke is seen by the very next verification, and nothing but the right secret of a
/// known key verifies.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ApiKeysTests(AzuriteFixture azurite)
{
    private const string Admin = "bootstrap";

    private async Task<(ApiKeys Keys, Azure.Storage.Blobs.BlobContainerClient Container)> NewKeysAsync(RegistryOptions? options = null)
    {
        var container = await azurite.Azurite.CreateContainerAsync("keys");
        return (new ApiKeys(container, options), container);
    }

    [Fact]
    public async Task A_created_key_verifies_with_its_role_and_is_stored_only_as_its_sha256()
    {
        var (keys, container) = await NewKeysAsync();

        var created = await keys.CreateAsync("ci_bot.2", ApiRole.Writer, Admin);

        Assert.StartsWith("ifcb_ci_bot.2_", created.Key, StringComparison.Ordinal);
        Assert.Equal("ifcb_ci_bot.2_".Length + 43, created.Key.Length);
        Assert.Equal("ci_bot.2", ApiKeys.NameOf(created.Key));
        Assert.Equal((ApiRole.Writer, Admin, false), (created.Record.Role, created.Record.CreatedBy, created.Record.Revoked));
        var verified = await keys.VerifyAsync(created.Key);
        Assert.Equal(ApiKeyStatus.Valid, verified.Status);
        Assert.Equal(("key:ci_bot.2", ApiRole.Writer), (verified.Record!.Principal, verified.Record.Role));

        Assert.Equal(["keys/ci_bot.2.json"], await container.BlobNamesAsync("keys/"));
        var stored = (await container.GetBlobClient("keys/ci_bot.2.json").DownloadContentAsync()).Value.Content.ToString();
        var secret = created.Key[^43..];
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(created.Key))), stored, StringComparison.Ordinal);
        Assert.Contains("\"role\":\"WRITER\"", stored, StringComparison.Ordinal);
        Assert.DoesNotContain("revoked", stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_keys_never_share_a_secret()
    {
        var (keys, _) = await NewKeysAsync();

        var first = await keys.CreateAsync("first", ApiRole.Reader, Admin);
        var second = await keys.CreateAsync("second", ApiRole.Reader, Admin);

        Assert.NotEqual(first.Key[^43..], second.Key[^43..]);
        Assert.NotEqual(first.Record.Sha256, second.Record.Sha256);
    }

    [Fact]
    public async Task A_taken_name_is_AlreadyExists_even_after_its_key_was_revoked_and_the_first_key_stays_valid()
    {
        var (keys, _) = await NewKeysAsync();
        var original = await keys.CreateAsync("ci-bot", ApiRole.Reader, Admin);

        var duplicate = await Assert.ThrowsAsync<IfcbException>(() => keys.CreateAsync("ci-bot", ApiRole.Admin, Admin));
        Assert.Equal(ErrorKind.AlreadyExists, duplicate.Kind);
        Assert.Equal(ApiKeyStatus.Valid, (await keys.VerifyAsync(original.Key)).Status);
        Assert.Equal(ApiRole.Reader, (await keys.VerifyAsync(original.Key)).Record!.Role);

        await keys.RevokeAsync("ci-bot", Admin);
        var reused = await Assert.ThrowsAsync<IfcbException>(() => keys.CreateAsync("ci-bot", ApiRole.Reader, Admin));
        Assert.Equal(ErrorKind.AlreadyExists, reused.Kind);
        Assert.Contains("revoked names stay taken", reused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a..b")]
    [InlineData("ci/bot")]
    [InlineData("../models/x")]
    [InlineData("-starts-with-dash")]
    [InlineData("has space")]
    public async Task A_name_against_the_model_name_rule_is_InvalidArgument_and_nothing_is_stored(string name)
    {
        var (keys, container) = await NewKeysAsync();

        var refused = await Assert.ThrowsAsync<IfcbException>(() => keys.CreateAsync(name, ApiRole.Writer, Admin));

        Assert.Equal(ErrorKind.InvalidArgument, refused.Kind);
        Assert.Contains("key name", refused.Message, StringComparison.Ordinal);
        Assert.Empty(await container.BlobNamesAsync(""));
    }

    [Fact]
    public async Task A_name_longer_than_a_model_name_is_InvalidArgument()
    {
        var (keys, _) = await NewKeysAsync();

        var refused = await Assert.ThrowsAsync<IfcbException>(() =>
            keys.CreateAsync(new string('k', ResourceName.MaxModelNameLength + 1), ApiRole.Reader, Admin));

        Assert.Equal(ErrorKind.InvalidArgument, refused.Kind);
        Assert.Contains($"the limit is {ResourceName.MaxModelNameLength}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_revoked_key_is_refused_by_the_next_verification_and_revoking_again_changes_nothing()
    {
        var (keys, _) = await NewKeysAsync();
        var created = await keys.CreateAsync("leaked", ApiRole.Admin, Admin);
        Assert.Equal(ApiKeyStatus.Valid, (await keys.VerifyAsync(created.Key)).Status);

        var revoked = await keys.RevokeAsync("leaked", "key:ops");

        Assert.Equal("key:ops", revoked.RevokedBy);
        Assert.NotNull(revoked.RevokedAt);
        var verified = await keys.VerifyAsync(created.Key);
        Assert.Equal(ApiKeyStatus.Revoked, verified.Status);
        Assert.Equal("key:ops", verified.Record!.RevokedBy);
        var again = await keys.RevokeAsync("leaked", Admin);
        Assert.Equal((revoked.RevokedAt, "key:ops"), (again.RevokedAt, again.RevokedBy));
    }

    [Fact]
    public async Task Revoking_an_unknown_key_is_NotFound()
    {
        var (keys, _) = await NewKeysAsync();

        var missing = await Assert.ThrowsAsync<IfcbException>(() => keys.RevokeAsync("nobody", Admin));

        Assert.Equal(ErrorKind.NotFound, missing.Kind);
    }

    [Fact]
    public async Task Only_the_right_secret_of_a_known_key_verifies()
    {
        var (keys, _) = await NewKeysAsync();
        var created = await keys.CreateAsync("reader-1", ApiRole.Reader, Admin);
        var secret = created.Key[^43..];
        var otherSecret = (secret[0] == 'A' ? 'B' : 'A') + secret[1..];

        string?[] impostors =
        [
            null, "", "some-bootstrap-key", created.Key + "x", created.Key[..^1], $"ifcb_reader-1_{otherSecret}",
            $"ifcb_reader-2_{secret}", $"ifcb_../keys/reader-1_{secret}", created.Key.ToUpperInvariant(),
        ];
        foreach (var impostor in impostors)
            Assert.Equal(ApiKeyStatus.Unknown, (await keys.VerifyAsync(impostor)).Status);
        Assert.Equal(ApiKeyStatus.Valid, (await keys.VerifyAsync(created.Key)).Status);
    }

    [Fact]
    public async Task The_list_is_in_name_order_and_includes_revoked_keys()
    {
        var (keys, _) = await NewKeysAsync();
        await keys.CreateAsync("zeta", ApiRole.Reader, Admin);
        await keys.CreateAsync("alpha", ApiRole.Admin, Admin);
        await keys.CreateAsync("mid", ApiRole.Writer, Admin);
        await keys.RevokeAsync("mid", Admin);

        var listed = await keys.ListAsync();

        Assert.Equal(["alpha", "mid", "zeta"], listed.Select(k => k.Name));
        Assert.Equal([false, true, false], listed.Select(k => k.Revoked));
        Assert.Equal([ApiRole.Admin, ApiRole.Writer, ApiRole.Reader], listed.Select(k => k.Role));
    }

    [Fact]
    public async Task The_number_of_keys_is_bounded_revoked_ones_included()
    {
        var (keys, _) = await NewKeysAsync(new RegistryOptions { MaxApiKeys = 2 });
        await keys.CreateAsync("one", ApiRole.Reader, Admin);
        await keys.CreateAsync("two", ApiRole.Reader, Admin);
        await keys.RevokeAsync("two", Admin);

        var full = await Assert.ThrowsAsync<IfcbException>(() => keys.CreateAsync("three", ApiRole.Reader, Admin));

        Assert.Equal(ErrorKind.ResourceExhausted, full.Kind);
        Assert.Contains("(2)", full.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_registry_resolver_names_the_principal_and_says_revoked_for_a_revoked_key()
    {
        var (keys, _) = await NewKeysAsync();
        var created = await keys.CreateAsync("ci-bot", ApiRole.Writer, Admin);
        var resolver = new RegistryKeyResolver(keys);

        var valid = await resolver.ResolveAsync(created.Key, CancellationToken.None);
        Assert.Equal(new Microsoft.Extensions.Hosting.ApiPrincipal("key:ci-bot", ApiRole.Writer), valid.Principal);
        Assert.Null((await resolver.ResolveAsync("ifcb_nobody_" + created.Key[^43..], CancellationToken.None)).Principal);

        await keys.RevokeAsync("ci-bot", Admin);
        var revoked = await resolver.ResolveAsync(created.Key, CancellationToken.None);
        Assert.Null(revoked.Principal);
        Assert.Contains("'ci-bot' was revoked", revoked.Refusal, StringComparison.Ordinal);
    }
}
