using System.Globalization;
using Ifcb.Inference;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// What <c>ifcb run</c> prints after a bin run, from its summary table: bins, ROIs, mL analysed, and the top classes with
/// their ROI counts and mean concentrations (Σ count ÷ Σ ml_analyzed over bins with ml_analyzed); each bin without a
/// usable ml_analyzed is a warning saying why, since its concentrations are empty.
/// </summary>
public static class RunTotalsView
{
    public static void Render(CliContext context, RunSummary summary)
    {
        if (summary.BinSummary is not { } table)
            return;
        foreach (var row in table.Rows.Where(r => !r.MlAnalyzed.IsUsable))
            context.Warn(row.MlAnalyzed.Reason is { } reason
                ? $"{row.BinId}: no ml_analyzed ({reason}); its concentrations are empty"
                : string.Create(CultureInfo.InvariantCulture,
                    $"{row.BinId}: ml_analyzed is {row.MlAnalyzed.Milliliters:G6} mL, not positive; its concentrations are empty"));
        foreach (var leftOut in table.LeftOut)
            context.Warn($"{leftOut.BinId}: not in the run summary: {leftOut.Reason}");
        var totals = table.Totals();
        var left = totals.BinsWithoutMl > 0 ? $" ({totals.BinsWithoutMl} without ml_analyzed, left out of mL and cells/mL)" : "";
        context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Totals: {totals.Bins} bins, {totals.Rois} ROIs, {totals.TotalMilliliters:G4} mL analysed{left}")));
        foreach (var top in totals.TopClasses)
        {
            var perMl = top.MeanConcentration is { } mean ? mean.ToString("G4", CultureInfo.InvariantCulture) : "-";
            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"  {top.Class}: {top.Count} ROIs, {perMl} cells/mL")));
        }
        if (summary.BinSummaryFiles.Count > 0)
            context.Console.MarkupLine(Markup.Escape($"Summary: {string.Join(", ", summary.BinSummaryFiles)}"));
    }
}
