using System.Globalization;
using System.Text;

namespace Ifcb.Data.Datasets;

/// <summary>One dataset column of a dataset-config: the dataset (a folder of class folders) and its priority (1 first).</summary>
public sealed record DatasetConfigColumn(string Source, int Priority);

/// <summary>One class row: the class folder name and, per column, the class its images go to (null: left out).</summary>
public sealed record DatasetConfigRow(string Class, IReadOnlyList<string?> Targets);

/// <summary>
/// What one dataset column (0-based <see cref="Column"/>) contributes: images per target class, and unlisted class
/// folders.
/// </summary>
public sealed record ColumnImages(
    int Column, IReadOnlyList<(string Target, IReadOnlyList<string> Images)> Taken, IReadOnlyList<string> Unlisted);

/// <summary>What <see cref="DatasetConfig.Collect"/> found: per class, its images grouped by priority level (first level first).</summary>
public sealed record TieredImages(IReadOnlyDictionary<string, IReadOnlyList<IReadOnlyList<string>>> PerClass, IReadOnlyList<string> Notes);

/// <summary>
/// neuston's dataset-config: SRC given as a CSV that merges several datasets. The header names the datasets, each
/// optionally prefixed with a priority (<c>2:/data/extra</c>); unprioritised columns come after the highest given
/// priority. Column 0 of every other row is a class folder name; each dataset's cell is <c>0</c> (leave that class of
/// that dataset out), <c>1</c> (take it as is) or a class name to put its images in (merging happens by name).
/// <para>
/// Differences from neuston, on purpose: <c>1.0</c>/<c>0.0</c> count as 1/0 and a blank cell is an error (pandas turned
/// blanks into "nan" classes); a <c>1</c> for a class folder the dataset lacks is an error rather than a crash or a
/// silently empty class; and priorities matter: when <c>--class-max</c> limits a class, it takes whole priority levels
/// first and samples only within the level that overflows — what neuston's code comments promise, whereas neuston's
/// current code samples across all levels alike.
/// </para>
/// </summary>
public sealed record DatasetConfig(IReadOnlyList<DatasetConfigColumn> Columns, IReadOnlyList<DatasetConfigRow> Rows)
{
    /// <summary>Whether neuston's SRC argument names a dataset-config (an existing <c>.csv</c> file) rather than a folder.</summary>
    public static bool IsConfigFile(string source) =>
        source.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) && File.Exists(source);

    /// <summary>Distinct priorities, first level first.</summary>
    public IReadOnlyList<int> PriorityLevels => Columns.Select(c => c.Priority).Distinct().Order().ToList();

    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Malformed (the message names the row and what to write instead).</exception>
    public static DatasetConfig Load(string csvPath)
    {
        if (!File.Exists(csvPath))
            throw new FileNotFoundException($"Dataset-config CSV {csvPath} does not exist.", csvPath);
        return Parse(File.ReadAllText(csvPath), csvPath);
    }

    /// <exception cref="InvalidDataException">Malformed (the message names the row and what to write instead).</exception>
    public static DatasetConfig Parse(string csvText, string sourceName = "dataset-config CSV")
    {
        ArgumentNullException.ThrowIfNull(csvText);
        var rows = Csv.Read(csvText).Where(r => r.Count > 1 || (r.Count == 1 && r[0].Trim().Length > 0)).ToList();
        if (rows.Count == 0)
            throw new InvalidDataException($"{sourceName} is empty; its header row names the datasets (\",[priority:]dataset,...\").");
        var header = rows[0];
        if (header.Count < 2)
            throw new InvalidDataException($"{sourceName} names no datasets; its header row should be \",[priority:]dataset,...\".");

        var explicitPriorities = new int?[header.Count - 1];
        var sources = new string[header.Count - 1];
        for (var c = 1; c < header.Count; c++)
        {
            var cell = header[c].Trim();
            var colon = cell.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && int.TryParse(cell[..colon], NumberStyles.Integer, CultureInfo.InvariantCulture, out var priority))
            {
                if (priority < 1)
                    throw new InvalidDataException(
                        $"{sourceName} column {c + 1} (\"{cell}\"): priorities start at 1 (first), got {priority}.");
                explicitPriorities[c - 1] = priority;
                cell = cell[(colon + 1)..].Trim();
            }
            if (cell.Length == 0)
                throw new InvalidDataException($"{sourceName} column {c + 1} has no dataset name in its header.");
            sources[c - 1] = cell;
        }
        var duplicate = sources.GroupBy(s => s, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidDataException($"{sourceName} lists dataset \"{duplicate.Key}\" twice; give each dataset one column.");
        var unprioritised = explicitPriorities.Max() is { } highest ? highest + 1 : 1;
        var columns = sources.Select((s, i) => new DatasetConfigColumn(s, explicitPriorities[i] ?? unprioritised)).ToList();

        var classRows = new List<DatasetConfigRow>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var r = 1; r < rows.Count; r++)
        {
            var row = rows[r];
            var className = row[0].Trim();
            if (className.Length == 0)
                throw new InvalidDataException($"{sourceName} row {r + 1} has no class name in its first cell.");
            if (!seen.Add(className))
                throw new InvalidDataException($"{sourceName} lists class \"{className}\" twice (row {r + 1}); give each class one row.");
            if (row.Count != header.Count)
                throw new InvalidDataException(
                    $"{sourceName} row {r + 1} ({className}) has {row.Count} cells; the header has {header.Count}.");
            var targets = new string?[columns.Count];
            for (var c = 0; c < columns.Count; c++)
            {
                var value = row[c + 1].Trim();
                targets[c] = value switch
                {
                    "" => throw new InvalidDataException(
                        $"{sourceName} row {r + 1} ({className}): the cell for {columns[c].Source} is blank; " +
                        "write 0 (leave out), 1 (take) or a class name."),
                    "0" or "0.0" => null,
                    "1" or "1.0" => className,
                    _ => value,
                };
            }
            classRows.Add(new DatasetConfigRow(className, targets));
        }
        return new DatasetConfig(columns, classRows);
    }

    /// <summary>
    /// Lists every dataset with <paramref name="listClassFolders"/> (class folder name → image paths) and groups the
    /// images by target class and priority level. Class folders a dataset has but the config does not list are left
    /// out and noted.
    /// </summary>
    /// <exception cref="InvalidDataException">A cell takes a class folder its dataset does not have.</exception>
    public TieredImages Collect(Func<string, IReadOnlyDictionary<string, IReadOnlyList<string>>> listClassFolders)
    {
        var levels = PriorityLevels.ToList();
        var perClass = new SortedDictionary<string, List<string>[]>(StringComparer.Ordinal);
        var notes = new List<string>();
        foreach (var column in ListColumns(listClassFolders))
        {
            var level = levels.IndexOf(Columns[column.Column].Priority);
            foreach (var (target, images) in column.Taken)
            {
                if (!perClass.TryGetValue(target, out var tiers))
                    perClass[target] = tiers = levels.Select(_ => new List<string>()).ToArray();
                tiers[level].AddRange(images);
            }
            if (column.Unlisted.Count > 0)
                notes.Add($"{Columns[column.Column].Source}: class folders not in the dataset-config, left out: " +
                    $"{string.Join(", ", column.Unlisted)}");
        }
        var result = perClass.ToDictionary(
            kv => kv.Key, kv => (IReadOnlyList<IReadOnlyList<string>>)kv.Value.Select(t => (IReadOnlyList<string>)t).ToList(),
            StringComparer.Ordinal);
        return new TieredImages(result, notes);
    }

    /// <summary>
    /// What each dataset column contributes, in column order: the (target class, images) of every class folder it
    /// takes, and the class folders it has that the config does not list.
    /// </summary>
    /// <exception cref="InvalidDataException">A cell takes a class folder its dataset does not have.</exception>
    public IReadOnlyList<ColumnImages> ListColumns(Func<string, IReadOnlyDictionary<string, IReadOnlyList<string>>> listClassFolders)
    {
        ArgumentNullException.ThrowIfNull(listClassFolders);
        var listed = Rows.Select(r => r.Class).ToHashSet(StringComparer.Ordinal);
        var result = new List<ColumnImages>(Columns.Count);
        for (var c = 0; c < Columns.Count; c++)
        {
            var column = Columns[c];
            var folders = listClassFolders(column.Source);
            var taken = new List<(string, IReadOnlyList<string>)>();
            foreach (var row in Rows)
            {
                if (row.Targets[c] is not { } target)
                    continue;
                if (!folders.TryGetValue(row.Class, out var images))
                    throw new InvalidDataException(
                        $"The dataset-config takes class \"{row.Class}\" from {column.Source}, which has no such class folder " +
                        $"(it has: {string.Join(", ", folders.Keys)}); write 0 in that cell or fix the name.");
                taken.Add((target, images));
            }
            result.Add(new ColumnImages(c, taken, [.. folders.Keys.Where(k => !listed.Contains(k)).Order(StringComparer.Ordinal)]));
        }
        return result;
    }

    /// <summary>Lists a column's class folders for a config at <paramref name="configPath"/> (see <see cref="ResolveFolder"/>).</summary>
    public static Func<string, IReadOnlyDictionary<string, IReadOnlyList<string>>> ClassFoldersNextTo(string configPath) =>
        folder => DatasetSpec.ListClassFolders(ResolveFolder(folder, configPath));

    /// <summary>
    /// Where a dataset column points for a config at <paramref name="configPath"/>: absolute paths as written;
    /// relative ones against the working directory (as neuston), else against the CSV's folder.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">Neither exists; the message lists both.</exception>
    public static string ResolveFolder(string source, string configPath)
    {
        if (Path.IsPathFullyQualified(source))
            return Directory.Exists(source) ? source
                : throw new DirectoryNotFoundException($"Dataset folder {source} (from {configPath}) does not exist.");
        var fromWorkingDirectory = Path.GetFullPath(source);
        if (Directory.Exists(fromWorkingDirectory))
            return fromWorkingDirectory;
        var fromConfig = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, source));
        if (Directory.Exists(fromConfig))
            return fromConfig;
        throw new DirectoryNotFoundException(
            $"Dataset folder {source} (from {configPath}) does not exist: tried {fromWorkingDirectory} and {fromConfig}.");
    }

    /// <summary>
    /// neuston's <c>MAKE_DATASET_CONFIG</c>: a CSV with header <c>,1:dataset,2:dataset,...</c> (priorities in the order
    /// given) and one row per class folder found in any dataset, <c>1</c> where that dataset has the class, else <c>0</c>.
    /// </summary>
    public static string Make(IReadOnlyList<(string Source, IReadOnlyCollection<string> Classes)> datasets)
    {
        ArgumentNullException.ThrowIfNull(datasets);
        var text = new StringBuilder();
        text.Append(string.Join(',', new[] { "" }.Concat(datasets.Select((d, i) => Csv.Quote($"{i + 1}:{d.Source}")))));
        text.Append('\n');
        foreach (var className in datasets.SelectMany(d => d.Classes).Distinct().Order(StringComparer.Ordinal))
        {
            text.Append(Csv.Quote(className));
            foreach (var dataset in datasets)
                text.Append(dataset.Classes.Contains(className) ? ",1" : ",0");
            text.Append('\n');
        }
        return text.ToString();
    }
}
