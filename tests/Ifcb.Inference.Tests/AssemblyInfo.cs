// libtorch already uses every core for one model: running test classes side by side only multiplies memory and time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
