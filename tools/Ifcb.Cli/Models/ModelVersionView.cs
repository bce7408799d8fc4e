using System.Globalization;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>How the <c>models</c> subcommands show registry records: field tables, a version's status and source.</summary>
public static class ModelVersionView
{
    /// <summary>A two-column field/value table without headers.</summary>
    /// <summary>One row per version: what <c>models versions</c> and <c>models search</c> list.</summary>
    public static Table List(IEnumerable<ModelVersion> versions)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("model", "version", "status", "arch", "aliases", "f1_weighted", "created", "source");
        foreach (var v in versions)
        {
            table.AddRow(Markup.Escape(v.Name), v.Version.ToString(CultureInfo.InvariantCulture), StatusName(v.Status),
                Markup.Escape(v.Metadata?.Arch ?? ""), Markup.Escape(string.Join(", ", v.Aliases.Select(a => "@" + a))),
                v.Metadata?.Metrics.TryGetValue("f1_weighted", out var f1) == true
                    ? f1.ToString("0.000", CultureInfo.InvariantCulture)
                    : "",
                v.CreatedAt, Markup.Escape(Source(v)));
        }
        return table;
    }

    public static Table Fields() => new Table().Border(TableBorder.Simple).HideHeaders().AddColumns("field", "value");

    public static void Render(IAnsiConsole console, ModelVersion v)
    {
        var table = Fields();
        table.AddRow("version", Markup.Escape($"{v.Name}/{v.Version}"));
        table.AddRow("status", StatusName(v.Status) + (v.StatusMessage.Length > 0 ? " — " + Markup.Escape(v.StatusMessage) : ""));
        table.AddRow("aliases", Markup.Escape(string.Join(", ", v.Aliases.Select(a => "@" + a))));
        if (v.Metadata is { } m)
        {
            table.AddRow("arch", Markup.Escape(m.Arch));
            table.AddRow("classes",
                Markup.Escape($"{m.Classes.Count}: {string.Join(", ", m.Classes.Take(10))}{(m.Classes.Count > 10 ? ", …" : "")}"));
            table.AddRow("resize", m.Resize.ToString(CultureInfo.InvariantCulture));
            table.AddRow("img_norm",
                m.ImgNorm is null ? "" : Markup.Escape($"{string.Join(',', m.ImgNorm.Mean)} {string.Join(',', m.ImgNorm.Std)}"));
            table.AddRow("metrics", Markup.Escape(string.Join(", ",
                m.Metrics.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key}={x.Value:0.####}"))));
            table.AddRow("tags", Markup.Escape(string.Join(", ",
                m.Tags.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key}={x.Value}"))));
        }
        table.AddRow("source", Markup.Escape(Source(v)));
        table.AddRow("checkpoint", $"{v.CheckpointSize} bytes, sha256 {v.CheckpointSha256}");
        table.AddRow("created", $"{v.CreatedAt} by {Markup.Escape(v.CreatedBy)}");
        console.Write(table);
    }

    /// <summary>Where a version came from: its training job, else its commit, else its idempotency key.</summary>
    public static string Source(ModelVersion v) =>
        v.Metadata is null ? "" :
        v.Metadata.SourceTrainingJob.Length > 0 ? "job " + v.Metadata.SourceTrainingJob :
        v.Metadata.SourceCommit.Length > 0 ? "commit " + v.Metadata.SourceCommit :
        v.IdempotencyKey;

    public static string StatusName(VersionStatus status) => status switch
    {
        VersionStatus.Pending => "pending",
        VersionStatus.Ready => "ready",
        VersionStatus.Failed => "failed",
        _ => "unspecified",
    };

    /// <summary>A model's aliases as <c>@alias→version</c>, sorted.</summary>
    public static string Aliases(RegisteredModel model) =>
        string.Join(", ", model.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"@{a.Key}→{a.Value}"));
}
