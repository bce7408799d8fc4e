using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ifcb.Registry.Engine;

/// <summary>
/// How a delivery proves it comes from this registry: <c>X-Ifcb-Signature: sha256=HEX</c>, the lower-case hex
/// HMAC-SHA256 keyed with the webhook's secret (UTF-8) over <c>TIMESTAMP + "." + BODY</c>, where TIMESTAMP is the
/// <c>X-Ifcb-Timestamp</c> header (Unix seconds, as sent) and BODY the raw request body bytes. Receivers recompute it,
/// compare in constant time, and reject old timestamps (e.g. older than 5 minutes) to stop replays.
/// </summary>
public static class WebhookSignature
{
    public const string EventHeader = "X-Ifcb-Event";
    public const string DeliveryHeader = "X-Ifcb-Delivery";
    public const string TimestampHeader = "X-Ifcb-Timestamp";
    public const string SignatureHeader = "X-Ifcb-Signature";
    public const string Prefix = "sha256=";

    /// <summary>The <see cref="SignatureHeader"/> value for <paramref name="body"/> sent at <paramref name="unixSeconds"/>.</summary>
    public static string Compute(string secret, long unixSeconds, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var timestamp = Encoding.UTF8.GetBytes(unixSeconds.ToString(CultureInfo.InvariantCulture) + ".");
        var signed = new byte[timestamp.Length + body.Length];
        timestamp.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(timestamp.Length));
        return Prefix + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
    }

    /// <summary>True when <paramref name="signature"/> is the one for this body and timestamp (constant-time comparison).</summary>
    public static bool Verify(string secret, long unixSeconds, ReadOnlySpan<byte> body, string? signature) =>
        signature is not null && CryptographicOperations.FixedTimeEquals(
            Encoding.ASCII.GetBytes(Compute(secret, unixSeconds, body)), Encoding.ASCII.GetBytes(signature));
}
