using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Azure.Storage.Blobs;
using Ifcb.Platform;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine;

/// <summary>
/// A named API key as stored in <c>keys/{name}.json</c>: its role, the SHA-256 of its secret (never the key), and who
/// created and revoked it. A revoked key stays stored, so its name is never handed out again and audit entries that
/// name it stay unambiguous.
/// </summary>
public sealed record ApiKeyRecord
{
    public required string Name { get; init; }

    public required ApiRole Role { get; init; }

    /// <summary>Lower-case hex SHA-256 of the whole key's UTF-8 bytes.</summary>
    public required string Sha256 { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required string CreatedBy { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? RevokedAt { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RevokedBy { get; init; }

    [JsonIgnore]
    public bool Revoked => RevokedAt is not null;

    /// <summary>The audit-log actor of calls made with this key: "key:NAME".</summary>
    [JsonIgnore]
    public string Principal => ApiKeys.PrincipalPrefix + Name;

    /// <summary>Revokes the key; revoking a revoked key changes nothing (null).</summary>
    public ApiKeyRecord? Revoke(string actor, DateTimeOffset at) => Revoked ? null : this with { RevokedAt = at, RevokedBy = actor };
}

/// <summary>A key just created: its record, and the key itself, which exists only in this object and the caller's hands.</summary>
public sealed record CreatedApiKey(ApiKeyRecord Record, string Key);

/// <summary>What <see cref="ApiKeys.VerifyAsync"/> found for a presented key.</summary>
public enum ApiKeyStatus
{
    /// <summary>Not a named key of this registry (malformed, no such name, or the secret does not match).</summary>
    Unknown,

    /// <summary>The right secret of a key that was revoked.</summary>
    Revoked,

    Valid,
}

public sealed record ApiKeyVerification(ApiKeyStatus Status, ApiKeyRecord? Record)
{
    public static ApiKeyVerification Unknown { get; } = new(ApiKeyStatus.Unknown, null);
}

/// <summary>
/// Named API keys with roles, one blob each (<c>keys/{name}.json</c>, see <see cref="RegistryLayout"/>). A key reads
/// <c>ifcb_{name}_{secret}</c>, the secret 32 random bytes in base64url, so verifying it is one GET of its record and a
/// constant-time comparison of SHA-256 digests. Nothing is cached: a revoke is refused by the next call, on every replica.
/// </summary>
public sealed class ApiKeys
{
    public const string KeyPrefix = "ifcb_";

    /// <summary>What the audit log records for calls made with a named key: "key:" and its name.</summary>
    public const string PrincipalPrefix = "key:";

    private const int SecretBytes = 32;

    /// <summary>Base64url of 32 bytes, without padding.</summary>
    private const int SecretLength = 43;

    private readonly RegistryOptions _options;
    private readonly BlobDocumentStore _store;
    private readonly TimeProvider _time;

    public ApiKeys(BlobContainerClient container, RegistryOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _options = options ?? new RegistryOptions();
        _store = RegistryStore.Create(container, _options);
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Creates a key named <paramref name="name"/> (model-name rules) with <paramref name="role"/>. The returned key is
    /// the only copy: only its SHA-256 is stored.
    /// </summary>
    /// <exception cref="IfcbException">
    /// InvalidArgument (name, actor); AlreadyExists (the name is taken, revoked keys included);
    /// ResourceExhausted (<see cref="RegistryOptions.MaxApiKeys"/> keys are stored; revoked names stay taken).
    /// </exception>
    public async Task<CreatedApiKey> CreateAsync(string name, ApiRole role, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.KeyName(name);
        RegistryValidation.Actor(actor);
        if (!Enum.IsDefined(role))
            throw IfcbException.InvalidArgument($"Unknown role {(int)role}; give one of {string.Join(", ", ApiRoles.Names)}.");

        var stored = await _store.ListBlobNamesAsync(RegistryLayout.KeysRoot, cancellationToken);
        if (stored.Count >= _options.MaxApiKeys)
        {
            throw new IfcbException(ErrorKind.ResourceExhausted,
                $"The registry holds {stored.Count} API keys (revoked ones included), the most it keeps ({_options.MaxApiKeys}).");
        }

        var key = $"{KeyPrefix}{name}_{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes))}";
        var record = new ApiKeyRecord
        {
            Name = name, Role = role, Sha256 = Sha256Hex(key), CreatedAt = _time.GetUtcNow(), CreatedBy = actor,
        };
        if (await _store.TryCreateAsync(RegistryLayout.Key(name), record, cancellationToken) is null)
        {
            throw new IfcbException(ErrorKind.AlreadyExists,
                $"An API key named '{name}' exists (or existed: revoked names stay taken); choose another name.");
        }

        return new CreatedApiKey(record, key);
    }

    /// <summary>Every key in name order, revoked ones included.</summary>
    public async Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken = default)
    {
        var names = await _store.ListBlobNamesAsync(RegistryLayout.KeysRoot, cancellationToken);
        var records = new List<ApiKeyRecord>(names.Count);
        foreach (var batch in names.Chunk(_options.ListReadConcurrency))
        {
            var read = await Task.WhenAll(batch.Select(blob => _store.ReadAsync<ApiKeyRecord>(blob, cancellationToken)));
            records.AddRange(read.OfType<Stored<ApiKeyRecord>>().Select(stored => stored.Value));
        }

        return [.. records.OrderBy(r => r.Name, StringComparer.Ordinal)];
    }

    /// <summary>Revokes the key at once (the next call with it is refused); revoking a revoked key changes nothing.</summary>
    /// <exception cref="IfcbException">InvalidArgument (name, actor); NotFound.</exception>
    public async Task<ApiKeyRecord> RevokeAsync(string name, string actor, CancellationToken cancellationToken = default)
    {
        RegistryValidation.KeyName(name);
        RegistryValidation.Actor(actor);
        var (document, _) = await _store.UpdateAsync<ApiKeyRecord>(RegistryLayout.Key(name),
            record => record.Revoke(actor, _time.GetUtcNow()),
            () => new IfcbException(ErrorKind.NotFound, $"There is no API key named '{name}'; 'ifcb keys list' shows them."),
            cancellationToken);
        return document.Value;
    }

    /// <summary>
    /// Checks a presented key: one GET of its record, then a constant-time comparison of digests. A key of the wrong
    /// form, an unknown name and a wrong secret are all <see cref="ApiKeyStatus.Unknown"/>; only the right secret of a
    /// revoked key learns that it was revoked.
    /// </summary>
    public async Task<ApiKeyVerification> VerifyAsync(string? presented, CancellationToken cancellationToken = default)
    {
        if (NameOf(presented) is not { } name)
            return ApiKeyVerification.Unknown;

        var stored = await _store.ReadAsync<ApiKeyRecord>(RegistryLayout.Key(name), cancellationToken);
        if (stored is null || stored.Value.Sha256.Length != SHA256.HashSizeInBytes * 2 || !stored.Value.Sha256.All(char.IsAsciiHexDigit))
            return ApiKeyVerification.Unknown;

        var matches = CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(presented!)), Convert.FromHexString(stored.Value.Sha256));
        if (!matches)
            return ApiKeyVerification.Unknown;

        return new ApiKeyVerification(stored.Value.Revoked ? ApiKeyStatus.Revoked : ApiKeyStatus.Valid, stored.Value);
    }

    /// <summary>The name inside a key of the form <c>ifcb_{name}_{43 base64url characters}</c>; null for anything else.</summary>
    public static string? NameOf(string? key)
    {
        if (key is null || key.Length <= KeyPrefix.Length + 1 + SecretLength || !key.StartsWith(KeyPrefix, StringComparison.Ordinal)
            || key[^(SecretLength + 1)] != '_')
        {
            return null;
        }

        var name = key[KeyPrefix.Length..^(SecretLength + 1)];
        return ResourceName.IsValidModelName(name) ? name : null;
    }

    private static string Sha256Hex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
