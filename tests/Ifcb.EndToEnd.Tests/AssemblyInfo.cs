// Each collection starts a whole platform (broker, blob emulator, five service processes); on two cores they must
// not run at the same time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
