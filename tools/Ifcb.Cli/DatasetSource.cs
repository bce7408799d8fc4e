using Ifcb.Client;
using Ifcb.Protos;
using Spectre.Console;

namespace Ifcb.Cli;

/// <summary>
/// neuston's SRC on the platform, shared by <c>dataset upload</c>, <c>train</c> and <c>norm</c>: a local class folder or
/// dataset-config CSV is uploaded (with a progress bar), anything else names an existing dataset.
/// </summary>
public static class DatasetSource
{
    /// <summary>
    /// Uploads <paramref name="folder"/> (a class folder, or a dataset-config CSV whose merge becomes one dataset) as
    /// dataset <paramref name="name"/> (default: the folder or CSV file name), with a progress bar.
    /// </summary>
    public static async Task<DatasetInfo> UploadAsync(PlatformConnection platform, CliContext context, string folder, string? name,
        bool quiet, CancellationToken cancellationToken)
    {
        var isConfig = Ifcb.Data.Datasets.DatasetConfig.IsConfigFile(folder);
        var datasetName = string.IsNullOrWhiteSpace(name)
            ? DatasetNames.FromFolder(isConfig ? Path.GetFileNameWithoutExtension(folder) : folder)
            : name;
        var files = isConfig
            ? DatasetUpload.FilesOfConfig(folder)
            : null;
        if (isConfig && !quiet)
            context.Info($"dataset-config {folder}: uploading its merge as dataset {datasetName} " +
                "(priorities only order --class-max in local mode)");
        Task<DatasetInfo> Send(IProgress<(int Done, int Total)>? progress) => files is null
            ? DatasetUpload.UploadFolderAsync(platform.Datasets, datasetName, folder, platform.Auth, progress, cancellationToken)
            : DatasetUpload.UploadFilesAsync(platform.Datasets, datasetName, files, platform.Auth, progress, cancellationToken);
        if (quiet)
            return await Send(null);
        return await context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask($"upload {Markup.Escape(datasetName)}");
                var sent = new Progress<(int Done, int Total)>(p =>
                {
                    bar.MaxValue = p.Total;
                    bar.Value = p.Done;
                });
                var info = await Send(sent);
                bar.Value = bar.MaxValue;
                return info;
            });
    }

    /// <summary>
    /// neuston's SRC on the platform: a local class folder or dataset-config CSV is uploaded (as <paramref name="name"/>
    /// or its file name); anything else names an existing dataset.
    /// </summary>
    public static async Task<DatasetInfo> ResolveAsync(PlatformConnection platform, CliContext context, string source, string? name,
        bool quiet, CancellationToken cancellationToken)
    {
        if (Directory.Exists(source) || Ifcb.Data.Datasets.DatasetConfig.IsConfigFile(source))
            return await UploadAsync(platform, context, source, name, quiet, cancellationToken);
        return await platform.Datasets.DescribeAsync(new DatasetRef { Name = source }, cancellationToken: cancellationToken);
    }
}
