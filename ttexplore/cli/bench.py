"""``ttexplore bench``: the flags and the command live with the benchmarks (:mod:`ttexplore.experiments.bench`)."""

from ttexplore.experiments.bench import configure_parser, run  # noqa: F401
