namespace Ifcb.Contracts;

/// <summary>
/// Diagnostics request (Diagnostics.ProbePlumbing): read the named probe blob and answer with its SHA-256.
/// Sent to a service's "{service}-probe" queue; proves bus and blob plumbing between two services.
/// </summary>
public sealed record ReadProbeBlob(Guid ProbeId, string Container, string BlobName, string OriginService);

/// <summary>Answer to <see cref="ReadProbeBlob"/>.</summary>
public sealed record ProbeBlobRead(Guid ProbeId, string Service, string InstanceId, string BlobSha256);
