"""The TT layer and its arithmetic.

Pure (no torch): :mod:`~ttexplore.core.ttmath` (counts, max useful ranks, FLOPs),
:mod:`~ttexplore.core.ttshape` (:class:`TTShape`, the one text form of a shape),
:mod:`~ttexplore.core.shapes` (parsing, factorizations, suggestions),
:mod:`~ttexplore.core.init` (init std), :mod:`~ttexplore.core.layout` (permuted-copy plans).
With torch: :mod:`~ttexplore.core.kernels` (GEMM sweeps, rebuild, TT-SVD),
:mod:`~ttexplore.core.forward` (strategies and their plan cache),
:mod:`~ttexplore.core.layers` (``TTLinear``, ``MatrixRankLinear``).
"""
