"""ttexplore.runs."""
