using System.Reflection;
using System.Runtime.Loader;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Ifcb.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Ifcb.EndToEnd.Tests;

/// <summary>
/// The RPCs each platform service implements, read by reflection from the binaries the AppHost runs (each in a load
/// context of its own, resolved through its deps.json), so end-to-end tests can walk every RPC of the running platform
/// without this project referencing the service projects (whose namespaces would shadow the proto clients').
/// </summary>
internal static class RunningServiceRpcs
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    /// <summary>Every RPC implementation, with the AppHost resource ("training", "normstats", "registry") that serves it.</summary>
    public static IReadOnlyList<(string Resource, RpcImplementation Rpc)> Load(DistributedApplication app)
    {
        var protos = typeof(Ifcb.Protos.Training).Assembly;
        var found = new List<(string, RpcImplementation)>();
        foreach (var project in app.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<ProjectResource>())
        {
            var assemblyPath = BuiltAssembly(project.GetProjectMetadata().ProjectPath);
            var context = new ServiceLoadContext(assemblyPath);
            var host = context.LoadFromAssemblyPath(assemblyPath);
            // The host's own services, and the diagnostics probe from the service defaults that every host maps.
            var defaults = host.GetReferencedAssemblies().Single(a => a.Name == "Ifcb.ServiceDefaults");
            foreach (var assembly in new[] { host, context.LoadFromAssemblyName(defaults) })
                foreach (var service in GrpcRpcs.ServiceClasses(assembly))
                    found.AddRange(GrpcRpcs.Implemented(service, protos).Select(rpc => (project.Name, rpc)));
        }
        return found;
    }

    private static string BuiltAssembly(string projectPath)
    {
        var name = Path.GetFileNameWithoutExtension(projectPath);
        var output = Path.Combine(Path.GetDirectoryName(projectPath)!, "bin", Configuration);
        return Directory.EnumerateFiles(output, name + ".dll", SearchOption.AllDirectories)
                   .Where(dll => File.Exists(Path.ChangeExtension(dll, ".deps.json")))
                   .OrderByDescending(File.GetLastWriteTimeUtc)
                   .FirstOrDefault()
               ?? throw new FileNotFoundException($"No built {name}.dll under {output}; build the AppHost first.");
    }

    private sealed class ServiceLoadContext(string mainAssemblyPath) : AssemblyLoadContext($"inspect {Path.GetFileName(mainAssemblyPath)}")
    {
        private readonly AssemblyDependencyResolver _resolver = new(mainAssemblyPath);

        protected override Assembly? Load(AssemblyName assemblyName) =>
            _resolver.ResolveAssemblyToPath(assemblyName) is { } path ? LoadFromAssemblyPath(path) : null;
    }
}
