using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Tests;

public class DatasetTests
{
    private static DatasetSpec Sample(DatasetOptions? options = null) => DatasetSpec.FromFolder(TestData.TrainingSample, options);

    [Fact]
    public void SampleHasTwoOrdinalClassesInClassThenPathOrder()
    {
        var spec = Sample();
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], spec.Classes);
        Assert.Equal([14, 16], spec.CountPerClass);
        Assert.Equal(spec.Images.OrderBy(i => i.ClassIndex).ThenBy(i => i.Path, StringComparer.Ordinal), spec.Images);
        Assert.All(spec.Images, i => Assert.True(Path.IsPathFullyQualified(i.Path)));
    }

    [Fact]
    public void DefaultSplitIs11To3And13To3AndDeterministic()
    {
        var (train, val) = Sample().Split(SplitRatio.Default, seed: 42);
        Assert.Equal([11, 13], train.CountPerClass);
        Assert.Equal([3, 3], val.CountPerClass);
        Assert.Empty(train.Images.Select(i => i.Path).Intersect(val.Images.Select(i => i.Path)));
        Assert.Equal(val.Images.OrderBy(i => i.ClassIndex).ThenBy(i => i.Path, StringComparer.Ordinal), val.Images);

        var (train2, val2) = Sample().Split(SplitRatio.Default, seed: 42);
        Assert.Equal(train.Images, train2.Images);
        Assert.Equal(val.Images, val2.Images);
        var (_, val3) = Sample().Split(SplitRatio.Default, seed: 43);
        Assert.NotEqual(val.Images, val3.Images);

        var (swappedTrain, swappedVal) = Sample().Split(SplitRatio.Default, seed: 42, swap: true);
        Assert.Equal(val.Images, swappedTrain.Images);
        Assert.Equal(train.Images, swappedVal.Images);
    }

    [Theory]
    [InlineData(100, 0, 13, 15)] // d1 == n and class-min 2 → one image goes to validation
    [InlineData(50, 50, 7, 8)]
    [InlineData(0, 100, 0, 0)]
    public void SplitSizesFollowNeustonRounding(int t, int v, int meso, int strombidium)
    {
        var (train, _) = Sample().Split(new SplitRatio(t, v), seed: 1);
        Assert.Equal([meso, strombidium], train.CountPerClass);
    }

    [Fact]
    public void SplitRatioMustSumTo100()
    {
        Assert.Contains("sum to 100", Assert.Throws<ArgumentException>(() => SplitRatio.Parse("70:20")).Message);
        Assert.Contains("T:V", Assert.Throws<ArgumentException>(() => SplitRatio.Parse("80-20")).Message);
        Assert.Equal(new SplitRatio(70, 30), SplitRatio.Parse("70:30"));
    }

    [Fact]
    public void ClassMinDropsSmallClassesAndClassMaxSamplesSorted()
    {
        var dropped = Sample(new DatasetOptions(ClassMin: 15));
        Assert.Equal(["Strombidium-like"], dropped.Classes);
        Assert.Equal(("Mesodinium_major", 14), Assert.Single(dropped.Report.DroppedTooFewImages));
        Assert.All(dropped.Images, i => Assert.Equal(0, i.ClassIndex));

        var capped = Sample(new DatasetOptions(ClassMax: 10, Seed: 5));
        Assert.Equal([10, 10], capped.CountPerClass);
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], capped.Report.LimitedToClassMax);
        Assert.Equal(capped.Images, Sample(new DatasetOptions(ClassMax: 10, Seed: 5)).Images);
        Assert.NotEqual(capped.Images, Sample(new DatasetOptions(ClassMax: 10, Seed: 6)).Images);
        var all = Sample().Images.Select(i => i.Path).ToHashSet();
        Assert.All(capped.Images, i => Assert.Contains(i.Path, all));

        Assert.Contains("must be greater than", Assert.Throws<ArgumentException>(() => Sample(new DatasetOptions(ClassMin: 3, ClassMax: 3))).Message);
    }

    [Fact]
    public void ClassConfigMergesSkipsAndReportsMissing()
    {
        var merge = ClassConfig.Parse("classes,merge,skip,float\nMesodinium_major,ciliate,0,1.0\nStrombidium-like,ciliate,1,1.0\nNotHere,1,1,1.0\n", "merge");
        var merged = Sample(new DatasetOptions(ClassConfig: merge));
        Assert.Equal(["ciliate"], merged.Classes);
        Assert.Equal([30], merged.CountPerClass);
        Assert.Equal(["Mesodinium_major", "Strombidium-like"], merged.Report.MergedByConfig["ciliate"]);
        Assert.Equal(["NotHere"], merged.Report.ConfigClassesMissingFromSource);
        Assert.Equal(merged.Images.OrderBy(i => i.Path, StringComparer.Ordinal), merged.Images);

        var skip = Sample(new DatasetOptions(ClassConfig: ClassConfig.Parse("classes,merge,skip\nMesodinium_major,x,0\nStrombidium-like,x,1\n", "skip")));
        Assert.Equal(["Strombidium-like"], skip.Classes);
        Assert.Equal(["Mesodinium_major"], skip.Report.SkippedByConfig);

        // pandas turns 1 into 1.0 when a column has a blank; neuston then renamed the class to "1.0". We keep it.
        var floats = Sample(new DatasetOptions(ClassConfig: ClassConfig.Parse("c,float\nMesodinium_major,1.0\n", "float")));
        Assert.Equal(["Mesodinium_major"], floats.Classes);
        Assert.Equal(["Strombidium-like"], floats.Report.SourceClassesMissingFromConfig);

        Assert.Contains("\"merge\", \"skip\"", Assert.Throws<ArgumentException>(() => ClassConfig.Parse("c,merge,skip\n", "nope")).Message);
        Assert.Contains("blank", Assert.Throws<InvalidDataException>(() => ClassConfig.Parse("c,a\nMesodinium_major,\n", "a")).Message);
    }

    [Fact]
    public void ExtensionsMatchCaseInsensitivelyAndOtherFilesAreIgnored()
    {
        var dir = TestData.TempDirectory();
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "b"));
            Directory.CreateDirectory(Path.Combine(dir, "B"));
            foreach (var name in new[] { "b/x.PNG", "b/y.png", "b/z.txt", "b/w.Jpeg", "B/v.tif" })
                File.WriteAllBytes(Path.Combine(dir, name), [0]);
            var spec = DatasetSpec.FromFolder(dir, new DatasetOptions(ClassMin: 1));
            Assert.Equal(["B", "b"], spec.Classes); // ordinal: upper case first
            Assert.Equal(["w.Jpeg", "x.PNG", "y.png"], spec.Images.Where(i => i.ClassIndex == 1).Select(i => Path.GetFileName(i.Path)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void ImageListsAreSortedPathsJoinedWithNewlines()
    {
        var dir = TestData.TempDirectory();
        try
        {
            var (train, val) = Sample().Split(SplitRatio.Default, 7);
            var (t, v) = ImageLists.Write(dir, train, val);
            var text = File.ReadAllText(v);
            Assert.Equal(string.Join('\n', val.Images.Select(i => i.Path).Order(StringComparer.Ordinal)), text);
            Assert.False(text.EndsWith('\n'));
            Assert.Equal(24, File.ReadAllText(t).Split('\n').Length);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("../x", "..")]
    [InlineData("a/b", "separator")]
    [InlineData("/abs", "separator")]
    [InlineData("", "empty")]
    [InlineData("a\u0001b", "control")]
    [InlineData("a b", "contains ' '")]
    [InlineData("-lead", "start with a letter")]
    public void DatasetNamesAreValidated(string name, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => ResourceName.ValidateDatasetName(name));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ClassNamesAllowCommonPunctuation()
    {
        Assert.Equal("Chaetoceros_sp. (single)", ResourceName.ValidateClassName("Chaetoceros_sp. (single)"));
        Assert.Equal("Strombidium-like", ResourceName.ValidateClassName("Strombidium-like"));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateClassName(".."));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateClassName("a\\b"));
        Assert.Throws<ArgumentException>(() => ResourceName.ValidateDatasetName(new string('a', 65)));
        Assert.Equal("my-set_1.0", ResourceName.ValidateDatasetName("my-set_1.0"));
    }
}
