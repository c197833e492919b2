"""ttexplore.presenters."""
