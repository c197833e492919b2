"""ttexplore: explore Tensor-Train (TT) fully-connected and convolutional layers.

The arithmetic (:mod:`ttexplore.tt.ttmath`, :mod:`ttexplore.tt.shapes`,
:mod:`ttexplore.runs.config`) is pure Python; everything that needs torch is
imported lazily, so ``from ttexplore import param_count`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

from ttexplore.tt.ttmath import compression, compression_factor, dense_param_count, max_useful_ranks, param_count

__version__ = "0.1.0"

_LAZY = {
    "TTLinear": "ttexplore.nn.layers",
    "MatrixRankLinear": "ttexplore.nn.layers",
    "TTConv2d": "ttexplore.nn.ttconv",
    "TTMatrix": "ttexplore.nn.ttmatrix",
    "TTShape": "ttexplore.tt.ttshape",
    "RunConfig": "ttexplore.runs.config",
    "ConfigError": "ttexplore.runs.config",
    "RunStore": "ttexplore.runs.store",
    "JobManager": "ttexplore.runs.jobs",
}

__all__ = [
    "TTLinear",
    "MatrixRankLinear",
    "TTConv2d",
    "TTMatrix",
    "TTShape",
    "RunConfig",
    "ConfigError",
    "RunStore",
    "JobManager",
    "param_count",
    "dense_param_count",
    "compression",
    "compression_factor",
    "max_useful_ranks",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ttexplore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
