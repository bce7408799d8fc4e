var builder = WebApplication.CreateBuilder(args);

builder.UseIfcbKestrelLayout();
builder.AddServiceDefaults("normstats");
builder.AddIfcbBlobs();
builder.AddIfcbNormStatsServices();

var app = builder.Build();

app.MapGrpcService<Ifcb.NormStats.NormStatsGrpcService>();
app.MapGrpcService<PlumbingProbeService>();
app.MapDefaultEndpoints();

app.Run();
