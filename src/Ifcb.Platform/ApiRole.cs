namespace Ifcb.Platform;

/// <summary>
/// What a caller's API key allows, each role including the ones before it: a reader reads, a writer also changes
/// models and submits work, an admin also manages keys. The platform's bootstrap key (the AppHost's) is an admin.
/// </summary>
public enum ApiRole
{
    Reader,
    Writer,
    Admin,
}

/// <summary>The roles' names as users type and read them: "reader", "writer", "admin".</summary>
public static class ApiRoles
{
    /// <summary>Every role's name, lowest first.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Enum.GetValues<ApiRole>().Select(Name)];

    public static string Name(this ApiRole role) => role switch
    {
        ApiRole.Reader => "reader",
        ApiRole.Writer => "writer",
        ApiRole.Admin => "admin",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "Not an API role."),
    };

    /// <summary>True when a key with this role may do what <paramref name="needed"/> may.</summary>
    public static bool Allows(this ApiRole role, ApiRole needed) => role >= needed;

    /// <summary>Parses a role name (case-insensitive).</summary>
    /// <exception cref="IfcbException">InvalidArgument naming the roles.</exception>
    public static ApiRole Parse(string? name)
    {
        foreach (var role in Enum.GetValues<ApiRole>())
        {
            if (string.Equals(name?.Trim(), role.Name(), StringComparison.OrdinalIgnoreCase))
                return role;
        }

        throw IfcbException.InvalidArgument($"Unknown role '{name}'; give one of {string.Join(", ", Names)}.");
    }
}
