namespace Ifcb.Protos;

/// <summary>Metadata of the client-streaming uploads that is not in the messages (see registry.proto, RegisterVersion).</summary>
public static class UploadProtocol
{
    /// <summary>
    /// Response header the registry sends once it has accepted a RegisterVersion header: only then does the client
    /// stream the checkpoint bytes, so a refusal (bad header, size limit, no API key) never races data in flight.
    /// </summary>
    public const string SendDataHeader = "ifcb-send-data";
}
