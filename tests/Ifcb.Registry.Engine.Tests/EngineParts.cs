using Azure.Storage.Blobs;
using Ifcb.Platform.Storage;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// The registry's internal parts wired as <see cref="ModelRegistry"/> wires them, over one fresh container, for tests
/// of one part at a time; plus the documents those tests seed storage with.
/// </summary>
internal sealed class EngineParts
{
    private EngineParts(BlobContainerClient container, RegistryOptions options, ManualClock clock)
    {
        Container = container;
        Options = options;
        Clock = clock;
        Store = RegistryStore.Create(container, options);
        Changes = new SearchChanges(Store);
        Models = new ModelDocuments(Store, clock, Changes);
        Audit = new AuditLog(Store, options, clock);
        Index = new SearchIndex(Store, options, clock, Changes);
        Expiry = new PendingExpiry(Store, options, clock, Audit, Index);
        Claims = new IdempotencyClaims(Store, options, clock, Expiry);
    }

    public BlobContainerClient Container { get; }

    public RegistryOptions Options { get; }

    public ManualClock Clock { get; }

    public BlobDocumentStore Store { get; }

    public SearchChanges Changes { get; }

    public ModelDocuments Models { get; }

    public AuditLog Audit { get; }

    public SearchIndex Index { get; }

    public PendingExpiry Expiry { get; }

    public IdempotencyClaims Claims { get; }

    public static async Task<EngineParts> CreateAsync(AzuriteFixture azurite, RegistryOptions? options = null) =>
        new(await azurite.Azurite.CreateContainerAsync("parts"), options ?? new RegistryOptions(), new ManualClock());

    /// <summary>A second process's allocator over the same storage (its own gate and memory of the last number).</summary>
    public VersionAllocator NewAllocator() => new(Store, Options, Models, Index);

    /// <summary>Creates model.json for <paramref name="name"/>, created now, and returns it.</summary>
    public async Task<RegisteredModel> CreateModelAsync(string name)
    {
        var now = Clock.GetUtcNow();
        var model = new RegisteredModel { Name = name, Revision = 1, CreatedAt = now, CreatedBy = "tests", UpdatedAt = now, UpdatedBy = "tests" };
        Assert.NotNull(await Models.TryCreateAsync(model, CancellationToken.None));
        return model;
    }

    /// <summary>A version document as a registration drafts it, created now.</summary>
    public ModelVersion Version(string model, int number, string sha256, ModelVersionStatus status = ModelVersionStatus.Pending, string? key = null)
    {
        var now = Clock.GetUtcNow();
        return new ModelVersion
        {
            ModelName = model, Version = number, Status = status, Arch = "resnet18", CheckpointBlob = RegistryLayout.Checkpoint(model, number),
            Sha256 = sha256, SizeBytes = 1, IdempotencyKey = key, CreatedAt = now, CreatedBy = "tests", UpdatedAt = now, UpdatedBy = "tests",
        };
    }
}
