"""One value for a TT layer's shape, and its one text form. Pure Python.

A TT-matrix layer is described by three things that used to travel as loose
arguments: ``in_modes`` ``(n_1, ..., n_d)``, ``out_modes`` ``(m_1, ..., m_d)`` and
the internal ``ranks`` ``(r_1, ..., r_{d-1})``. :class:`TTShape` holds them
(validated, ranks clipped to the maximal useful ones) and writes them the one way
every page, plot, CSV and label shows them:

* modes: ``"4x8x8x4"``; five or more equal modes as a power, ``"2^10"`` (how the
  2018 reproduction's legends wrote them); :func:`~ttexplore.tt.shapes.parse_modes`
  reads both back;
* a layer: ``"4x8x8x4"`` when input and output modes agree, else
  ``"4x7x4x7->5x5x8x4"``;
* ranks: ``"r=4"`` when all internal ranks are equal, else ``"r=2,4,2"``;
  a one-core layer has no internal rank and no rank text.

ASCII only, so the same text is a CSV cell, a legend entry, a file-name part and
a command-line argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ttexplore.tt.ttmath import (POWER_FROM, RanksLike, core_shapes, max_useful_ranks, modes_text, param_count, plan_ranks,
                                 prod)

__all__ = ["TTShape", "modes_text", "layer_text", "ranks_text", "POWER_FROM"]

def layer_text(in_modes: Sequence[int], out_modes: Sequence[int]) -> str:
    """``"4x8x8x4"`` when input and output modes agree, else ``"4x7x4x7->5x5x8x4"``."""
    if tuple(in_modes) == tuple(out_modes):
        return modes_text(in_modes)
    return f"{modes_text(in_modes)}->{modes_text(out_modes)}"


def ranks_text(ranks: "RanksLike") -> str:
    """``4`` or ``(4, 4, 4)`` -> ``"r=4"``; ``(2, 4, 2)`` -> ``"r=2,4,2"``; ``None`` -> ``"r=max"``; ``()`` -> ``""``."""
    if ranks is None:
        return "r=max"
    if isinstance(ranks, int):
        return f"r={ranks}"
    ranks = tuple(int(rank) for rank in ranks)
    if not ranks:
        return ""
    if len(set(ranks)) == 1:
        return f"r={ranks[0]}"
    return "r=" + ",".join(map(str, ranks))


@dataclass(frozen=True)
class TTShape:
    """The shape of a TT-matrix layer: modes and the internal ranks it uses.

    Attributes:
        in_modes: ``(n_1, ..., n_d)``, multiplying to the input features ``N``.
        out_modes: ``(m_1, ..., m_d)``, multiplying to the output features ``M``.
        ranks: the ``d - 1`` internal ranks actually used (already clipped to
            the maximal useful ones; see :meth:`of`).
    """

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    ranks: tuple[int, ...]

    @classmethod
    def of(cls, in_modes: Sequence[int], out_modes: Sequence[int], ranks: "RanksLike" = None) -> "TTShape":
        """The shape with ``ranks`` resolved as a layer resolves them: an int for every
        boundary, one per boundary, or ``None`` for the maximal useful ranks; ranks
        above the maximal useful ones are clipped (see :func:`~ttexplore.tt.ttmath.plan_ranks`).

        Raises:
            ValueError: naming ``in_modes``, ``out_modes`` or ``ranks`` and the fix.
        """
        plan = plan_ranks(in_modes, out_modes, ranks)
        return cls(tuple(int(n) for n in in_modes), tuple(int(m) for m in out_modes), tuple(plan.ranks))

    @property
    def d(self) -> int:
        """Number of cores."""
        return len(self.in_modes)

    @property
    def in_features(self) -> int:
        return prod(self.in_modes)

    @property
    def out_features(self) -> int:
        return prod(self.out_modes)

    @property
    def max_rank(self) -> int:
        """The largest internal rank (1 for a one-core layer)."""
        return max(self.ranks, default=1)

    @property
    def max_useful_ranks(self) -> tuple[int, ...]:
        return tuple(max_useful_ranks(self.in_modes, self.out_modes))

    def core_shapes(self) -> list[tuple[int, int, int, int]]:
        """``(r_{k-1}, n_k, m_k, r_k)`` of every core."""
        return core_shapes(self.in_modes, self.out_modes, self.ranks)

    def param_count(self) -> int:
        """Weights in the cores, ``sum_k r_{k-1} n_k m_k r_k``."""
        return param_count(self.in_modes, self.out_modes, self.ranks)

    # ------------------------------------------------------------ the text form
    @property
    def layer_text(self) -> str:
        """``"4x8x8x4"`` or ``"4x7x4x7->5x5x8x4"``: the shape without ranks (a figure's line)."""
        return layer_text(self.in_modes, self.out_modes)

    @property
    def ranks_text(self) -> str:
        """``"r=4"`` or ``"r=2,4,2"`` ('' for one core)."""
        return ranks_text(self.ranks)

    def __str__(self) -> str:
        """``"4x8x8x4 r=4"``: the shape and its ranks, as every label shows them."""
        return f"{self.layer_text} {self.ranks_text}".strip()
