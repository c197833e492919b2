"""Experiments built from runs: :mod:`~ttexplore.experiments.sweep` (grids of runs, local
processes or Ray, the 2018 reproduction's table and figure) and :mod:`~ttexplore.experiments.bench`
(strategies against ``nn.Linear``, machine calibration)."""
