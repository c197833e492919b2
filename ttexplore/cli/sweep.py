"""``ttexplore sweep``: the flags and the command live with the sweep (:mod:`ttexplore.experiments.sweep`)."""

from ttexplore.experiments.sweep import configure_parser, run  # noqa: F401
