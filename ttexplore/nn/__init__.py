"""TT layers and their kernels in torch, above the cost model.

:mod:`~ttexplore.nn.kernels` (GEMM sweeps, rebuild, TT-SVD),
:mod:`~ttexplore.nn.einsum_kernel` and :mod:`~ttexplore.nn.plans` (planned contractions),
:mod:`~ttexplore.nn.forward` (strategies, how ``auto`` picks, their caches),
:mod:`~ttexplore.nn.layers` (``TTLinear``, ``MatrixRankLinear``),
:mod:`~ttexplore.nn.device` (devices and timing), :mod:`~ttexplore.nn.weightfile` (checked weight files).
"""
