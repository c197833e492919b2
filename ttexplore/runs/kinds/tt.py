"""The TT kind: a fully-connected layer whose ``M x N`` weight is a TT-matrix (``TTLinear``,
Novikov et al. 2015). Text form ``tt:IN[->OUT][:RANKS]``: ``tt:4x8x8x4`` (output modes as the input's,
max rank 4), ``tt:4^5->8x16x16x16x8:4``, ``tt:4x8x8x4:2,4,2``, ``tt:4x8x8x4:max``. Pure Python at import."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Union

from ttexplore.tt import ttmath
from ttexplore.tt.limits import MAX_FEATURES, limit_text
from ttexplore.tt.shapes import balanced_factorization, check_layer_side, default_modes, has_factorization
from ttexplore.tt.ttshape import TTShape, layer_text, modes_text, ranks_text
from ttexplore.runs.fields import is_huge, short_repr
from ttexplore.runs.kinds.base import (FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, check_modes_type, checked,
                                       example_modes, features_of, is_whole, modes_field, ranks_field, suggested_width,
                                       width_value)
from ttexplore.runs.kinds.dense import DenseLayerSpec

__all__ = ["TTLayerSpec", "DEFAULT_RANK"]

#: The max rank of a TT layer typed without one (``tt:4x8x8x4``).
DEFAULT_RANK = 4

RanksSetting = Union[int, tuple[int, ...], None]


@dataclass(frozen=True)
class TTLayerSpec(LayerSpec):
    """A TT layer: cores ``(r_{k-1}, n_k, m_k, r_k)`` for ``in_modes`` ``(n_1..n_d)``, ``out_modes``
    ``(m_1..m_d)`` and ``ranks`` (one max rank, one per core boundary, or ``None`` for the maximal useful
    ones; ranks above those are clipped when the layer is built, and :meth:`clipping` says which).

    Complexity: ``sum_k r_{k-1} n_k m_k r_k`` weights; FLOPs those of the forward the cost model picks.
    """

    in_modes: tuple[int, ...] = (4, 8, 8, 4)
    out_modes: tuple[int, ...] = (4, 8, 8, 4)
    ranks: RanksSetting = DEFAULT_RANK

    name = "tt"
    syntax = "tt:IN[->OUT][:RANKS]"
    example = "tt:4x8x8x4:4"
    title = "TT"
    keys = ("in_modes", "out_modes", "ranks")
    reads = ("in_modes", "out_modes", "ranks", "width")
    has_tt_cores = True
    one_layer_form = True

    # ------------------------------------------------------------ reading and writing
    @classmethod
    def parse(cls, body: str, where: "Union[int, Place]" = 0) -> "TTLayerSpec":
        """``"4x8x8x4->2^10:2,4,2"`` (the text after ``tt:``)."""
        place = Place.of(where)
        parts = [part.strip() for part in body.split(":")]
        if len(parts) > 2:
            raise place.error("", f"tt:{body} has {len(parts)} parts after tt: write {cls.syntax}, e.g. {cls.example}")
        values: dict[str, Any] = {}
        if parts[0]:
            left, arrow, right = parts[0].partition("->")
            if arrow and not right.strip():
                raise place.error("out_modes", f"tt:{body} has nothing after '->': write the output modes there "
                                               f"(e.g. tt:{left.strip() or '4x8x8x4'}->4x8x8x4), or leave out '->' for "
                                               "output modes equal to the input modes")
            values["in_modes"], values["out_modes"] = left, right or left
        if len(parts) > 1:
            values["ranks"] = parts[1]
        return cls.from_values(values, place)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "TTLayerSpec":
        place = Place.of(where)
        in_modes = modes_field(values.get("in_modes"), place, "in_modes")
        out_modes = modes_field(values.get("out_modes"), place, "out_modes")
        if in_modes is None:
            raise place.error("in_modes", f"{place.name('in_modes')} is missing: a TT layer needs input modes, "
                                          "e.g. tt:4x8x8x4 or tt:4x8x8x4->2^10")
        out_modes = out_modes if out_modes is not None else in_modes
        width = width_value(values.get("width"), place, cls.name, cls.example)
        if width is not None and width != ttmath.prod(out_modes):
            raise place.error("width", f"width {width} disagrees with out_modes {modes_text(out_modes)} "
                                       f"(= {ttmath.prod(out_modes)}): leave width out for a TT layer")
        ranks = ranks_field(values.get("ranks", DEFAULT_RANK), place)
        return cls(in_modes, out_modes, ranks)

    def to_dict(self) -> dict[str, Any]:
        ranks = list(self.ranks) if isinstance(self.ranks, tuple) else self.ranks
        return {"kind": self.name, "in_modes": list(self.in_modes), "out_modes": list(self.out_modes), "ranks": ranks}

    def text(self) -> str:
        rank = ranks_text(self.ranks)[2:] if self.ranks is not None else "max"
        return f"tt:{layer_text(self.in_modes, self.out_modes)}:{rank}"

    # ------------------------------------------------------------ sizes
    def out_shape(self, in_shape: Shape) -> Shape:
        return (ttmath.prod(self.out_modes),)

    def params(self, in_shape: Shape) -> int:
        return ttmath.param_count(self.in_modes, self.out_modes, self.ranks)

    def dense_twin(self) -> DenseLayerSpec:
        return DenseLayerSpec(ttmath.prod(self.out_modes))

    def costs(self, batch: int, training: bool = False, input_grad: bool = True) -> dict[str, dict]:
        """The cost model's prices of every forward strategy at ``batch`` (FLOPs, bytes, seconds; cached)."""
        from ttexplore import costmodel

        return costmodel.strategy_costs(self.in_modes, self.out_modes, self.ranks_used(()), batch, FLOAT_BYTES,
                                        training=training, input_grad=input_grad)

    def flops(self, in_shape: Shape) -> int:
        """FLOPs of one example's forward by the strategy ``auto`` picks for one example."""
        from ttexplore.costmodel import best_strategy

        costs = self.costs(1)
        return int(costs[best_strategy(costs)]["flops"])

    def forward_calls(self) -> int:
        """One GEMM per core (a sweep's step)."""
        return len(self.in_modes)

    def memory(self, in_shape: Shape, batch: int, training: bool = True, input_grad: bool = False,
               strategy: str = "auto") -> LayerMemory:
        """Cores and bias; the peak intermediates (and, training, what the backward keeps) of the forward
        ``strategy`` from the cost model, the same call the forward makes. ``auto`` trains with the cost
        model's pick; at inference it times the near ties (:func:`ttexplore.costmodel.near_ties`) and keeps
        the fastest, so the largest of their intermediates is priced (a 1000-row evaluation of the paper's
        layer at rank 2 sweeps the cores holding about 16 MiB; at rank 8 it rebuilds ``W``, 8 MiB)."""
        from ttexplore.costmodel import best_strategy, near_ties

        shapes = ttmath.core_shapes(self.in_modes, self.out_modes, self.ranks)
        costs = self.costs(batch, training, input_grad)
        if strategy in costs:
            work = int(costs[strategy]["peak_bytes"]) + (int(costs[strategy]["saved_bytes"]) if training else 0)
        elif training:
            chosen = costs[best_strategy(costs)]
            work = int(chosen["peak_bytes"]) + int(chosen["saved_bytes"])
        else:
            work = max(int(costs[name]["peak_bytes"]) for name in near_ties(costs))
        out = ttmath.prod(self.out_modes)
        return LayerMemory(self.params(in_shape) + out, max([ttmath.prod(shape) for shape in shapes] + [out]), work)

    # ------------------------------------------------------------ names
    def label(self) -> str:
        return f"TT {layer_text(self.in_modes, self.out_modes)} {ranks_text(self.ranks)}"

    def shape_label(self) -> str:
        return layer_text(self.in_modes, self.out_modes)

    def part_label(self) -> str:
        return layer_text(self.in_modes, self.out_modes)

    def describe(self, in_shape: Shape) -> str:
        """``"TT 4x8x8x4 r=4"`` with the ranks as used (clipped), ``"TT 4x8x8x4 r=max"`` when none were given."""
        if self.ranks is None:
            return f"TT {layer_text(self.in_modes, self.out_modes)} r=max"
        return f"TT {TTShape.of(self.in_modes, self.out_modes, self.ranks)}"

    def shrink_hint(self) -> str:
        return "lower the ranks or choose smaller modes"

    # ------------------------------------------------------------ checks
    def check(self, in_shape: Shape, where: "Union[int, Place]" = 0) -> None:
        place = Place.of(where)
        features = features_of(in_shape)
        for name in ("in_modes", "out_modes"):
            check_modes_type(getattr(self, name), place, name)
            if is_huge(getattr(self, name)):
                raise place.error(name, f"{place.name(name)} is far too large: choose modes of at most "
                                        f"{limit_text(MAX_FEATURES)} features")
            try:
                check_layer_side(getattr(self, name), place.name(name))
            except ValueError as error:
                raise place.error(name, str(error)) from None
        if ttmath.prod(self.in_modes) != features:
            raise place.error("in_modes", f"in_modes {modes_text(self.in_modes)} multiply to {ttmath.prod(self.in_modes)}, "
                                          f"but {place.source} gives {features} features: try "
                                          f"{example_modes(features, len(self.in_modes))}")
        if len(self.out_modes) != len(self.in_modes):
            raise place.error("out_modes", f"out_modes {modes_text(self.out_modes)} has {len(self.out_modes)} modes but "
                                           f"in_modes {modes_text(self.in_modes)} has {len(self.in_modes)}: give both the "
                                           f"same number, e.g. {example_modes(ttmath.prod(self.out_modes), len(self.in_modes))}")
        ranks = self.ranks if isinstance(self.ranks, tuple) else (self.ranks,)
        if self.ranks is not None and not all(is_whole(rank) for rank in ranks):
            raise place.error("ranks", f"ranks {short_repr(self.ranks)} must be a whole number, one per core boundary, "
                                       "or None (max)")
        if is_huge(self.ranks):
            raise place.error("ranks", "ranks is far too large")
        if any(rank is not None and rank > MAX_FEATURES for rank in ranks):
            raise place.error("ranks", f"ranks {ranks_text(self.ranks)[2:]} has a rank above {limit_text(MAX_FEATURES)}: "
                                       "ranks above the maximal useful ones are clipped anyway, use 'max'")
        try:
            ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks)
        except ValueError as error:
            raise place.error("ranks", str(error)) from None

    # ------------------------------------------------------------ ranks
    @property
    def rank_setting(self) -> RanksSetting:
        return self.ranks

    def ranks_used(self, in_shape: Shape = ()) -> tuple[int, ...]:
        return ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks).ranks

    def clipping(self, in_shape: Shape = ()) -> tuple[tuple[int, int, int], ...]:
        return ttmath.plan_ranks(self.in_modes, self.out_modes, self.ranks).clipped

    def with_ranks(self, ranks: Any) -> "TTLayerSpec":
        return replace(self, ranks=ranks_field(ranks, Place()))

    @classmethod
    def suggest(cls, in_shape: Shape, width: Optional[int] = None,
                previous: Optional[LayerSpec] = None) -> Optional["TTLayerSpec"]:
        """A TT layer at rank :data:`DEFAULT_RANK` that fits after ``in_shape`` (checked); ``None`` when no such
        shape exists (a prime number of features, say).

        To ``width`` features when given (what "Add a layer" asks: back to the input's width): after a TT layer
        from its output modes to ``width`` in as many modes, else balanced modes on both sides with 4, 3, 2, 5 or 6
        cores (the first depth both sides factor into, modes of at least 2).

        Without ``width``, the kind's own choice: after a vector as wide as it, both sides its balanced modes
        (``tt:4x8x8x4:4`` after 1024 features); after images ``(C, H, W)``, flattened channel-major: the channels'
        modes largest first, then the ``H W`` pixels as the last mode (``8x4x4x9`` after ``128x3x3``), to a
        256-wide output in as many modes (the side with fewer padded with 1s).

        Complexity: at most six factorizations of each side (each bounded, :mod:`ttexplore.tt.factor`).
        """
        if width is None:
            return checked(cls._own_choice(in_shape), in_shape)
        features = features_of(in_shape)
        candidates = []
        modes = getattr(previous, "out_modes", None) if previous is not None and previous.has_tt_cores else None
        if modes and len(modes) > 1 and ttmath.prod(modes) == features and has_factorization(width, len(modes)):
            candidates.append((tuple(modes), balanced_factorization(width, len(modes))))
        for depth in (4, 3, 2, 5, 6):
            if has_factorization(features, depth) and has_factorization(width, depth):
                candidates.append((balanced_factorization(features, depth), balanced_factorization(width, depth)))
        for in_modes, out_modes in candidates:
            layer = checked(cls(in_modes, out_modes, DEFAULT_RANK), in_shape)
            if layer is not None:
                return layer
        return None

    @classmethod
    def _own_choice(cls, in_shape: Shape) -> "TTLayerSpec":
        """:meth:`suggest` without a width (see there)."""
        if len(in_shape) == 1:
            modes = default_modes(features_of(in_shape))
            return cls(modes, modes, DEFAULT_RANK)
        channels, pixels = int(in_shape[0]), int(in_shape[1]) * int(in_shape[2])
        if channels == 1:  # grey images straight in: the pixels' balanced modes
            in_modes = default_modes(pixels)
        else:
            in_modes = tuple(sorted(default_modes(channels, 3), reverse=True)) + ((pixels,) if pixels > 1 else ())
        out_modes = tuple(sorted(default_modes(suggested_width(in_shape), len(in_modes))))
        count = max(len(in_modes), len(out_modes))
        return cls(in_modes + (1,) * (count - len(in_modes)), out_modes + (1,) * (count - len(out_modes)), DEFAULT_RANK)

    def tt_shape(self) -> TTShape:
        """The :class:`~ttexplore.tt.ttshape.TTShape` of the layer (ranks as used, clipped)."""
        return TTShape.of(self.in_modes, self.out_modes, self.ranks)

    # ------------------------------------------------------------ the module
    def build(self, in_shape: Shape, init: str, strategy: str, generator: Any, dtype: Any = None,
              device: Any = None) -> Any:
        """A ``TTLinear`` whose rebuilt ``W`` has the std of ``init``, its cores drawn from ``generator``."""
        from ttexplore.nn.layers import TTLinear

        layer = TTLinear(self.in_modes, self.out_modes, self.ranks, init=init, strategy=strategy, dtype=dtype,
                         device=device)
        layer.reset_parameters(generator=generator)
        return layer
