using System.Text.Json;
using Ifcb.Contracts;

namespace Ifcb.Platform.Tests;

/// <summary>The one model-reference grammar: every form it accepts, every form it refuses, and its text round trip.</summary>
public sealed class ModelRefTests
{
    [Theory]
    [InlineData("plankton", "plankton", ModelSelector.Model, null, null, "plankton")]
    [InlineData("plankton/7", "plankton", ModelSelector.Number, 7, null, "plankton/7")]
    [InlineData("plankton/0007", "plankton", ModelSelector.Number, 7, null, "plankton/7")]
    [InlineData("plankton/9999999", "plankton", ModelSelector.Number, 9_999_999, null, "plankton/9999999")]
    [InlineData("plankton/latest", "plankton", ModelSelector.Latest, null, null, "plankton/latest")]
    [InlineData("plankton@production", "plankton", ModelSelector.Alias, null, "production", "plankton@production")]
    [InlineData("models:/plankton@production", "plankton", ModelSelector.Alias, null, "production", "plankton@production")]
    [InlineData("models:/plankton/3", "plankton", ModelSelector.Number, 3, null, "plankton/3")]
    [InlineData("my.model_v2-x", "my.model_v2-x", ModelSelector.Model, null, null, "my.model_v2-x")]
    public void Accepted_forms(string text, string name, ModelSelector selector, int? version, string? alias, string canonical)
    {
        var reference = ModelRef.Parse(text);
        Assert.Equal((name, selector, version, alias), (reference.Name, reference.Selector, reference.Version, reference.Alias));
        Assert.Equal(canonical, reference.ToString());
        Assert.Equal(reference, ModelRef.Parse(reference.ToString()));
    }

    [Theory]
    [InlineData("", "model name is empty")]
    [InlineData("/3", "model name is empty")]
    [InlineData("@production", "model name is empty")]
    [InlineData("plankton@", "alias is empty")]
    [InlineData("plankton/", "'' after '/'")]
    [InlineData("plankton/0", "'0' after '/'")]
    [InlineData("plankton/-1", "'-1' after '/'")]
    [InlineData("plankton/+1", "'+1' after '/'")]
    [InlineData("plankton/10000000", "'10000000' after '/'")]
    [InlineData("plankton/x", "'x' after '/'")]
    [InlineData("plankton/LATEST", "'LATEST' after '/'")]
    [InlineData("plankton/3/4", "'3/4' after '/'")]
    [InlineData("a@b@c", "alias 'b@c' contains")]
    [InlineData("a@b/3", "alias 'b/3' contains")]
    [InlineData("models:/", "model name is empty")]
    public void Refused_forms_say_why_and_show_the_accepted_ones(string text, string why)
    {
        var error = Assert.Throws<FormatException>(() => ModelRef.Parse(text));
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Contains("NAME, NAME/VERSION, NAME/latest or NAME@ALIAS", error.Message, StringComparison.Ordinal);
        Assert.False(ModelRef.TryParse(text, out _, out var message));
        Assert.Equal(error.Message, message);
    }

    [Fact]
    public void Null_text_is_refused_by_TryParse() => Assert.False(ModelRef.TryParse(null, out _, out _));

    [Fact]
    public void Name_alone_and_latest_both_mean_the_newest_ready_version_but_only_latest_selects_a_version()
    {
        Assert.True(ModelRef.Parse("p").MeansLatest);
        Assert.False(ModelRef.Parse("p").SelectsVersion);
        Assert.True(ModelRef.Parse("p/latest").MeansLatest);
        Assert.True(ModelRef.Parse("p/latest").SelectsVersion);
        Assert.False(ModelRef.Parse("p/1").MeansLatest);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(10_000_000)]
    public void Version_numbers_out_of_range_are_refused_by_the_factory(int version) =>
        Assert.Throws<FormatException>(() => ModelRef.ToVersion("p", version));

    [Fact]
    public void Json_holds_the_canonical_text_and_refuses_malformed_text()
    {
        var record = new Holder(ModelRef.Parse("models:/plankton/7"));
        var json = JsonSerializer.Serialize(record);
        Assert.Equal("""{"Model":"plankton/7"}""", json);
        Assert.Equal(record, JsonSerializer.Deserialize<Holder>(json));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Holder>("""{"Model":"plankton/0"}"""));
    }

    private sealed record Holder(ModelRef Model);
}
