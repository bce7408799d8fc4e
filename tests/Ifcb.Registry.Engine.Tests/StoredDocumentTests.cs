using System.Text.Json;
using System.Text.Json.Nodes;
using Ifcb.Contracts;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>version.json is the registry's database: a document an earlier registry stored must read the same.</summary>
public sealed class StoredDocumentTests
{
    // Written by the registry before ModelVersion and NewModelVersion shared VersionMetadata (every field set).
    private const string StoredVersion = """
        {"model_name":"plankton","version":3,"status":"READY","status_message":null,"description":"nightly",
         "arch":"inception_v3","classes":["diatom","dino"],"img_norm":"0.5 0.25","pretrained":true,
         "metrics":{"f1_macro":0.75,"val_loss":0.5},"tags":{"stage":"prod"},
         "source":{"training_job_id":"job-1","commit":"abc123","pipeline_url":"https://ci.example/1"},
         "dataset_fingerprint":"fp-1","resize":299,"checkpoint_blob":"models/plankton/versions/0000003/checkpoint.ifcbmodel",
         "sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size_bytes":1234,
         "idempotency_key":"training:job-1","created_at":"2024-05-01T12:00:00+00:00","created_by":"ci",
         "updated_at":"2024-05-01T12:01:00+00:00","updated_by":"trainer"}
        """;

    [Fact]
    public void A_version_document_stored_before_VersionMetadata_reads_every_field()
    {
        var version = JsonSerializer.Deserialize<ModelVersion>(StoredVersion, RegistryStore.Json)!;

        Assert.Equal(("plankton", 3, ModelVersionStatus.Ready), (version.ModelName, version.Version, version.Status));
        Assert.Null(version.StatusMessage);
        Assert.Equal(("inception_v3", "nightly", true, 299), (version.Arch, version.Description, version.Pretrained, version.Resize));
        Assert.Equal(["diatom", "dino"], version.Classes.ToArray());
        Assert.Equal(ImgNorm.Parse("0.5 0.25"), version.ImgNorm);
        Assert.Equal(new Dictionary<string, double> { ["f1_macro"] = 0.75, ["val_loss"] = 0.5 }, version.Metrics);
        Assert.Equal(new Dictionary<string, string> { ["stage"] = "prod" }, version.Tags);
        Assert.Equal(new VersionSource { TrainingJobId = "job-1", Commit = "abc123", PipelineUrl = "https://ci.example/1" },
            version.Source);
        Assert.Equal("fp-1", version.DatasetFingerprint);
        Assert.Equal(("models/plankton/versions/0000003/checkpoint.ifcbmodel", 1234L, "training:job-1"),
            (version.CheckpointBlob, version.SizeBytes, version.IdempotencyKey));
        Assert.Equal("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", version.Sha256);
        Assert.Equal((DateTimeOffset.Parse("2024-05-01T12:00:00Z"), "ci"), (version.CreatedAt, version.CreatedBy));
        Assert.Equal((DateTimeOffset.Parse("2024-05-01T12:01:00Z"), "trainer"), (version.UpdatedAt, version.UpdatedBy));
    }

    [Fact]
    public void A_version_document_is_written_with_the_fields_an_earlier_registry_stored()
    {
        var version = JsonSerializer.Deserialize<ModelVersion>(StoredVersion, RegistryStore.Json)!;

        // Same names, values and nesting (property order is not part of the format), so an earlier registry reads it too.
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(StoredVersion), JsonSerializer.SerializeToNode(version, RegistryStore.Json)),
            JsonSerializer.Serialize(version, RegistryStore.Json));
    }
}
