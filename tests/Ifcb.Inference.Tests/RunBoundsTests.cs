using System.Diagnostics;
using Ifcb.Platform;

namespace Ifcb.Inference.Tests;

/// <summary>What a hostile or mistyped RUN request can do: oversized batches, output patterns that leave the output folder,
/// crafted bins, and a run that must stop when cancelled.</summary>
[Collection(ReferenceModelCollection.Name)]
public sealed class RunBoundsTests(ReferenceModelFixture fixture)
{
    [Theory]
    [InlineData(RunInputType.Image)]
    [InlineData(RunInputType.Bin)]
    public async Task ABatchOverTheLimitIsRefusedUpFrontNamingTheLimit(RunInputType type)
    {
        // --batch 536870912: BatchSize * 4 overflowed to a negative step and the image loop spun forever, deaf to CancelRun.
        var outdir = fixture.NewFolder();
        var source = type == RunInputType.Image ? ReferenceModelFixture.SampleFolder : ReferenceModelFixture.WhiteBin;
        using var watchdog = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = Task.Run(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(source, "huge-batch") { InputType = type, OutputDirectory = outdir, BatchSize = 536870912 }, null, watchdog.Token));
        Assert.Same(run, await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))));
        var error = await Assert.ThrowsAsync<IfcbException>(() => run);
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(nameof(Limits.MaxBatch), error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outdir));

        // Within MaxBatch but over the tensor budget at the model's 224 px.
        var budget = Assert.Throws<IfcbException>(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(source, "big-batch") { InputType = type, OutputDirectory = outdir, BatchSize = 2048 }));
        Assert.Contains(nameof(Limits.MaxBatchTensorBytes), budget.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/tmp/ifcb-poc/{BIN_ID}.csv", "absolute")]
    [InlineData("../../x/{BIN_ID}.csv", "..")]
    [InlineData("out/../../{BIN_ID}.json", "..")]
    [InlineData("{INPUT_SUBDIRS}/../{BIN_ID}.json", "..")]
    [InlineData("..\\{BIN_ID}.json", "..")]
    public void OutputPatternsThatCouldLeaveTheOutputFolderAreRefused(string pattern, string reason)
    {
        var error = Assert.Throws<ArgumentException>(() => OutputPattern.Validate(pattern, RunInputType.Bin));
        Assert.Contains(pattern, error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);

        // The engine refuses it before writing anything, wherever it would have written.
        var outdir = fixture.NewFolder();
        Assert.Throws<ArgumentException>(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(ReferenceModelFixture.WhiteBin, "escape") { OutputDirectory = outdir, OutputFiles = [pattern] }));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outdir));
        Assert.False(File.Exists("/tmp/ifcb-poc/D20130526T095207_IFCB013.csv"));
    }

    [Fact]
    public void OutputPatternListsAreBounded()
    {
        var many = Enumerable.Range(0, Limits.MaxListItems + 1).Select(i => $"{i}/{{BIN_ID}}.json").ToList();
        var tooMany = Assert.Throws<IfcbException>(() => OutputPattern.ValidateAll(many, RunInputType.Bin));
        Assert.Contains(Limits.MaxListItems.ToString(System.Globalization.CultureInfo.InvariantCulture), tooMany.Message, StringComparison.Ordinal);
        var tooLong = Assert.Throws<IfcbException>(() => OutputPattern.ValidateAll([new string('a', Limits.MaxTextLength) + "/{BIN_ID}.json"], RunInputType.Bin));
        Assert.Contains(Limits.MaxTextLength.ToString(System.Globalization.CultureInfo.InvariantCulture), tooLong.Message, StringComparison.Ordinal);
        OutputPattern.ValidateAll(["{INPUT_SUBDIRS}/{BIN_ID}.json", "D{BIN_YEAR}/{BIN_ID}.h5"], RunInputType.Bin);
    }

    [Fact]
    public void AModelIdThatIsAPathCannotMoveTheOutputFolder()
    {
        // {MODEL_ID} comes from the checkpoint's hparams, i.e. from whoever wrote the file.
        var hostile = fixture.Plain with { Hparams = fixture.Plain.Hparams with { ModelId = "../../../escaped" } };
        var folder = fixture.NewFolder();
        var error = Assert.Throws<ArgumentException>(() => new RunEngine(hostile).Run(
            new RunRequest(ReferenceModelFixture.WhiteBin, "ids") { OutputDirectory = Path.Combine(folder, "{RUN_ID}", "{MODEL_ID}") }));
        Assert.Contains("{MODEL_ID}", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(ReferenceModelFixture.WhiteBin, "../up") { OutputDirectory = Path.Combine(folder, "{RUN_ID}") }));
        Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        Assert.False(Directory.Exists(Path.Combine(fixture.Root, "escaped")));
    }

    [Fact]
    public void CraftedBinsFailAloneAndTheRealBinNextToThemStillClassifies()
    {
        var source = fixture.NewFolder();
        var white = Path.GetFileName(ReferenceModelFixture.WhiteBin);
        CopyBin(ReferenceModelFixture.WhiteBin, Path.Combine(source, "good"), lines => { });
        // A ROI width of 2^31, and a start byte whose sum with the ROI size overflows a long.
        CopyBin(ReferenceModelFixture.WhiteBin, Path.Combine(source, "wide"), lines => lines[6] = ReplaceCell(lines[6], 15, "2147483648"));
        CopyBin(ReferenceModelFixture.WhiteBin, Path.Combine(source, "offset"), lines => lines[6] = ReplaceCell(lines[6], 17, "9223372036854775000"));

        var summary = new RunEngine(fixture.Plain).Run(new RunRequest(source, "crafted")
        {
            OutputDirectory = fixture.NewFolder(),
            OutputFiles = ["{INPUT_SUBDIRS}/{BIN_ID}.json"],
        });
        var completed = Assert.Single(summary.Completed);
        Assert.Equal(19, completed.ImageCount);
        Assert.EndsWith(Path.Combine("good", white), completed.SourcePath, StringComparison.Ordinal);
        var failed = summary.Failed.ToDictionary(f => Path.GetFileName(Path.GetDirectoryName(f.SourcePath)!), f => f.Reason);
        Assert.Equal(["offset", "wide"], failed.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("ROI 7 declares 2147483648×34 px", failed["wide"], StringComparison.Ordinal);
        Assert.Contains("ROI 7 starts past the end of the .roi file", failed["offset"], StringComparison.Ordinal);
    }

    [Fact]
    public void CancellingARunStopsItPromptlyBetweenBins()
    {
        var source = fixture.NewFolder();
        for (var i = 0; i < 20; i++)
            CopyBin(ReferenceModelFixture.WhiteBin, Path.Combine(source, $"copy{i:00}"), lines => { });
        using var cancellation = new CancellationTokenSource();
        var reports = 0;
        var clock = new Stopwatch();
        var error = Record.Exception(() => new RunEngine(fixture.Plain).Run(
            new RunRequest(source, "cancelled") { OutputDirectory = fixture.NewFolder(), OutputFiles = ["{INPUT_SUBDIRS}/{BIN_ID}.json"], BatchSize = 4 },
            new Synchronous(_ =>
            {
                if (++reports == 2)
                {
                    clock.Start();
                    cancellation.Cancel();
                }
            }),
            cancellation.Token));
        clock.Stop();
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.Equal(2, reports);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the run went on for {clock.Elapsed} after it was cancelled");
    }

    private static void CopyBin(string bin, string folder, Action<List<string>> edit)
    {
        Directory.CreateDirectory(folder);
        var stem = Path.Combine(folder, Path.GetFileName(bin));
        var lines = File.ReadAllLines(bin + ".adc").ToList();
        edit(lines);
        File.WriteAllLines(stem + ".adc", lines);
        File.Copy(bin + ".roi", stem + ".roi");
    }

    private static string ReplaceCell(string row, int column, string value)
    {
        var cells = row.Split(',');
        cells[column] = value;
        return string.Join(',', cells);
    }

    private sealed class Synchronous(Action<RunProgress> report) : IProgress<RunProgress>
    {
        public void Report(RunProgress value) => report(value);
    }
}
