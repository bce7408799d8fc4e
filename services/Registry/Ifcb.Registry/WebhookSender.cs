using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

/// <summary>
/// Sends one attempt of a delivery: a signed POST (<see cref="WebhookSignature"/>) that must answer 2xx within
/// <see cref="WebhookOptions.RequestTimeout"/>. Its own HttpClient: no redirects (a 3xx is a failed attempt, never a
/// re-sent body elsewhere) and no resilience handler (retries follow the delivery's schedule, not the HTTP stack's).
/// </summary>
public sealed class WebhookSender : IDisposable
{
    /// <summary>How much of an error answer's body is kept in the delivery's last_error.</summary>
    private const int ErrorBodyChars = 200;

    private readonly HttpClient _http;
    private readonly TimeProvider _time;

    public WebhookSender(WebhookOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time ?? TimeProvider.System;
        _http = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = options.RequestTimeout,
        })
        {
            Timeout = options.RequestTimeout,
        };
    }

    public async Task<WebhookAttemptResult> SendAsync(WebhookAttempt attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        var body = Encoding.UTF8.GetBytes(attempt.Delivery.Payload);
        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, attempt.Webhook.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add(WebhookSignature.EventHeader, attempt.Delivery.Event);
        request.Headers.Add(WebhookSignature.DeliveryHeader, attempt.Delivery.Id);
        request.Headers.Add(WebhookSignature.TimestampHeader, timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add(WebhookSignature.SignatureHeader, WebhookSignature.Compute(attempt.Webhook.Secret, timestamp, body));
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
                return new WebhookAttemptResult(code, null);
            var answer = await ErrorBodyAsync(response, cancellationToken);
            return new WebhookAttemptResult(code, $"HTTP {code} {response.ReasonPhrase}: {answer}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var seconds = _http.Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            return new WebhookAttemptResult(null, $"No answer within {seconds} s (Ifcb:Webhooks:RequestTimeout).");
        }
        catch (HttpRequestException e)
        {
            return new WebhookAttemptResult(null, $"The request failed: {e.Message}");
        }
    }

    /// <summary>The start of the answer's body, for the person reading last_error; never more than a few hundred characters.</summary>
    private static async Task<string> ErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[ErrorBodyChars];
            var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            return Encoding.UTF8.GetString(buffer, 0, read).ReplaceLineEndings(" ").Trim();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            return "(no body)";
        }
    }

    public void Dispose() => _http.Dispose();
}
