using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

public sealed class ValidationTests
{
    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a..b")]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("-leading-dash")]
    [InlineData(".hidden")]
    [InlineData("tab\tname")]
    [InlineData("nul\0name")]
    [InlineData("space name")]
    public void Rejects_unsafe_model_names(string name)
    {
        var error = Assert.Throws<IfcbException>(() => RegistryValidation.ModelName(name));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("model name", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_names_longer_than_128()
    {
        RegistryValidation.ModelName(new string('a', 128));
        var error = Assert.Throws<IfcbException>(() => RegistryValidation.ModelName(new string('a', 129)));
        Assert.Contains("limit is 128", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ifcb-classifier")]
    [InlineData("IFCB_v2.resnet")]
    [InlineData("0")]
    public void Accepts_safe_model_names(string name) => RegistryValidation.ModelName(name);

    [Theory]
    [InlineData("latest")]
    [InlineData("v3")]
    [InlineData("a/b")]
    public void Rejects_reserved_or_unsafe_aliases(string alias) =>
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<IfcbException>(() => RegistryValidation.Alias(alias)).Kind);

    [Fact]
    public void Limits_tag_keys_and_values()
    {
        RegistryValidation.TagKey(new string('k', 250));
        Assert.Throws<IfcbException>(() => RegistryValidation.TagKey(new string('k', 251)));
        Assert.Throws<IfcbException>(() => RegistryValidation.TagKey("bad\nkey"));
        RegistryValidation.TagValue("k", "multi\nline\tvalue");
        Assert.Throws<IfcbException>(() => RegistryValidation.TagValue("k", new string('v', 5001)));
        Assert.Throws<IfcbException>(() => RegistryValidation.TagValue("k", "bell\a"));
    }

    [Fact]
    public void References_follow_the_one_grammar_and_the_registry_naming_rules()
    {
        // The grammar is ModelRef's (tested in Ifcb.Platform.Tests); the registry adds its naming rules on top.
        RegistryValidation.Reference(ModelRef.Parse("models:/ifcb@production"));
        RegistryValidation.Reference(ModelRef.Parse("ifcb/3"));
        RegistryValidation.Reference(ModelRef.Parse("ifcb"));
        foreach (var bad in new[] { "a..b@prod", "-x/3", "ifcb@v2", "ifcb@bad alias" })
        {
            Assert.Equal(ErrorKind.InvalidArgument,
                Assert.Throws<IfcbException>(() => RegistryValidation.Reference(ModelRef.Parse(bad))).Kind);
        }
    }

    [Fact]
    public async Task A_reference_given_as_text_that_is_not_one_is_InvalidArgument_naming_the_accepted_forms()
    {
        var registry = new ModelRegistry(new Azure.Storage.Blobs.BlobContainerClient("UseDevelopmentStorage=true", "unused"));
        foreach (var bad in new[] { "ifcb/", "ifcb/x", "ifcb/-1", "ifcb/0", "ifcb@" })
        {
            var error = await Assert.ThrowsAsync<IfcbException>(() => registry.GetVersionAsync(bad));
            Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
            Assert.Contains("NAME/VERSION", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parses_metric_thresholds()
    {
        Assert.Equal(new MetricThreshold("f1_weighted", ComparisonOperator.GreaterThanOrEqual, 0.8), MetricThreshold.Parse("f1_weighted>=0.8"));
        Assert.Equal(new MetricThreshold("loss", ComparisonOperator.LessThan, 1e-3), MetricThreshold.Parse(" loss < 1e-3 "));
        Assert.Equal(new MetricThreshold("epochs", ComparisonOperator.Equal, 10), MetricThreshold.Parse("epochs=10"));
        Assert.Throws<IfcbException>(() => MetricThreshold.Parse(">=0.8"));
        Assert.Throws<IfcbException>(() => MetricThreshold.Parse("f1>=high"));
        Assert.Throws<IfcbException>(() => MetricThreshold.Parse("f1 ~ 0.8"));

        var threshold = MetricThreshold.Parse("f1>0.5");
        Assert.True(threshold.IsSatisfiedBy(new Dictionary<string, double> { ["f1"] = 0.6 }));
        Assert.False(threshold.IsSatisfiedBy(new Dictionary<string, double> { ["f1"] = 0.5 }));
        Assert.False(threshold.IsSatisfiedBy(new Dictionary<string, double>()));
    }

    [Fact]
    public void Checks_registration_requests()
    {
        var request = TestCheckpoint.Create(16).Request();
        RegistryValidation.NewVersion(request, 1024);
        Assert.Equal(ErrorKind.ResourceExhausted,
            Assert.Throws<IfcbException>(() => RegistryValidation.NewVersion(request, 8)).Kind);
        Assert.Throws<IfcbException>(() => RegistryValidation.NewVersion(request with { Sha256 = "abc" }, 1024));
        Assert.Throws<IfcbException>(() => RegistryValidation.NewVersion(request with { SizeBytes = 0 }, 1024));
        Assert.Throws<IfcbException>(() => RegistryValidation.NewVersion(
            request with { Metrics = request.Metrics.SetItem("f1", double.NaN) }, 1024));
    }
}
