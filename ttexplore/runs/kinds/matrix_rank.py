"""The matrix-rank kind: ``W = B A`` of rank ``r`` (``MatrixRankLinear``), the baseline of Novikov et
al.'s Figure 1. Text form ``matrix_rank:WIDTH:RANK`` (``matrix_rank:1024:4``; ``matrix-rank`` and
``mr`` read too). A rank above ``min(N, M)`` adds weights and no expressive power: it is clipped
there, as TT ranks are clipped to their maximal useful ones, with one warning when the layer is built.
Pure Python at import."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Union

from ttexplore.tt import ttmath
from ttexplore.tt.limits import MAX_FEATURES, limit_text
from ttexplore.runs.fields import short_repr
from ttexplore.runs.kinds.base import (FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, check_width, checked,
                                       features_of, is_whole, suggested_width, whole_value)
from ttexplore.runs.kinds.dense import DenseLayerSpec, fc_width

__all__ = ["MatrixRankLayerSpec", "DEFAULT_MATRIX_RANK"]

#: The rank of a matrix-rank layer typed without one.
DEFAULT_MATRIX_RANK = 4


@dataclass(frozen=True)
class MatrixRankLayerSpec(LayerSpec):
    """``x -> B (A x)``: ``A`` is ``r x N``, ``B`` is ``width x r``, ``r`` = ``min(rank, N, width)``.

    Complexity: ``r (N + M)`` weights, ``2 r (N + M)`` FLOPs per example.
    """

    width: int = 1024
    rank: int = DEFAULT_MATRIX_RANK

    name = "matrix_rank"
    aliases = ("matrix-rank", "mr")
    syntax = "matrix_rank:WIDTH:RANK"
    example = "matrix_rank:1024:4"
    title = "matrix rank"
    keys = ("width", "matrix_rank")
    reads = ("width", "out_modes", "matrix_rank")
    one_layer_form = True

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "MatrixRankLayerSpec":
        place = Place.of(where)
        width = fc_width(values, place, cls.name, cls.example)
        if width is None:
            raise place.error("width", f"{place.name('width')} is missing: a matrix_rank layer needs its output width, "
                                       f"e.g. {cls.example}")
        rank = whole_value(values.get("matrix_rank", DEFAULT_MATRIX_RANK), place, "matrix_rank",
                           f"write the rank as a whole number, e.g. {cls.example}")
        return cls(width, DEFAULT_MATRIX_RANK if rank is None else rank)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "width": self.width, "matrix_rank": self.rank}

    def text(self) -> str:
        return f"matrix_rank:{self.width}:{self.rank}"

    # ------------------------------------------------------------ sizes
    def used_rank(self, in_shape: Shape) -> int:
        """``min(rank, N, width)``: the rank the built layer has."""
        return min(self.rank, features_of(in_shape), self.width)

    def out_shape(self, in_shape: Shape) -> Shape:
        return (self.width,)

    def params(self, in_shape: Shape) -> int:
        return ttmath.matrix_rank_param_count(features_of(in_shape), self.width, self.used_rank(in_shape))

    def dense_twin(self) -> DenseLayerSpec:
        return DenseLayerSpec(self.width)

    def flops(self, in_shape: Shape) -> int:
        return 2 * self.used_rank(in_shape) * (features_of(in_shape) + self.width)

    def forward_calls(self) -> int:
        """``A x``, then ``B (A x)``."""
        return 2

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """``A`` and ``B`` and the bias; ``A x`` (kept for ``B``'s gradient) and, training, its gradient."""
        rank = self.used_rank(in_shape)
        work = (2 if training else 1) * batch * rank * FLOAT_BYTES
        largest = max(rank * max(features_of(in_shape), self.width), self.width)
        return LayerMemory(self.params(in_shape) + self.width, largest, work)

    # ------------------------------------------------------------ names
    def label(self) -> str:
        return f"matrix rank {self.width} r={self.rank}"

    def describe(self, in_shape: Shape) -> str:
        return f"matrix-rank r={self.used_rank(in_shape)} {features_of(in_shape)}->{self.width}"

    def shrink_hint(self) -> str:
        return f"lower matrix_rank (now {self.rank:,}) or use a narrower hidden layer"

    # ------------------------------------------------------------ checks and ranks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        check_width(self.width, place)
        if not is_whole(self.rank):
            raise place.error("matrix_rank", f"matrix_rank {short_repr(self.rank)} must be a whole number, e.g. 4")
        if not 1 <= self.rank <= MAX_FEATURES:
            raise place.error("matrix_rank", f"matrix_rank {self.rank:,} must be between 1 and "
                                             f"{limit_text(MAX_FEATURES)}, e.g. 4")

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> Optional["MatrixRankLayerSpec"]:
        """``matrix_rank:WIDTH:R``: ``width`` wide when given, else as wide as the dense layer suggested there
        (:func:`~.base.suggested_width`); at the previous matrix-rank layer's rank, else :data:`DEFAULT_MATRIX_RANK`."""
        rank = previous.rank if isinstance(previous, MatrixRankLayerSpec) else DEFAULT_MATRIX_RANK
        return checked(cls(suggested_width(in_shape) if width is None else width, rank), in_shape)

    @property
    def rank_setting(self) -> int:
        return self.rank

    def ranks_used(self, in_shape: Shape) -> tuple[int, ...]:
        return (self.used_rank(in_shape),)

    def clipping(self, in_shape: Shape) -> tuple[tuple[int, int, int], ...]:
        used = self.used_rank(in_shape)
        return ((1, self.rank, used),) if used != self.rank else ()

    def with_ranks(self, ranks: Any) -> "MatrixRankLayerSpec":
        """The same layer at rank ``ranks`` (one int; of several, the largest)."""
        rank = max(ranks) if isinstance(ranks, (tuple, list)) else ranks
        return replace(self, rank=int(rank))

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """A ``MatrixRankLinear`` of rank ``min(rank, N, width)`` (one warning when that clips), ``W = B A``
        with the std of ``init``, drawn from ``generator``."""
        from ttexplore.nn.layers import MatrixRankLinear

        used = self.used_rank(in_shape)
        if used != self.rank:
            warnings.warn(f"matrix rank layer: rank {self.rank} is above the full rank min(N, M) = {used} of a "
                          f"{features_of(in_shape)} -> {self.width} layer: clipped to {used} (more would only add weights)",
                          UserWarning, stacklevel=2)
        layer = MatrixRankLinear(features_of(in_shape), self.width, used, init=init)
        layer.reset_parameters(generator=generator)
        if dtype is not None or device is not None:
            layer = layer.to(device=device, dtype=dtype)
        return layer
