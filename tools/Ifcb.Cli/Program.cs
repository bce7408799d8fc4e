// The `ifcb` command line. Everything lives in CliApp so tests can run the same commands in-process.
return await Ifcb.Cli.CliApp.RunAsync(args, Ifcb.Cli.CliContext.ForProcess());
