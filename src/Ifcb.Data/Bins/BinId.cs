using System.Globalization;
using System.Text.RegularExpressions;

namespace Ifcb.Data.Bins;

/// <summary>Which ADC layout and naming scheme a bin uses.</summary>
public enum BinSchema
{
    /// <summary>Prototype instruments: <c>IFCBn_YYYY_DDD_HHMMSS</c>, ROI columns 9..13, overlapping ROI pairs need stitching.</summary>
    V1 = 1,

    /// <summary>Commercial instruments: <c>DYYYYMMDDTHHMMSS_IFCBnnn</c>, ROI columns 13..17.</summary>
    V2 = 2,
}

/// <summary>
/// A parsed bin id (pyifcb's "lid"): the file stem shared by a bin's <c>.hdr</c>, <c>.adc</c> and <c>.roi</c>.
/// <see cref="Year"/> and <see cref="DateString"/> are neuston's <c>{BIN_YEAR}</c> and <c>{BIN_DATE}</c> output patterns.
/// </summary>
public sealed partial record BinId(string Lid, BinSchema Schema, int Instrument, DateTime Timestamp)
{
    [GeneratedRegex(@"^D(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})_IFCB(\d{3})$", RegexOptions.CultureInvariant)]
    private static partial Regex V2Pattern();

    [GeneratedRegex(@"^IFCB(\d)_(\d{4})_(\d{3})_(\d{2})(\d{2})(\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex V1Pattern();

    public int Year => Timestamp.Year;

    /// <summary>v2: <c>YYYYMMDD</c>; v1: <c>YYYY_DDD</c> (day of year), as neuston's <c>{BIN_DATE}</c>.</summary>
    public string DateString => Schema == BinSchema.V2
        ? Timestamp.ToString("yyyyMMdd", CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{Timestamp.Year:0000}_{Timestamp.DayOfYear:000}");

    /// <summary>ROI id as neuston and the IFCB dashboard write it: <c>{lid}_{target:00000}</c>.</summary>
    public string RoiId(int targetNumber) => string.Create(CultureInfo.InvariantCulture, $"{Lid}_{targetNumber:00000}");

    public override string ToString() => Lid;

    public static bool TryParse(string? lid, out BinId? id)
    {
        id = null;
        if (lid is null)
            return false;
        var m = V2Pattern().Match(lid);
        if (m.Success)
        {
            if (!TryDate(Int(m, 1), Int(m, 2), Int(m, 3), Int(m, 4), Int(m, 5), Int(m, 6), out var t))
                return false;
            id = new BinId(lid, BinSchema.V2, Int(m, 7), t);
            return true;
        }
        m = V1Pattern().Match(lid);
        if (m.Success)
        {
            var year = Int(m, 2);
            var dayOfYear = Int(m, 3);
            if (dayOfYear < 1 || dayOfYear > (DateTime.IsLeapYear(year) ? 366 : 365)
                || !TryDate(year, 1, 1, Int(m, 4), Int(m, 5), Int(m, 6), out var t))
                return false;
            id = new BinId(lid, BinSchema.V1, Int(m, 1), t.AddDays(dayOfYear - 1));
            return true;
        }
        return false;
    }

    public static BinId Parse(string lid) =>
        TryParse(lid, out var id)
            ? id!
            : throw new FormatException(
                $"\"{lid}\" is not an IFCB bin id; expected DYYYYMMDDTHHMMSS_IFCBnnn (e.g. D20130526T095207_IFCB013) " +
                "or IFCBn_YYYY_DDD_HHMMSS (e.g. IFCB5_2012_028_081515).");

    private static int Int(Match m, int group) => int.Parse(m.Groups[group].ValueSpan, CultureInfo.InvariantCulture);

    private static bool TryDate(int y, int mo, int d, int h, int mi, int s, out DateTime value)
    {
        value = default;
        if (y < 1 || mo is < 1 or > 12 || d < 1 || d > DateTime.DaysInMonth(y, mo) || h > 23 || mi > 59 || s > 59)
            return false;
        value = new DateTime(y, mo, d, h, mi, s, DateTimeKind.Utc);
        return true;
    }
}
