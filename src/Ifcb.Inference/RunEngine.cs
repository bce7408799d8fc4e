using System.Diagnostics;
using System.Globalization;
using Ifcb.Data.Bins;
using Ifcb.Data.Imaging;
using Ifcb.Inference.Outputs;
using Ifcb.Models.Checkpoints;
using Ifcb.Platform;
using static TorchSharp.torch;

namespace Ifcb.Inference;

/// <summary>
/// neuston's RUN: classifies bins or images with one trained model and writes result files per bin (or image group);
/// a bin run also writes its summary table, <c>run-summary.csv</c> and <c>.png</c> (see <see cref="BinSummaryTable"/>).
/// A bin that is corrupt, truncated, empty or unreadable is reported in <see cref="RunSummary.Failed"/> and the run goes
/// on with the others; files under SRC that are not bins are listed in <see cref="RunSummary.NotInputs"/>.
/// Differences from neuston, on purpose: image runs apply the model's img_norm (neuston forgets it); bins in any folder
/// are found (pyifcb skips unlisted folder names silently); bins are processed in ordinal path order (neuston: reverse);
/// <c>--clobber</c> also applies to image outputs; <c>.h5</c> holds float32/int32 (see <see cref="Hdf5ResultWriter"/>).
/// Every result file also names the run, the platform version and the model (<see cref="RunProvenance"/>) and gives each
/// row's thresholded class beside its winner (<see cref="ClassThresholds"/>: the request's, else the checkpoint's).
/// Not thread-safe; use one engine per thread.
/// </summary>
public sealed class RunEngine
{
    private readonly LoadedCheckpoint _checkpoint;
    private readonly Device? _device;

    /// <param name="checkpoint">The model to run; it is switched to eval mode and moved to <paramref name="device"/>.</param>
    /// <param name="device">Where to run the model; null = CPU.</param>
    public RunEngine(LoadedCheckpoint checkpoint, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        _checkpoint = checkpoint;
        _device = device;
    }

    public ModelHparams Hparams => _checkpoint.Hparams;

    /// <summary>The run's timestamp as written into result files: UTC, ISO 8601 to the second.</summary>
    public static string FormatTimestamp(DateTimeOffset timestamp) =>
        timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="request"/> to the end (or until cancelled) and says what was done.</summary>
    /// <exception cref="IfcbException">InvalidArgument: batch size over <see cref="Limits.MaxBatch"/> or, at the model's resize,
    /// over <see cref="Limits.MaxBatchTensorBytes"/>; too many or too long output patterns.</exception>
    /// <exception cref="ArgumentException">Invalid options: output pattern (unknown placeholder, absolute, '..') or extension,
    /// a run or model id that is not a plain folder name, SRC that is not a bin, the onnx engine on a GPU, the v4 format for
    /// images, thresholds that are not one per class.</exception>
    /// <exception cref="FileNotFoundException">SRC does not exist.</exception>
    /// <exception cref="OperationCanceledException">
    /// <paramref name="cancellationToken"/> fired; it is observed between bins (or image groups) and between batches.
    /// Finished outputs stay.
    /// </exception>
    public RunSummary Run(RunRequest request, IProgress<RunProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.Source);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.RunId);
        Limits.CheckBatch(request.BatchSize, Hparams.Resize);
        var v4 = request.OutfileFormat == OutfileFormat.V4;
        if (v4 && request.InputType == RunInputType.Image)
            throw new ArgumentException("--outfile-format v4 is pyifcb's per-bin CSV; image runs write v3 outputs.", nameof(request));
        var patterns = request.OutputFiles is { Count: > 0 } files
            ? files
            : [request.InputType == RunInputType.Image ? RunRequest.DefaultImageOutputFile
                : v4 ? RunRequest.DefaultV4BinOutputFile : RunRequest.DefaultBinOutputFile];
        OutputPattern.ValidateAll(patterns, request.InputType);
        if (request.Thresholds is { } thresholds && thresholds.Values.Count != Hparams.Classes.Count)
            throw new ArgumentException($"There are {thresholds.Values.Count} thresholds for the model's {Hparams.Classes.Count} classes.",
                nameof(request));
        var timestamp = request.Timestamp ?? DateTimeOffset.UtcNow;
        var outputDirectory = Path.GetFullPath(OutputPattern.ExpandDirectory(
            request.OutputDirectory ?? (v4 ? RunRequest.DefaultV4OutputDirectory : RunRequest.DefaultOutputDirectory),
            request.RunId, Hparams.ModelId, timestamp));
        using var classifier = new BatchClassifier(_checkpoint, request.BatchSize, _device, request.Engine);
        var run = new RunState(request, patterns, outputDirectory, FormatTimestamp(timestamp), progress, classifier, cancellationToken)
        {
            Provenance = new RunProvenance(request.RunId, RunProvenance.CurrentPlatformVersion, request.ModelProvenance),
            Thresholds = request.Thresholds ?? ClassThresholds.FromCheckpoint(Hparams),
        };
        return request.InputType == RunInputType.Bin ? RunBins(run) : RunImages(run);
    }

    private RunSummary RunBins(RunState run)
    {
        var inputs = RunInputs.ResolveBins(run.Request.Source);
        run.Failed.AddRange(inputs.Failures);
        var bins = new List<BinInput>();
        foreach (var bin in inputs.Items)
        {
            if (run.Request.Filter?.Accepts(bin.FilterId) == false)
                run.FilteredOut.Add(bin.FilterId);
            else
                bins.Add(bin);
        }
        run.ItemsTotal = bins.Count;
        var binSummary = new BinSummaryTable(Hparams.Classes);
        foreach (var bin in bins)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var outputs = run.Patterns
                .Select(p => OutputPattern.Resolve(run.OutputDirectory, OutputPattern.ExpandForBin(p, bin.Id, bin.RelativeDirectory)))
                .ToList();
            if (!run.Request.Clobber && outputs.All(File.Exists))
            {
                run.SkippedExisting.Add(bin.FilterId);
                binSummary.AddFromOutputs(bin.Id, bin.BasePath, outputs);
                run.Report(null, null);
                continue;
            }
            try
            {
                var rois = RawBin.Open(bin.BasePath).ReadImages(stitchV1: true);
                if (rois.Count == 0)
                    throw new InvalidDataException($"Bin {bin.Id.Lid} has no ROIs (every ADC row has width 0); nothing to classify.");
                var scores = run.Classifier.Classify([.. rois.Select(r => DecodedImage.FromGray(r.Image))], run.CancellationToken);
                var output = run.Stamp(ClassificationOutput.ForBin(Hparams.ModelId, run.Timestamp, Hparams.Classes, scores, bin.Id.Lid,
                    [.. rois.Select(r => r.TargetNumber)]));
                foreach (var path in outputs)
                    ResultFile.Write(path, output, run.Request.OutfileFormat);
                run.ImagesClassified += rois.Count;
                binSummary.Add(bin.Id, bin.BasePath, scores.Classes, output.ThresholdedClasses());
                var result = new RunItemResult(bin.Id.Lid, bin.BasePath, rois.Count, outputs);
                run.Completed.Add(result);
                run.Report(result, null);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                var failure = new RunItemFailure(bin.Id.Lid, bin.BasePath, e.Message);
                run.Failed.Add(failure);
                run.Report(null, failure);
            }
        }
        var summaryFiles = binSummary.WriteFiles(run.OutputDirectory, $"{run.Request.RunId} ({Hparams.ModelId})");
        return run.Summary(Hparams.ModelId, inputs.NotInputs) with { BinSummary = binSummary, BinSummaryFiles = summaryFiles };
    }

    private RunSummary RunImages(RunState run)
    {
        var grouped = run.Patterns.Count(OutputPattern.UsesInputSubdirs);
        if (grouped != 0 && grouped != run.Patterns.Count)
            throw new ArgumentException(
                "For images, either every --outfile uses {INPUT_SUBDIRS} (one file per folder) or none does (one file for all images).",
                nameof(run));
        var inputs = RunInputs.ResolveImages(run.Request.Source);
        var images = new List<ImageInput>();
        foreach (var image in inputs.Items)
        {
            if (run.Request.Filter?.Accepts(image.RelativePath) == false)
                run.FilteredOut.Add(image.RelativePath);
            else
                images.Add(image);
        }
        // neuston: one file with full paths, or with {INPUT_SUBDIRS} one file per folder holding base names.
        var groups = images
            .GroupBy(i => grouped > 0 ? i.RelativeDirectory : "", StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToList();
        run.ItemsTotal = groups.Count;
        foreach (var group in groups)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var outputs = run.Patterns
                .Select(p => OutputPattern.Resolve(run.OutputDirectory, OutputPattern.ExpandForImages(p, group.Key)))
                .ToList();
            var groupSource = group.Key.Length == 0 ? run.Request.Source : Path.Combine(run.Request.Source, group.Key);
            if (!run.Request.Clobber && outputs.All(File.Exists))
            {
                run.SkippedExisting.Add(groupSource);
                run.Report(null, null);
                continue;
            }
            var (names, scores) = ClassifyImages(run, [.. group], grouped > 0);
            if (names.Count == 0)
            {
                var failure = new RunItemFailure(group.Key, groupSource, "No image in this group could be decoded; nothing to classify.");
                run.Failed.Add(failure);
                run.Report(null, failure);
                continue;
            }
            try
            {
                var output = run.Stamp(ClassificationOutput.ForImages(Hparams.ModelId, run.Timestamp, Hparams.Classes, scores, names));
                foreach (var path in outputs)
                    ResultFile.Write(path, output);
                run.ImagesClassified += names.Count;
                var result = new RunItemResult(group.Key, groupSource, names.Count, outputs);
                run.Completed.Add(result);
                run.Report(result, null);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                var failure = new RunItemFailure(group.Key, groupSource, e.Message);
                run.Failed.Add(failure);
                run.Report(null, failure);
            }
        }
        return run.Summary(Hparams.ModelId, inputs.NotInputs);
    }

    /// <summary>
    /// Decodes and classifies a group a few batches at a time, so a folder of 100k images never sits decoded in memory.
    /// Undecodable images are recorded as failures and left out.
    /// </summary>
    private static (List<string> Names, ClassScores Scores) ClassifyImages(RunState run, IReadOnlyList<ImageInput> images, bool baseNames)
    {
        var names = new List<string>();
        var scores = new List<float>();
        var classes = new List<int>();
        // BatchSize is at most Limits.MaxBatch, so the step cannot overflow (it once did: --batch 536870912 spun forever).
        var step = checked(run.Classifier.BatchSize * 4);
        for (var start = 0; start < images.Count; start += step)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var slice = Enumerable.Range(start, Math.Min(step, images.Count - start)).Select(i => images[i]).ToList();
            var decoded = new DecodedImage?[slice.Count];
            var errors = new string?[slice.Count];
            Parallel.For(0, slice.Count, new ParallelOptions { CancellationToken = run.CancellationToken }, i =>
            {
                try
                {
                    decoded[i] = ImageDecoder.DecodeFile(slice[i].FullPath);
                }
                catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
                {
                    errors[i] = e.Message;
                }
            });
            var good = new List<DecodedImage>();
            for (var i = 0; i < slice.Count; i++)
            {
                if (decoded[i] is { } image)
                {
                    good.Add(image);
                    names.Add(baseNames ? Path.GetFileName(slice[i].FullPath) : slice[i].FullPath);
                }
                else
                {
                    run.Failed.Add(new RunItemFailure(slice[i].RelativePath, slice[i].FullPath, errors[i]!));
                }
            }
            var batch = run.Classifier.Classify(good, run.CancellationToken);
            scores.AddRange(batch.Scores);
            classes.AddRange(batch.Classes);
        }
        return (names, new ClassScores(names.Count, run.Classifier.NumClasses, [.. scores], [.. classes]));
    }

    /// <summary>The mutable bookkeeping of one run.</summary>
    private sealed class RunState(
        RunRequest request,
        IReadOnlyList<string> patterns,
        string outputDirectory,
        string timestamp,
        IProgress<RunProgress>? progress,
        BatchClassifier classifier,
        CancellationToken cancellationToken)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _itemsDone;

        public RunRequest Request { get; } = request;
        public IReadOnlyList<string> Patterns { get; } = patterns;
        public string OutputDirectory { get; } = outputDirectory;
        public string Timestamp { get; } = timestamp;
        public BatchClassifier Classifier { get; } = classifier;
        public required RunProvenance Provenance { get; init; }
        public required ClassThresholds Thresholds { get; init; }

        /// <summary>The run's provenance and thresholds on one result.</summary>
        public ClassificationOutput Stamp(ClassificationOutput output) => output with { Provenance = Provenance, Thresholds = Thresholds };
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public int ItemsTotal { get; set; }
        public long ImagesClassified { get; set; }
        public List<RunItemResult> Completed { get; } = [];
        public List<string> SkippedExisting { get; } = [];
        public List<RunItemFailure> Failed { get; } = [];
        public List<string> FilteredOut { get; } = [];

        public void Report(RunItemResult? completed, RunItemFailure? failed)
        {
            _itemsDone++;
            var seconds = _clock.Elapsed.TotalSeconds;
            progress?.Report(new RunProgress(_itemsDone, ItemsTotal, ImagesClassified,
                seconds > 0 ? ImagesClassified / seconds : 0, completed, failed));
        }

        public RunSummary Summary(string modelId, IReadOnlyList<SkippedBinFile> notInputs) =>
            new(Request.RunId, modelId, OutputDirectory, Completed, SkippedExisting, Failed, notInputs, FilteredOut,
                ImagesClassified, _clock.Elapsed);
    }
}
