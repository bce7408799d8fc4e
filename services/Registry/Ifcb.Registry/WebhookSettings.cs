using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// Reads <see cref="WebhookOptions"/> from configuration section <c>Ifcb:Webhooks</c> (TimeSpans as <c>hh:mm:ss</c>):
/// MaxWebhooks (100), RequestTimeout (10 s), RetryBaseDelay (10 s), RetryMaxDelay (60 s), MaxAttempts (6),
/// SweepInterval (5 s), DeliveryRetention (7 days).
/// </summary>
public static class WebhookSettings
{
    public const string Section = "Ifcb:Webhooks";

    /// <exception cref="InvalidOperationException">A value is out of range; the message names the key.</exception>
    public static WebhookOptions From(IConfiguration configuration)
    {
        var defaults = new WebhookOptions();
        var section = configuration.GetSection(Section);
        var options = new WebhookOptions
        {
            MaxWebhooks = section.GetValue(nameof(WebhookOptions.MaxWebhooks), defaults.MaxWebhooks),
            RequestTimeout = section.GetValue(nameof(WebhookOptions.RequestTimeout), defaults.RequestTimeout),
            RetryBaseDelay = section.GetValue(nameof(WebhookOptions.RetryBaseDelay), defaults.RetryBaseDelay),
            RetryMaxDelay = section.GetValue(nameof(WebhookOptions.RetryMaxDelay), defaults.RetryMaxDelay),
            MaxAttempts = section.GetValue(nameof(WebhookOptions.MaxAttempts), defaults.MaxAttempts),
            SweepInterval = section.GetValue(nameof(WebhookOptions.SweepInterval), defaults.SweepInterval),
            DeliveryRetention = section.GetValue(nameof(WebhookOptions.DeliveryRetention), defaults.DeliveryRetention),
        };
        try
        {
            return options.Validated();
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{Section}: {e.Message}", e);
        }
    }
}
