"""Pure-Python TT arithmetic: the ground floor, no torch anywhere below or here.

:mod:`~ttexplore.tt.ttmath` (weights, compression, max useful ranks, FLOPs),
:mod:`~ttexplore.tt.ttshape` (:class:`TTShape`, the one text form of a shape),
:mod:`~ttexplore.tt.limits` and :mod:`~ttexplore.tt.factor` (the bounds every search obeys,
prime factors and factorizations), :mod:`~ttexplore.tt.shapes` (parsing, suggestions, padding),
:mod:`~ttexplore.tt.init` (init std), :mod:`~ttexplore.tt.layout` (permuted-copy plans),
:mod:`~ttexplore.tt.memory` (the machine's memory budget), :mod:`~ttexplore.tt.devicenames`,
:mod:`~ttexplore.tt.errors` (:class:`ConfigError`).
"""
