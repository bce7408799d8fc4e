using Ifcb.Platform;
using Ifcb.Registry.Engine;

namespace Ifcb.Registry;

public static class ModelRegistryExtensions
{
    /// <summary>
    /// Creates the registered model unless it exists: both ways of registering (CI upload, finished training) name a
    /// model that may not have been created yet. Concurrent creators are fine; one wins, the others find it.
    /// </summary>
    public static async Task EnsureModelAsync(this ModelRegistry registry, string name, string actor, CancellationToken cancellationToken)
    {
        try
        {
            await registry.GetModelAsync(name, cancellationToken);
        }
        catch (IfcbException e) when (e.Kind == ErrorKind.NotFound)
        {
            try
            {
                await registry.CreateModelAsync(name, actor, cancellationToken: cancellationToken);
            }
            catch (IfcbException again) when (again.Kind == ErrorKind.AlreadyExists)
            {
                // Another registration created it first.
            }
        }
    }
}
