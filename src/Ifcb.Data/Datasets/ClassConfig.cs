using System.Text;

namespace Ifcb.Data.Datasets;

/// <summary>What a class-config row does with its base class.</summary>
public enum ClassAction
{
    Skip,
    Keep,
    Rename,
}

/// <summary>One row: base class (column 0) and the chosen column's action; <see cref="Target"/> is the class it ends up in.</summary>
public sealed record ClassConfigEntry(string BaseClass, ClassAction Action, string? Target);

/// <summary>
/// neuston's <c>--class-config CSV COL</c>: column 0 lists base classes; in column COL <c>0</c> skips the class,
/// <c>1</c> keeps it and anything else renames it (classes renamed to the same label are merged). Unlike neuston,
/// <c>1.0</c>/<c>0.0</c> (what pandas makes of a column that has a blank cell) mean keep/skip, and a blank cell is an
/// error instead of a class called "nan".
/// </summary>
public sealed record ClassConfig(string Column, IReadOnlyList<ClassConfigEntry> Entries)
{
    /// <exception cref="FileNotFoundException">The CSV does not exist.</exception>
    /// <exception cref="ArgumentException"><paramref name="column"/> is not a header of the CSV.</exception>
    /// <exception cref="InvalidDataException">The CSV has no header, or a row has too few cells or a blank cell.</exception>
    public static ClassConfig Load(string csvPath, string column)
    {
        if (!File.Exists(csvPath))
            throw new FileNotFoundException($"Class-config CSV {csvPath} does not exist.", csvPath);
        return Parse(File.ReadAllText(csvPath), column, csvPath);
    }

    public static ClassConfig Parse(string csvText, string column, string sourceName = "class-config CSV")
    {
        ArgumentNullException.ThrowIfNull(csvText);
        ArgumentException.ThrowIfNullOrWhiteSpace(column);
        var rows = Csv.Read(csvText).Where(r => r.Count > 1 || (r.Count == 1 && r[0].Length > 0)).ToList();
        if (rows.Count == 0)
            throw new InvalidDataException($"{sourceName} is empty; it needs a header row (base column, configuration columns...).");
        var header = rows[0];
        var index = header.FindIndex(1, h => h.Trim() == column);
        if (index < 1)
            throw new ArgumentException(
                $"Column \"{column}\" is not in {sourceName}; its configuration columns are: " +
                $"{string.Join(", ", header.Skip(1).Select(h => $"\"{h}\""))}.",
                nameof(column));
        var entries = new List<ClassConfigEntry>();
        for (var r = 1; r < rows.Count; r++)
        {
            var row = rows[r];
            if (row.Count <= index)
                throw new InvalidDataException($"{sourceName} row {r + 1} has {row.Count} cells; column \"{column}\" is cell {index + 1}.");
            var baseClass = row[0].Trim();
            var value = row[index].Trim();
            if (value.Length == 0)
                throw new InvalidDataException($"{sourceName} row {r + 1} ({baseClass}): column \"{column}\" is blank; " +
                    "write 0 (skip), 1 (keep) or a new class name.");
            entries.Add(value switch
            {
                "0" or "0.0" => new ClassConfigEntry(baseClass, ClassAction.Skip, null),
                "1" or "1.0" => new ClassConfigEntry(baseClass, ClassAction.Keep, baseClass),
                _ => new ClassConfigEntry(baseClass, ClassAction.Rename, value),
            });
        }
        return new ClassConfig(column, entries);
    }
}

/// <summary>The CSV dialect of class- and dataset-configs.</summary>
internal static class Csv
{
    /// <summary>A cell as written: quoted when it holds a comma, quote or line break.</summary>
    public static string Quote(string cell) =>
        cell.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? $"\"{cell.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : cell;

    // RFC 4180: commas, quoted cells with "" escapes, CRLF or LF line ends.
    public static List<List<string>> Read(string text)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var cell = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (c == '"')
                    quoted = false;
                else
                    cell.Append(c);
            }
            else if (c == '"')
                quoted = true;
            else if (c == ',')
            {
                row.Add(cell.ToString());
                cell.Clear();
            }
            else if (c is '\n' or '\r')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
                    i++;
                row.Add(cell.ToString());
                cell.Clear();
                rows.Add(row);
                row = [];
            }
            else
                cell.Append(c);
        }
        if (cell.Length > 0 || row.Count > 0)
        {
            row.Add(cell.ToString());
            rows.Add(row);
        }
        return rows;
    }
}
