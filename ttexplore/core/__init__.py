"""ttexplore.core."""
