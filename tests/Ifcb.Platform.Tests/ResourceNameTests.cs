namespace Ifcb.Platform.Tests;

public sealed class ResourceNameTests
{
    [Theory]
    [InlineData("plankton")]
    [InlineData("plankton-v2.1_final")]
    [InlineData("D20130526T095207_IFCB013")]
    public void Registry_style_names_are_accepted(string name) => Assert.Equal(name, ResourceName.ValidateModelName(name));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("..", "..")]
    [InlineData("a/../b", "..")]
    [InlineData("../../etc", "..")]
    [InlineData("/tmp/x", "separator")]
    [InlineData("a/b", "separator")]
    [InlineData("a\\b", "separator")]
    [InlineData("-lead", "must start")]
    [InlineData(".hidden", "must start")]
    [InlineData("sp ace", "' '")]
    [InlineData("tab\tx", "control")]
    public void Names_that_could_escape_a_folder_or_break_the_registry_are_refused(string name, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => ResourceName.ValidateModelName(name, "register_as"));

        Assert.Contains("register_as", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Model_names_are_bounded_at_the_registry_limit()
    {
        ResourceName.ValidateModelName(new string('a', ResourceName.MaxModelNameLength));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateModelName(new string('a', ResourceName.MaxModelNameLength + 1)));
    }

    [Fact]
    public void Class_names_allow_the_punctuation_of_IFCB_class_lists_but_no_path_tricks()
    {
        Assert.Equal("Chaetoceros (chain), pennate & co", ResourceName.ValidateClassName("Chaetoceros (chain), pennate & co"));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateClassName("../diatom"));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateClassName(" diatom"));
    }
}
