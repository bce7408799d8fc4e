using System.Runtime.CompilerServices;
using Ifcb.Protos;

namespace Ifcb.Client;

/// <summary>
/// Searches of the registry in MLflow's filter grammar (see registry.proto's <c>SearchVersionsRequest.filter</c>), following
/// page tokens so callers see one stream of results. Each page is its own call, under the channel's deadline and retries.
/// </summary>
public static class RegistrySearch
{
    /// <summary>
    /// Versions matching <paramref name="filter"/> in <paramref name="orderBy"/>'s order, at most <paramref name="limit"/>.
    /// </summary>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument naming the offending token of the filter or ordering.</exception>
    public static async IAsyncEnumerable<ModelVersion> VersionsAsync(Registry.RegistryClient registry, string filter, string orderBy,
        int limit, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var request = new SearchVersionsRequest { Filter = filter ?? "", OrderBy = orderBy ?? "" };
        var returned = 0;
        while (returned < limit)
        {
            request.PageSize = Math.Clamp(limit - returned, 1, 1000);
            var page = await registry.SearchVersionsAsync(request, cancellationToken: cancellationToken);
            foreach (var version in page.Versions.Take(limit - returned))
            {
                returned++;
                yield return version;
            }

            if (page.NextPageToken.Length == 0)
                yield break;

            request.PageToken = page.NextPageToken;
        }
    }

    /// <summary>
    /// Registered models matching <paramref name="filter"/> in <paramref name="orderBy"/>'s order, at most <paramref name="limit"/>.
    /// </summary>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument naming the offending token of the filter or ordering.</exception>
    public static async IAsyncEnumerable<RegisteredModel> ModelsAsync(Registry.RegistryClient registry, string filter, string orderBy,
        int limit, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var request = new SearchModelsRequest { Filter = filter ?? "", OrderBy = orderBy ?? "" };
        var returned = 0;
        while (returned < limit)
        {
            request.PageSize = Math.Clamp(limit - returned, 1, 1000);
            var page = await registry.SearchModelsAsync(request, cancellationToken: cancellationToken);
            foreach (var model in page.Models.Take(limit - returned))
            {
                returned++;
                yield return model;
            }

            if (page.NextPageToken.Length == 0)
                yield break;

            request.PageToken = page.NextPageToken;
        }
    }
}
