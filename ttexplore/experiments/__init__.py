"""ttexplore.experiments."""
