"""Weight initialisation targets, pure Python: the std a layer's whole ``W`` should have.

A TT layer does not draw ``W`` directly: it draws its cores so that the rebuilt
``W`` has this std (see :meth:`ttexplore.nn.layers.TTLinear.reset_parameters`
and :func:`tt_core_std`).
"""

from __future__ import annotations

import math
from typing import Sequence

from ttexplore.tt.ttmath import prod

__all__ = ["INITS", "target_std", "tt_core_std"]

#: Weight inits of a hidden layer; each sets the std of the whole rebuilt ``W``.
INITS = ("glorot", "he", "lecun")


def target_std(init: str, in_features: int, out_features: int) -> float:
    """The std a dense layer's weight would get from ``init``.

    ``glorot``: ``sqrt(2 / (N + M))``; ``he``: ``sqrt(2 / N)``; ``lecun``: ``sqrt(1 / N)``.

    Raises:
        ValueError: naming ``init`` and the known ones.
    """
    if init == "glorot":
        return math.sqrt(2.0 / (in_features + out_features))
    if init == "he":
        return math.sqrt(2.0 / in_features)
    if init == "lecun":
        return math.sqrt(1.0 / in_features)
    raise ValueError(f"init {init!r} is unknown: use one of {', '.join(INITS)}")


def tt_core_std(sigma: float, ranks: Sequence[int], d: int) -> float:
    """Per-core std that gives the rebuilt ``W`` the std ``sigma``.

    ``W(i, j)`` sums ``prod_k r_k`` products of ``d`` independent zero-mean core
    entries, so ``Var W = prod_k r_k * s^(2d)`` for a per-core std ``s``;
    ``s = (sigma^2 / prod_k r_k)^(1 / (2d))`` gives ``std W = sigma`` for every ``d``
    (``ranks`` are the internal ones; the boundary ranks are 1).
    """
    return (sigma**2 / prod(ranks)) ** (1.0 / (2 * d))
