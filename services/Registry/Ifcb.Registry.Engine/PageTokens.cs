using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine;

/// <summary>
/// Opaque page tokens: base64url JSON of where the previous page stopped plus a fingerprint of the query, so a
/// token cannot silently be reused with a different filter.
/// </summary>
internal static class PageTokens
{
    private sealed record Envelope<TCursor>(TCursor Cursor, string Query);

    public static string QueryFingerprint<TQuery>(TQuery query) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(query, RegistryStore.Json)))[..16];

    public static string Encode<TCursor>(TCursor cursor, string queryFingerprint) =>
        Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new Envelope<TCursor>(cursor, queryFingerprint), RegistryStore.Json));

    public static TCursor? Decode<TCursor>(string? token, string queryFingerprint)
        where TCursor : class
    {
        if (string.IsNullOrEmpty(token))
            return null;

        Envelope<TCursor>? envelope;
        try
        {
            envelope = JsonSerializer.Deserialize<Envelope<TCursor>>(Base64Url.DecodeFromChars(token), RegistryStore.Json);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            throw Invalid(e);
        }

        if (envelope?.Cursor is null || envelope.Query != queryFingerprint)
            throw Invalid(null);

        return envelope.Cursor;
    }

    private static IfcbException Invalid(Exception? inner) => new(ErrorKind.InvalidArgument,
        "Page token is malformed or belongs to a different query; repeat the query exactly, or start again without a token.", inner);
}
