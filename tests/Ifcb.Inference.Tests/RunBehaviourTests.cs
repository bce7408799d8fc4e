namespace Ifcb.Inference.Tests;

/// <summary>Broken bins, --filter, --clobber, list files, progress and cancellation.</summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class RunBehaviourTests(ReferenceModelFixture fixture)
{
    [Fact]
    public void CorruptBinsAreReportedPerBinAndTheRunGoesOn()
    {
        var outdir = fixture.NewFolder();
        var progress = new List<RunProgress>();
        var summary = new RunEngine(fixture.Plain).Run(
            new RunRequest(ReferenceModelFixture.BinsFolder, "broken") { OutputDirectory = outdir, OutputFiles = ["{INPUT_SUBDIRS}/{BIN_ID}.json"] },
            new SynchronousProgress(progress.Add));

        Assert.Equal(["IFCB5_2012_028_081515", "D20130526T095207_IFCB013"], summary.Completed.Select(c => c.Id));
        Assert.Equal([5, 19], summary.Completed.Select(c => c.ImageCount));
        Assert.True(File.Exists(Path.Combine(outdir, "white", "D2013", "D201305", "D20130526", "D20130526T095207_IFCB013.json")));
        Assert.Equal(24, summary.ImagesClassified);

        var failed = summary.Failed.ToDictionary(f => f.SourcePath.Replace(ReferenceModelFixture.BinsFolder, "", StringComparison.Ordinal), f => f.Reason);
        Assert.Equal(
            ["/data/skip/IFCB5_2006_001_121212", "/empty/D20150411T205456_IFCB012", "/empty/IFCB5_2017_001_033645",
             "/invalid/D20130101T101010_IFCB099", "/partial/IFCB5_2012_028_081515"],
            failed.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("missing .roi", failed["/partial/IFCB5_2012_028_081515"], StringComparison.Ordinal);
        Assert.All(failed.Values, reason => Assert.False(string.IsNullOrWhiteSpace(reason)));
        var decoy = Assert.Single(summary.NotInputs);
        Assert.EndsWith("decoy.adc", decoy.Path, StringComparison.Ordinal);

        // Progress counts every bin that was tried, failed ones included, and carries the completed results.
        Assert.Equal(Enumerable.Range(1, progress.Count), progress.Select(p => p.ItemsDone));
        Assert.Equal(summary.Completed, progress.Where(p => p.Completed is not null).Select(p => p.Completed!));
        Assert.True(progress[^1].ImagesPerSecond > 0);
    }

    [Fact]
    public void FilterInAndOutMatchSubstringsOfFolderAndBinId()
    {
        var keywords = Path.Combine(fixture.NewFolder(), "keywords.txt");
        File.WriteAllText(keywords, "D2013\n\n  white/D2013  \n");
        var engine = new RunEngine(fixture.Plain);
        var filterIn = engine.Run(new RunRequest(ReferenceModelFixture.BinsFolder, "in")
        {
            OutputDirectory = fixture.NewFolder(),
            Filter = RunFilter.Parse("IN", [keywords]),
        });
        Assert.Equal(["D20130526T095207_IFCB013"], filterIn.Completed.Select(c => c.Id));
        Assert.Contains("data/2012/IFCB5_2012_028/IFCB5_2012_028_081515", filterIn.FilteredOut);

        var filterOut = engine.Run(new RunRequest(ReferenceModelFixture.BinsFolder, "out")
        {
            OutputDirectory = fixture.NewFolder(),
            Filter = RunFilter.Parse("out", ["white", "IFCB5_2012"]),
        });
        Assert.Empty(filterOut.Completed);
        Assert.Equal(["white/D2013/D201305/D20130526/D20130526T095207_IFCB013", "data/2012/IFCB5_2012_028/IFCB5_2012_028_081515"],
            filterOut.FilteredOut.Order(StringComparer.Ordinal).Reverse());

        Assert.Throws<ArgumentException>(() => RunFilter.Parse("SOME", ["x"]));
        Assert.Throws<ArgumentException>(() => RunFilter.Parse("IN", []));
    }

    [Fact]
    public void ExistingOutputsAreSkippedUnlessClobber()
    {
        var outdir = fixture.NewFolder();
        var engine = new RunEngine(fixture.Plain);
        RunRequest Request(bool clobber) => new(ReferenceModelFixture.WhiteBin, "clobber")
        {
            OutputDirectory = outdir,
            OutputFiles = ["{BIN_ID}.json", "{BIN_ID}.csv"],
            Clobber = clobber,
        };
        var first = engine.Run(Request(clobber: false));
        var written = Assert.Single(first.Completed).OutputFiles;
        var firstTimes = written.Select(File.GetLastWriteTimeUtc).ToList();

        var second = engine.Run(Request(clobber: false));
        Assert.Empty(second.Completed);
        Assert.Equal(["D20130526T095207_IFCB013"], second.SkippedExisting);
        Assert.Equal(firstTimes, written.Select(File.GetLastWriteTimeUtc));

        // One output missing: the bin is redone even without clobber.
        File.Delete(written[1]);
        Assert.Single(engine.Run(Request(clobber: false)).Completed);

        Thread.Sleep(20);
        var clobbered = engine.Run(Request(clobber: true));
        Assert.Single(clobbered.Completed);
        Assert.True(File.GetLastWriteTimeUtc(written[0]) > firstTimes[0]);
    }

    [Fact]
    public void ListFilesNameBinsAndImagesRelativeToTheList()
    {
        var folder = fixture.NewFolder();
        var binList = Path.Combine(folder, "bins.txt");
        File.WriteAllLines(binList, [
            "# bins to classify",
            ReferenceModelFixture.WhiteBin + ".adc",
            Path.Combine(ReferenceModelFixture.BinsFolder, "partial", "IFCB5_2012_028_081515"),
            Path.Combine(folder, "not_a_bin"),
        ]);
        var bins = new RunEngine(fixture.Plain).Run(new RunRequest(binList, "list") { OutputDirectory = Path.Combine(folder, "out") });
        Assert.Equal(["D20130526T095207_IFCB013"], bins.Completed.Select(c => c.Id));
        Assert.Equal(["IFCB5_2012_028_081515", "not_a_bin"], bins.Failed.Select(f => f.Id).Order(StringComparer.Ordinal));

        var imageList = Path.Combine(folder, "images.txt");
        File.WriteAllLines(imageList, [fixture.SampleImages[0], fixture.SampleImages[^1], Path.Combine(folder, "bins.txt.png")]);
        File.WriteAllText(Path.Combine(folder, "bins.txt.png"), "not a png");
        var images = new RunEngine(fixture.Plain).Run(new RunRequest(imageList, "list")
        {
            InputType = RunInputType.Image,
            OutputDirectory = Path.Combine(folder, "out-img"),
        });
        Assert.Equal(2, Assert.Single(images.Completed).ImageCount);
        Assert.EndsWith("bins.txt.png", Assert.Single(images.Failed).SourcePath, StringComparison.Ordinal);
    }

    [Fact]
    public void CancellationStopsTheRun()
    {
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(ReferenceModelFixture.WhiteBin, "cancel") { OutputDirectory = fixture.NewFolder() }, null, cancellation.Token));
    }

    private sealed class SynchronousProgress(Action<RunProgress> report) : IProgress<RunProgress>
    {
        public void Report(RunProgress value) => report(value);
    }
}
