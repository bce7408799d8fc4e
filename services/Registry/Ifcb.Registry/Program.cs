var builder = WebApplication.CreateBuilder(args);

builder.UseIfcbKestrelLayout();
builder.AddServiceDefaults("registry");
builder.AddIfcbBlobs();
builder.AddIfcbRegistryServices();

var app = builder.Build();

app.MapGrpcService<Ifcb.Registry.RegistryGrpcService>();
app.MapGrpcService<PlumbingProbeService>();
app.MapDefaultEndpoints();

app.Run();
