// Before anything allocates: keep freed tensor memory for the next training step (see NativeAllocator).
Ifcb.Models.NativeAllocator.Configure();

var builder = WebApplication.CreateBuilder(args);

builder.UseIfcbKestrelLayout();
builder.AddServiceDefaults("training");
builder.AddIfcbBlobs();
builder.AddIfcbTrainingServices();

var app = builder.Build();

app.MapGrpcService<Ifcb.Training.TrainingGrpcService>();
app.MapGrpcService<Ifcb.Training.RunsGrpcService>();
app.MapGrpcService<Ifcb.Training.SweepsGrpcService>();
app.MapGrpcService<Ifcb.Training.DatasetsGrpcService>();
app.MapGrpcService<PlumbingProbeService>();
app.MapDefaultEndpoints();

app.Run();
