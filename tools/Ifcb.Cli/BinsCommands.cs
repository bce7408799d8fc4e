using System.CommandLine;
using Ifcb.Data.Bins;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary><c>ifcb bins extract SRC OUT</c>: raw IFCB bins to PNGs, reporting every bin it could not use and why.</summary>
public static class BinsCommands
{
    public sealed record ExtractedBin(string Bin, string Folder, int Images);

    public sealed record SkippedBin(string Path, string Reason);

    public sealed record ExtractReport(IReadOnlyList<ExtractedBin> Bins, IReadOnlyList<SkippedBin> Skipped, int Images);

    public static Command Build(CliContext context)
    {
        var command = new Command("bins", "Raw IFCB bins (.adc/.roi/.hdr).");
        command.Subcommands.Add(Extract(context));
        return command;
    }

    private static Command Extract(CliContext context)
    {
        var source = new Argument<string>("SRC") { Description = "Folder searched (recursively) for bins." };
        var output = new Argument<string>("OUT") { Description = "Output folder: OUT/{bin}/{bin}_{target}.png." };
        var flat = new Option<bool>("--flat") { Description = "Write every PNG directly into OUT instead of one folder per bin." };
        var noStitch = new Option<bool>("--no-stitch") { Description = "Do not stitch v1 (IFCB1-6) ROI pairs." };
        var command = new Command("extract", "Extract every ROI image of the bins under SRC as grayscale PNGs.")
        {
            source, output, flat, noStitch,
        };
        command.SetHandler(context, (parse, ct) =>
        {
            var report = ExtractAll(parse.GetValue(source)!, parse.GetValue(output)!, parse.GetValue(flat), !parse.GetValue(noStitch), ct);
            foreach (var skipped in report.Skipped)
                context.Warn($"skipped {skipped.Path}: {skipped.Reason}");
            if (parse.GetValue(GlobalOptions.Json))
                context.WriteJson(report);
            else
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumns("bin", "images", "folder");
                foreach (var bin in report.Bins)
                    table.AddRow(Markup.Escape(bin.Bin), bin.Images.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        Markup.Escape(bin.Folder));
                context.Console.Write(table);
                context.Console.MarkupLine($"{report.Images} images from {report.Bins.Count} bins; {report.Skipped.Count} skipped.");
            }
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    /// <summary>Scans, opens and exports; a bin that fails to open or decode is skipped with its reason, never fatal.</summary>
    public static ExtractReport ExtractAll(string source, string output, bool flat, bool stitchV1, CancellationToken cancellationToken)
    {
        var scan = BinDirectory.Scan(source);
        var skipped = scan.Skipped.Select(s => new SkippedBin(s.Path, s.Reason)).ToList();
        var extracted = new List<ExtractedBin>();
        foreach (var location in scan.Bins)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var folder = flat ? output : Path.Combine(output, location.Id.Lid);
            try
            {
                var written = RoiExporter.ExportPngs(location.Open(), folder, stitchV1);
                extracted.Add(new ExtractedBin(location.Id.Lid, Path.GetFullPath(folder), written.Count));
            }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or IOException)
            {
                skipped.Add(new SkippedBin(location.BasePath, e.Message));
            }
        }
        return new ExtractReport(extracted, skipped, extracted.Sum(b => b.Images));
    }
}
