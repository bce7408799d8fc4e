using System.CommandLine;

namespace Ifcb.Cli;

/// <summary>
/// <c>ifcb models ...</c>: the model registry. A model reference is <c>NAME</c> (the model, or its newest READY version),
/// <c>NAME/VERSION</c> or <c>NAME@ALIAS</c>, parsed by <see cref="Ifcb.Contracts.ModelRef"/>.
/// </summary>
public static class ModelsCommands
{
    public static Command Build(CliContext context) => new("models", "The model registry: registered models, versions, aliases, tags.")
    {
        ModelsListCommand.Build(context),
        ModelsShowCommand.Build(context),
        ModelsVersionsCommand.Build(context),
        ModelsSearchCommand.Build(context),
        ModelsAliasCommand.Build(context),
        ModelsTagCommand.Build(context),
        ModelsDownloadCommand.Build(context),
        ModelsRegisterCommand.Build(context),
        ModelImportCommand.Build(context),
        ModelExportCommand.Build(context),
        ModelsUpdateCommand.Build(context),
        ModelsRenameCommand.Build(context),
        ModelsDeleteCommand.Build(context),
        ModelsHistoryCommand.Build(context),
        ModelsCompareCommand.Build(context),
        ModelsWebhooksCommand.Build(context),
    };
}
