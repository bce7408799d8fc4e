using Ifcb.Data.Datasets;

namespace Ifcb.Data.Tests;

/// <summary>neuston's dataset-config (SRC as a CSV merging datasets) on copies of the real sample PNGs.</summary>
public sealed class DatasetConfigTests : IDisposable
{
    private readonly string _root = TestData.TempDirectory();

    public void Dispose() => Directory.Delete(_root, recursive: true);

    // "main": the sample as is (Mesodinium_major 14, Strombidium-like 16). "extra": 5 Mesodinium_major and 3 "Other",
    // copied under new names so both datasets' files are distinguishable.
    private (string Main, string Extra) TwoDatasets()
    {
        var main = Path.Combine(_root, "main");
        var extra = Path.Combine(_root, "extra");
        foreach (var classDir in Directory.GetDirectories(TestData.TrainingSample))
        {
            var target = Directory.CreateDirectory(Path.Combine(main, Path.GetFileName(classDir))).FullName;
            foreach (var file in Directory.GetFiles(classDir))
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
        var pngs = Directory.GetFiles(Path.Combine(TestData.TrainingSample, "Mesodinium_major")).Order(StringComparer.Ordinal).ToList();
        Directory.CreateDirectory(Path.Combine(extra, "Mesodinium_major"));
        Directory.CreateDirectory(Path.Combine(extra, "Other"));
        for (var i = 0; i < 5; i++)
            File.Copy(pngs[i], Path.Combine(extra, "Mesodinium_major", $"extra_{i}.png"));
        for (var i = 0; i < 3; i++)
            File.Copy(pngs[i], Path.Combine(extra, "Other", $"other_{i}.png"));
        return (main, extra);
    }

    private string WriteConfig(string text)
    {
        var path = Path.Combine(_root, "config.csv");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Header_priorities_and_cells_are_read_like_neuston_with_unprioritised_columns_last()
    {
        var config = DatasetConfig.Parse(",2:/a,/b,1:/c\nx,1,0,renamed\ny,1.0,0.0,1\n");
        Assert.Equal([new DatasetConfigColumn("/a", 2), new DatasetConfigColumn("/b", 3), new DatasetConfigColumn("/c", 1)], config.Columns);
        Assert.Equal([1, 2, 3], config.PriorityLevels);
        Assert.Equal(["x", null, "renamed"], config.Rows[0].Targets);
        Assert.Equal(["y", null, "y"], config.Rows[1].Targets);

        var plain = DatasetConfig.Parse(",/a,/b\nx,1,1\n");
        Assert.All(plain.Columns, c => Assert.Equal(1, c.Priority));
    }

    [Theory]
    [InlineData(",/a\nx,\n", "blank")]
    [InlineData(",/a\nx,1\nx,1\n", "twice")]
    [InlineData(",/a,/a\nx,1,1\n", "twice")]
    [InlineData(",/a,/b\nx,1\n", "has 2 cells")]
    [InlineData(",0:/a\nx,1\n", "priorities start at 1")]
    [InlineData("only-a-header\n", "names no datasets")]
    [InlineData("", "empty")]
    public void Malformed_configs_are_refused_with_what_to_fix(string csv, string expected) =>
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => DatasetConfig.Parse(csv)).Message);

    [Fact]
    public void A_config_merges_datasets_renames_leaves_out_and_notes_unlisted_folders()
    {
        var (main, extra) = TwoDatasets();
        // extra's Mesodinium joins main's; Strombidium-like is taken from main only; extra's "Other" is not listed.
        var config = WriteConfig($",1:{main},2:{extra}\nMesodinium_major,1,1\nStrombidium-like,strombidium,0\n");
        var spec = DatasetSpec.FromSource(config);
        Assert.Equal(["Mesodinium_major", "strombidium"], spec.Classes);
        Assert.Equal([19, 16], spec.CountPerClass);
        Assert.Equal(5, spec.Images.Count(i => Path.GetFileName(i.Path).StartsWith("extra_", StringComparison.Ordinal)));
        Assert.Equal($"{extra}: class folders not in the dataset-config, left out: Other", Assert.Single(spec.Report.DatasetConfigNotes!));
        Assert.Equal(Path.GetFullPath(config), spec.Source);

        // The same split rules as a folder: 80:20 per class.
        var (training, validation) = spec.Split(SplitRatio.Default, seed: 1);
        Assert.Equal([15, 13], training.CountPerClass);
        Assert.Equal([4, 3], validation.CountPerClass);
    }

    [Fact]
    public void Class_max_takes_higher_priority_datasets_first()
    {
        var (main, extra) = TwoDatasets();
        var config = WriteConfig($",2:{extra},1:{main}\nMesodinium_major,1,1\nStrombidium-like,0,1\n");
        // 14 from main (priority 1) fit under 17; the 3 left are sampled from extra's 5.
        var spec = DatasetSpec.FromSource(config, new DatasetOptions(ClassMax: 17, Seed: 4));
        var meso = spec.Images.Where(i => i.ClassIndex == 0).Select(i => i.Path).ToList();
        Assert.Equal(17, meso.Count);
        Assert.Equal(14, meso.Count(p => p.StartsWith(main, StringComparison.Ordinal)));
        Assert.Equal(3, meso.Count(p => p.StartsWith(extra, StringComparison.Ordinal)));
        Assert.Equal(["Mesodinium_major"], spec.Report.LimitedToClassMax);
        Assert.Equal(meso, DatasetSpec.FromSource(config, new DatasetOptions(ClassMax: 17, Seed: 4)).Images.Where(i => i.ClassIndex == 0).Select(i => i.Path));

        // Below the first level's size, only priority-1 images are taken.
        var small = DatasetSpec.FromSource(config, new DatasetOptions(ClassMax: 10, Seed: 4));
        Assert.All(small.Images, i => Assert.StartsWith(main, i.Path, StringComparison.Ordinal));
    }

    [Fact]
    public void A_class_config_applies_on_top_of_a_dataset_config()
    {
        var (main, extra) = TwoDatasets();
        var config = WriteConfig($",{main},{extra}\nMesodinium_major,1,1\nStrombidium-like,1,0\nOther,0,1\n");
        var classConfig = ClassConfig.Parse("c,merge\nMesodinium_major,ciliate\nStrombidium-like,ciliate\nOther,0\n", "merge");
        var spec = DatasetSpec.FromSource(config, new DatasetOptions(ClassConfig: classConfig));
        Assert.Equal(["ciliate"], spec.Classes);
        Assert.Equal([35], spec.CountPerClass);
    }

    [Fact]
    public void Relative_folders_resolve_against_the_working_directory_then_the_csv_folder()
    {
        TwoDatasets();
        var config = WriteConfig(",main,extra\nMesodinium_major,1,1\n");
        Assert.Equal([19], DatasetSpec.FromSource(config).CountPerClass);

        var missing = WriteConfig(",main,nowhere\nMesodinium_major,1,1\n");
        var error = Assert.Throws<DirectoryNotFoundException>(() => DatasetSpec.FromSource(missing));
        Assert.Contains("nowhere", error.Message);
        Assert.Contains(Path.Combine(_root, "nowhere"), error.Message);
    }

    [Fact]
    public void Taking_a_class_folder_a_dataset_lacks_is_an_error_naming_both()
    {
        var (main, extra) = TwoDatasets();
        var config = WriteConfig($",{main},{extra}\nStrombidium-like,1,1\n");
        var error = Assert.Throws<InvalidDataException>(() => DatasetSpec.FromSource(config));
        Assert.Contains("\"Strombidium-like\"", error.Message);
        Assert.Contains(extra, error.Message);
        Assert.Contains("write 0", error.Message);
    }

    [Fact]
    public void Make_writes_presence_flags_that_read_back_as_the_same_datasets()
    {
        var (main, extra) = TwoDatasets();
        var text = DatasetConfig.Make([
            (main, DatasetSpec.ListClassFolders(main).Keys.ToList()),
            (extra, DatasetSpec.ListClassFolders(extra).Keys.ToList()),
        ]);
        Assert.Equal($",1:{main},2:{extra}\nMesodinium_major,1,1\nOther,0,1\nStrombidium-like,1,0\n", text);
        var spec = DatasetSpec.FromSource(WriteConfig(text));
        Assert.Equal(["Mesodinium_major", "Other", "Strombidium-like"], spec.Classes);
        Assert.Equal([19, 3, 16], spec.CountPerClass);
    }
}
