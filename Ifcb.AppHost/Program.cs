// The IFCB platform: RabbitMQ and Azurite run as local executables (no Docker needed), the three gRPC services use them.
var builder = DistributedApplication.CreateBuilder(args);

var infrastructure = new LocalInfrastructure(builder);
var messaging = infrastructure.AddRabbitMq("rabbitmq");
var blobs = infrastructure.AddAzuriteBlobs("azurite");

// Write RPCs (registry changes, training submissions) require this key; generated once and kept in user secrets
// (./run.sh passes its own, from .state/api-key). The services are given only its SHA-256.
var apiKey = builder.AddParameter("api-key", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true);

var registry = builder.AddIfcbService<Projects.Ifcb_Registry>("registry", messaging, blobs, apiKey);
var normStats = builder.AddIfcbService<Projects.Ifcb_NormStats>("normstats", messaging, blobs, apiKey)
    .WithReplicas(Replicas("Ifcb:NormStatsReplicas"));
// Training tells clients where its peers are (GetInfo details), so the CLI needs only the Training address.
var training = builder.AddIfcbService<Projects.Ifcb_Training>("training", messaging, blobs, apiKey)
    .WithReference(normStats).WithReference(registry)
    .WithTensorFriendlyMalloc()
    .WithReplicas(Replicas("Ifcb:TrainingReplicas"));

var repoRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
training.WithTrainDemoCommand(apiKey, repoRoot);
normStats.WithNormDemoCommand(training, apiKey, repoRoot);

builder.Build().Run();

int Replicas(string key) => int.TryParse(builder.Configuration[key], out var n) && n > 0 ? n : 1;
