using System.Globalization;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// The Registry's named keys (<see cref="ApiKeys"/>) as the platform's key check asks for them: one GET of the key's record
/// per call, no cache, so a revoked key is refused by the next call on every replica.
/// </summary>
public sealed class RegistryKeyResolver(ApiKeys keys) : INamedKeyResolver
{
    public async Task<NamedKeyResolution> ResolveAsync(string presentedKey, CancellationToken cancellationToken)
    {
        var verification = await keys.VerifyAsync(presentedKey, cancellationToken);
        return (verification.Status, verification.Record) switch
        {
            (ApiKeyStatus.Valid, { } record) => new NamedKeyResolution(new ApiPrincipal(record.Principal, record.Role)),
            (ApiKeyStatus.Revoked, { } record) => new NamedKeyResolution(null,
                $"The API key '{record.Name}' was revoked at {record.RevokedAt!.Value.ToString("O", CultureInfo.InvariantCulture)} " +
                $"by {record.RevokedBy}; ask an admin for a new key."),
            _ => NamedKeyResolution.Unknown,
        };
    }
}
