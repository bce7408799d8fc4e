using System.Diagnostics;
using System.Globalization;
using Ifcb.Data.Datasets;
using Ifcb.Data.Imaging;
using Ifcb.Data.Loading;
using Ifcb.NormStats.Engine;

// Usage: dotnet run -c Release --project bench/Ifcb.Data.Bench [-- --images N | --10k] [--threads T] [--no-python]
var imageCount = 2000;
var threads = Environment.ProcessorCount;
var runPython = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--images": imageCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--10k": imageCount = 10_000; break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--no-python": runPython = false; break;
        default:
            Console.Error.WriteLine($"Unknown argument {args[i]}; use --images N, --10k, --threads T, --no-python.");
            return 2;
    }
}

var sampleDir = FindTrainingSample();
var sample = DatasetSpec.FromFolder(sampleDir).Images;
var images = Enumerable.Range(0, imageCount).Select(i => sample[i % sample.Count]).ToList();
Console.WriteLine($"{imageCount} images (the {sample.Count} sample PNGs repeated), {threads} threads, {Environment.ProcessorCount} cores");

// Warm up the decoder and JIT.
foreach (var image in sample)
    new ImagePreprocessor(new PreprocessOptions(224)).Process(ImageDecoder.DecodeFile(image.Path));

var decodeSingle = Rate(() => { foreach (var im in images) ImageDecoder.DecodeFile(im.Path); });
var decodeMulti = Rate(() => Parallel.ForEach(images, Threads(threads), im => ImageDecoder.DecodeFile(im.Path)));
Console.WriteLine($"decode only                 : {decodeSingle,8:F0} img/s (1 thread)  {decodeMulti,8:F0} img/s ({threads} threads)");

var results = new Dictionary<int, double>();
foreach (var size in new[] { 224, 299 })
{
    var pre = new ImagePreprocessor(new PreprocessOptions(size));
    var single = Rate(() =>
    {
        var buffer = new float[pre.Options.TensorLength];
        foreach (var im in images)
            pre.Process(ImageDecoder.DecodeFile(im.Path), false, null, buffer);
    });
    double DecodeResizeParallel() => Rate(() => Parallel.ForEach(images, Threads(threads), () => new float[pre.Options.TensorLength],
        (im, _, buffer) => { pre.Process(ImageDecoder.DecodeFile(im.Path), false, null, buffer); return buffer; }, _ => { }));
    var loader = new BatchLoader(images, LocalFileImageSource.Instance,
        new LoaderOptions(new PreprocessOptions(size), BatchSize: Ifcb.Contracts.Defaults.BatchSize, Shuffle: true, Seed: 1,
            DecodeWorkers: threads));
    // Epoch 0 warms the loader's batch-buffer pool, as in training. Then three rounds of (decode+resize on all threads,
    // one loader epoch), interleaved, and the medians are compared: single runs on this shared 2-core VM vary by ±20%.
    foreach (var batch in loader.ReadEpoch(0))
        batch.Dispose();
    var references = new List<double>();
    var epochRates = new List<double>();
    for (var epoch = 1; epoch <= 3; epoch++)
    {
        references.Add(DecodeResizeParallel());
        epochRates.Add(Rate(() =>
        {
            foreach (var batch in loader.ReadEpoch(epoch))
            {
                using (batch)
                    _ = batch.Images.shape;
            }
        }));
    }
    var multi = references.Order().ElementAt(1);
    var loaderRate = epochRates.Order().ElementAt(1);
    results[size] = multi;
    Console.WriteLine($"decode+resize S={size}        : {single,8:F0} img/s (1 thread)  {multi,8:F0} img/s ({threads} threads)  " +
        $"resize cost x{decodeMulti / multi:F2} of decode");
    Console.WriteLine($"loader S={size} (median ep.)  : {loaderRate,8:F0} img/s  = {loaderRate / multi:F2} x decode+resize, " +
        $"{loaderRate / decodeMulti:F2} x decode-only");
}

var calculator = new NormStatsCalculator(299, workers: threads);
NormStatsResult? exact = null;
NormStatsResult? neuston = null;
var exactRate = Rate(() => exact = calculator.ComputeExact(images));
var neustonRate = Rate(() => neuston = calculator.ComputeNeuston(images));
Console.WriteLine($"NormStats exact S=299       : {exactRate,8:F0} img/s  = {exactRate / results[299]:F2} x decode+resize   " +
    $"mean {exact!.Mean[0]:F7} std {exact.Std[0]:F7}");
Console.WriteLine($"NormStats neuston S=299     : {neustonRate,8:F0} img/s  = {neustonRate / results[299]:F2} x decode+resize   " +
    $"mean {neuston!.Mean[0]:F7} std {neuston.Std[0]:F7}");

if (runPython)
{
    var list = Path.GetTempFileName();
    try
    {
        File.WriteAllLines(list, images.Select(i => i.Path));
        var script = Path.Combine(AppContext.BaseDirectory, "calc_img_norm.py");
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, list, "--resize", "299", "--workers", threads.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.WriteLine($"python CALC_IMG_NORM failed: {stderr.Result}");
        }
        else
        {
            var fields = output.Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
            var seconds = double.Parse(fields["seconds"], CultureInfo.InvariantCulture);
            var pythonRate = imageCount / seconds;
            Console.WriteLine($"python neuston CALC_IMG_NORM: {pythonRate,8:F0} img/s ({threads} DataLoader workers)  " +
                $"mean {fields["mean"]} std {fields["std"]} (float32)");
            Console.WriteLine($"ratio NormStats/python      : exact x{exactRate / pythonRate:F2}, " +
                $"neuston mode x{neustonRate / pythonRate:F2}");
        }
    }
    finally
    {
        File.Delete(list);
    }
}
return 0;

double Rate(Action action)
{
    var sw = Stopwatch.StartNew();
    action();
    return imageCount / sw.Elapsed.TotalSeconds;
}

static ParallelOptions Threads(int threads) => new() { MaxDegreeOfParallelism = threads };

static string FindTrainingSample()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "testdata", "training-sample");
        if (Directory.Exists(candidate))
            return candidate;
    }
    throw new DirectoryNotFoundException($"No testdata/training-sample above {AppContext.BaseDirectory}.");
}
