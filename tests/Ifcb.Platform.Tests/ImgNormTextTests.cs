using System.Text.Json;
using Ifcb.Contracts;

namespace Ifcb.Platform.Tests;

/// <summary>The one img-norm type and its one text form, "MEAN STD", as typed, stored and sent on the bus.</summary>
public sealed class ImgNormTextTests
{
    [Theory]
    [InlineData("0.667 0.161", "0.667 0.161")]
    [InlineData("  0.667\t0.161 ", "0.667 0.161")]
    [InlineData("0.056,0.058,0.051 0.067,0.071,0.057", "0.056,0.058,0.051 0.067,0.071,0.057")]
    [InlineData("0.5,0.5,0.5 0.25", "0.5 0.25")]
    [InlineData("1e-1 2E-1", "0.1 0.2")]
    public void The_text_form_is_canonical_and_parses_back_to_an_equal_value(string text, string canonical)
    {
        var norm = ImgNorm.Parse(text);
        Assert.Equal(canonical, norm.ToString());
        Assert.Equal(norm, ImgNorm.Parse(norm.ToString()));
    }

    [Fact]
    public void Values_survive_the_text_form_bit_for_bit()
    {
        var norm = new ImgNorm([0.1 + 0.2, 1.0 / 3, Math.PI / 10], [0.2226, 1e-7, 0.3]);
        var back = ImgNorm.Parse(norm.ToString());
        Assert.Equal(norm.Mean, back.Mean);
        Assert.Equal(norm.Std, back.Std);
    }

    [Theory]
    [InlineData("0.667", "must be two values")]
    [InlineData("0.667 0.161 0.2", "must be two values")]
    [InlineData("x 0.161", "\"x\" is not a number")]
    [InlineData("0.5,0.5 0.2", "has 2 values")]
    [InlineData("0.5 0", "STD[0] is 0")]
    [InlineData("0.5 -1", "greater than 0")]
    [InlineData("NaN 0.2", "finite")]
    public void Malformed_text_says_what_to_write(string text, string why)
    {
        var error = Assert.Throws<FormatException>(() => ImgNorm.Parse(text));
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_holds_the_text_form()
    {
        var record = new Holder(ImgNorm.Parse("0.667 0.161"));
        var json = JsonSerializer.Serialize(record);
        Assert.Equal("""{"Norm":"0.667 0.161"}""", json);
        Assert.Equal(record, JsonSerializer.Deserialize<Holder>(json));
        Assert.Null(JsonSerializer.Deserialize<Holder>("""{"Norm":null}""")!.Norm);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Holder>("""{"Norm":"0.667"}"""));
    }

    [Fact]
    public void Registry_documents_written_before_the_text_form_are_still_read()
    {
        var legacy = JsonSerializer.Deserialize<Holder>("""{"Norm":{"Mean":"0.056,0.058,0.051","Std":"0.067"}}""")!;
        Assert.Equal(ImgNorm.Parse("0.056,0.058,0.051 0.067"), legacy.Norm);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Holder>("""{"Norm":{"Mean":"0.5"}}"""));
    }

    private sealed record Holder(ImgNorm? Norm);
}
