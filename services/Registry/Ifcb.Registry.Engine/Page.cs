namespace Ifcb.Registry.Engine;

/// <summary>
/// One page of results. Pass <see cref="NextPageToken"/> back (with the same query) for the next page; null means
/// there are no more. The token is opaque and only valid for the query that produced it.
/// </summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextPageToken);
