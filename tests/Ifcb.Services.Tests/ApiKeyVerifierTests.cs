using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Ifcb.Services.Tests;

/// <summary>How a service holds and checks the platform key: its SHA-256 (preferred) or the plain key.</summary>
public sealed class ApiKeyVerifierTests
{
    private const string Key = "s3cret-platform-key-0123456789abcd";

    private static ApiKeyVerifier Verifier(params (string Key, string Value)[] settings) =>
        new(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build());

    [Fact]
    public void The_sha256_is_the_lower_case_hex_digest_of_the_keys_utf8_bytes()
    {
        // echo -n 'abc' | sha256sum
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ApiKeyVerifier.Sha256Hex("abc"));
    }

    [Fact]
    public void A_service_holding_only_the_sha256_accepts_the_key_and_nothing_else()
    {
        var verifier = Verifier((ApiKeyVerifier.Sha256ConfigurationKey, ApiKeyVerifier.Sha256Hex(Key)));

        Assert.Null(verifier.Problem);
        Assert.Equal(ApiKeyCheck.Valid, verifier.Check(Key));
        Assert.Equal(ApiKeyCheck.Wrong, verifier.Check(Key + " "));
        Assert.Equal(ApiKeyCheck.Wrong, verifier.Check(ApiKeyVerifier.Sha256Hex(Key)));
        Assert.Equal(ApiKeyCheck.Missing, verifier.Check(null));
        Assert.Equal(ApiKeyCheck.Missing, verifier.Check(""));
    }

    [Fact]
    public void Upper_case_hex_and_surrounding_spaces_in_the_setting_are_accepted()
    {
        var verifier = Verifier((ApiKeyVerifier.Sha256ConfigurationKey, $"  {ApiKeyVerifier.Sha256Hex(Key).ToUpperInvariant()}\n"));

        Assert.Equal(ApiKeyCheck.Valid, verifier.Check(Key));
    }

    [Fact]
    public void A_deployment_that_sets_the_plain_key_keeps_working()
    {
        var verifier = Verifier((ApiKeyVerifier.PlainConfigurationKey, Key));

        Assert.Equal(ApiKeyCheck.Valid, verifier.Check(Key));
        Assert.Equal(ApiKeyCheck.Wrong, verifier.Check("other"));
    }

    [Fact]
    public void The_sha256_setting_wins_over_the_plain_key()
    {
        var verifier = Verifier((ApiKeyVerifier.Sha256ConfigurationKey, ApiKeyVerifier.Sha256Hex(Key)), (ApiKeyVerifier.PlainConfigurationKey, "old-key"));

        Assert.Equal(ApiKeyCheck.Valid, verifier.Check(Key));
        Assert.Equal(ApiKeyCheck.Wrong, verifier.Check("old-key"));
    }

    [Theory]
    [InlineData("not-hex")]
    [InlineData("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015")]
    [InlineData("zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    public void A_malformed_sha256_setting_verifies_nothing_and_says_why(string setting)
    {
        var verifier = Verifier((ApiKeyVerifier.Sha256ConfigurationKey, setting), (ApiKeyVerifier.PlainConfigurationKey, Key));

        Assert.Equal(ApiKeyCheck.NotConfigured, verifier.Check(Key));
        Assert.Contains(ApiKeyVerifier.Sha256ConfigurationKey, verifier.Problem, StringComparison.Ordinal);
        Assert.Contains("64 hex digits", verifier.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_any_key_setting_nothing_verifies_and_the_problem_names_both_settings()
    {
        var verifier = Verifier();

        Assert.Equal(ApiKeyCheck.NotConfigured, verifier.Check(Key));
        Assert.Contains("Ifcb__ApiKeySha256", verifier.Problem, StringComparison.Ordinal);
        Assert.Contains("Ifcb__ApiKey", verifier.Problem, StringComparison.Ordinal);
    }
}
