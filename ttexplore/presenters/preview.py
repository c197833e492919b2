"""What the Explore page shows before any training: presets, a layer's numbers, other shapes.

Pure Python (no torch, no streamlit): every function here runs on each widget
change and must stay instant. The page turns widget values into a
:class:`~ttexplore.runs.config.RunConfig` with :func:`design_config` (which raises
:class:`~ttexplore.runs.config.ConfigError` naming the field and the fix), then asks
:func:`layer_preview` for the numbers and :func:`other_factorizations` for the
shapes to compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

from ttexplore import costmodel
from ttexplore.tt import ttmath
from ttexplore.runs import resources
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import all_kinds
from ttexplore.runs.resources import MemoryEstimate, ResourceError
from ttexplore.runs.data_info import dataset_info
from ttexplore.tt.ttshape import modes_text
from ttexplore.tt.shapes import (MAX_MODES, ShapeSuggestion, balanced_factorization, has_factorization, padded_image_side,
                                   parse_modes, suggest_shapes)

__all__ = [
    "Preset",
    "modes_text",
    "PRESETS",
    "CUSTOM",
    "presets_for",
    "padding_options",
    "design_config",
    "baseline_config",
    "LayerPreview",
    "layer_preview",
    "rank_slider_max",
    "core_rank_limits",
    "other_factorizations",
    "human_count",
    "memory_tile",
    "network_config",
    "next_layer_text",
    "network_rows",
    "MemoryVerdict",
    "memory_side_by_side",
]

#: Name of the "type your own shapes" choice of the preset picker.
CUSTOM = "Custom shapes"

@dataclass(frozen=True)
class Preset:
    """A named tensorization of the hidden layer.

    Attributes:
        name: what the picker shows.
        in_modes, out_modes: the TT modes.
        pad_to: image side after padding (``None``: keep the images).
        note: one sentence on where it comes from.
        more_layers: further hidden layers after this one, in their text form
            (:mod:`ttexplore.runs.kinds`, e.g. ``"tt:8x16x16x16x8->4^5:4"``).
    """

    name: str
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    pad_to: Optional[int]
    note: str = ""
    more_layers: tuple[str, ...] = ()

    @property
    def in_text(self) -> str:
        """The input modes as a user would type them (``"4x8x8x4"``, ``"2^10"``)."""
        return modes_text(self.in_modes)

    @property
    def out_text(self) -> str:
        return modes_text(self.out_modes)

    def fits(self, dataset: str) -> bool:
        """True when the modes multiply to the dataset's features after this preset's padding,
        and that padding is one the dataset offers (:func:`padding_options`)."""
        info = dataset_info(dataset)
        if self.pad_to not in padding_options(dataset):
            return False
        side = self.pad_to if self.pad_to is not None else info.side
        return ttmath.prod(self.in_modes) == info.channels * side * side


#: The shapes of the paper and of the 2018 reproduction's figures (all for 28x28 grey images).
PRESETS: tuple[Preset, ...] = (
    Preset("Paper: pad to 32x32, 4x8x8x4", (4, 8, 8, 4), (4, 8, 8, 4), 32,
           "Novikov et al.'s MNIST net: pad 28→32, a 1024→1024 TT layer"),
    Preset("784 unpadded: 4x7x4x7->5x5x8x4", (4, 7, 4, 7), (5, 5, 8, 4), None,
           "no padding: 784 inputs, 800 hidden units"),
    Preset("Five cores: 4^5", (4,) * 5, (4,) * 5, 32, "five cores of 4×4"),
    Preset("Ten cores: 2^10", (2,) * 10, (2,) * 10, 32, "ten cores of 2×2, the most compressible"),
    Preset("Two cores: 32x32", (32, 32), (32, 32), 32, "two cores: the closest to a low-rank matrix"),
    Preset("Wide and shallow: 4^5 -> 2^18 -> 4^5", (4,) * 5, (8, 16, 16, 16, 8), 32,
           "Novikov et al.'s wide-and-shallow idea: 262,144 hidden units, then a second TT layer back to 1024; "
           "the dense twin has 537 M weights", ("tt:8x16x16x16x8->4^5:4",)),
)


def presets_for(dataset: str) -> list[Preset]:
    """The presets that fit ``dataset``; for other datasets, balanced 4- and 2-mode shapes.

    The first entry is the default of the dataset.
    """
    fitting = [preset for preset in PRESETS if preset.fits(dataset)]
    if fitting:
        return fitting
    info = dataset_info(dataset)
    features = info.features
    generated = []
    for depth in (4, 3, 2):
        if has_factorization(features, depth, min_mode=2):
            modes = balanced_factorization(features, depth)
            generated.append(Preset(f"Balanced {depth} modes: {modes_text(modes)}", modes, modes, None,
                                    f"{info.channels}×{info.side}×{info.side} = {features} inputs, as many hidden units"))
    return generated or [Preset(f"{features}", (features,), (features,), None, "one core: a dense layer")]


def padding_options(dataset: str) -> list[Optional[int]]:
    """Image sides a user may pad to: ``None`` (no padding), then the next power of two when larger."""
    side = dataset_info(dataset).side
    options: list[Optional[int]] = [None]
    padded = padded_image_side(side)
    if padded != side:
        options.append(padded)
    return options


def design_config(
    dataset: str,
    in_modes: "str | Sequence[int]",
    out_modes: "str | Sequence[int]",
    pad_to: Optional[int],
    max_rank: int,
    core_ranks: Optional[Sequence[int]] = None,
    **training: Any,
) -> RunConfig:
    """The validated TT run the Explore page describes.

    Args:
        in_modes, out_modes: shapes as typed (``"4x8x8x4"``) or tuples.
        max_rank: the uniform max TT rank (used when ``core_ranks`` is ``None``).
        core_ranks: one rank per core boundary, overriding ``max_rank``.
        training: other :class:`RunConfig` fields (``epochs``, ``lr``, ``batch_size``, ``seed``, ...).

    Raises:
        ConfigError: naming the bad field with the fix (also for an empty shape).
    """
    ranks: Any = tuple(int(r) for r in core_ranks) if core_ranks else int(max_rank)
    return RunConfig.from_dict({"dataset": dataset, "pad_to": pad_to, "in_modes": in_modes, "out_modes": out_modes,
                                "ranks": ranks, **training})


def baseline_config(config: RunConfig) -> RunConfig:
    """The dense layers of the same sizes, trained the same way (for a side-by-side comparison)."""
    return config.dense_twin().replace(label=(config.label + " baseline").strip())


def network_config(config: RunConfig, more_layers: Sequence[str] = ()) -> RunConfig:
    """``config`` (one hidden layer, as the design widgets describe it) followed by ``more_layers``
    (text forms, ``"dense:256"``, ``"tt:8x16x16x16x8->4^5:4"``).

    Raises:
        ConfigError: naming ``layers[i].<field>`` (``Hidden layer i+1``) and the fix.
    """
    layers = [layer for layer in more_layers if str(layer).strip()]
    if not layers:
        return config
    return config.replace(layers=[config.layers[0], *layers])


def next_layer_text(config: RunConfig) -> Optional[str]:
    """A layer to add after ``config``'s last, as text: back to the network's input width (the wide-and-shallow
    shape), fully connected, of the last layer's kind first, then of each registered kind in turn, each built by its kind from
    the last layer's output (:meth:`~ttexplore.runs.kinds.LayerSpec.suggest`) and offered only when the
    network with it is valid (``"tt:8x16x16x16x8->4^5:4"`` after the wide preset's first layer,
    ``"tt:2^10->2^10:4"`` after ``tt:2^10->2^10:2``, ``"dense:1024"`` after ``dense:97``); ``None`` when no
    layer can be added (the network has :data:`~ttexplore.runs.kinds.MAX_HIDDEN_LAYERS`).

    Complexity: one suggestion and one validation of the network per registered kind at most.
    """
    last, shape = config.layers[-1], config.layer_shapes[-1]
    for kind in sorted(all_kinds(), key=lambda kind: not isinstance(last, kind)):  # stable: registration order after
        layer = kind.suggest(shape, config.in_features, last)
        if layer is None or not layer.flattens:  # an image kind keeps images: it cannot go back to a width
            continue
        try:
            config.replace(layers=[*config.layers, layer])
        except (ConfigError, ValueError):
            continue
        return layer.text()
    return None


def network_rows(config: RunConfig) -> list[dict[str, Any]]:
    """One row per hidden layer (and a total): the layer (with its ranks as used: a clipped rank shows as clipped),
    its sizes, weights, dense weights, compression."""
    widths, shapes = config.layer_widths, config.layer_shapes

    def label(layer: Any, shape: Any) -> str:
        used = layer.ranks_used(shape)
        return layer.with_ranks(used if len(used) > 1 else used[0]).label() if layer.clipping(shape) else layer.label()

    rows = [{"layer": f"{index + 1}: {label(layer, shapes[index])}", "in → out": f"{widths[index]:,} → {widths[index + 1]:,}",
             "weights": layer.params(shapes[index]), "dense weights": layer.dense_params(shapes[index]),
             "compression": layer.params(shapes[index]) / layer.dense_params(shapes[index])}
            for index, layer in enumerate(config.layers)]
    rows.append({"layer": "all hidden layers", "in → out": f"{widths[0]:,} → {widths[-2]:,}",  # every width: the caption
                 "weights": config.layer_params(), "dense weights": config.dense_layer_params(),
                 "compression": config.compression()})
    return rows


@dataclass(frozen=True)
class MemoryVerdict:
    """The memory guard's answer for one network: its estimate, and why it would be refused ('' when allowed)."""

    label: str
    estimate: MemoryEstimate
    refusal: str

    @property
    def allowed(self) -> bool:
        return not self.refusal


def memory_side_by_side(config: RunConfig) -> tuple[MemoryVerdict, MemoryVerdict]:
    """The memory guard on the design and on its dense twin (every hidden layer dense), side by side."""
    verdicts = []
    for label, each in (("TT", config), ("dense", config.dense_twin())):
        estimate = resources.estimate_run_memory(each)
        try:
            resources.check_run_memory(each, estimate=estimate)
            refusal = ""
        except ResourceError as error:
            refusal = str(error)
        verdicts.append(MemoryVerdict(label, estimate, refusal))
    return verdicts[0], verdicts[1]


@dataclass(frozen=True)
class LayerPreview:
    """The numbers of one TT layer design, all from :mod:`ttexplore.tt.ttmath`.

    Attributes:
        config: the design.
        in_features, out_features: ``N`` and ``M`` of the hidden layer.
        tt_params, dense_params: weights (no bias) of the TT and the dense layer.
        compression: rate, TT / dense weights (smaller is smaller).
        compression_factor: dense / TT weights ("482× smaller").
        tt_flops, dense_flops: forward FLOPs for one image (batch 1).
        strategy: the TT forward ``strategy="auto"`` picks for one image.
        costs: :func:`ttexplore.costmodel.strategy_costs` of every concrete strategy at batch 1
            (FLOPs, peak and saved activation bytes, estimated seconds, plan).
        ranks: internal ranks in use; ``requested``: as asked; ``max_useful``: the limits.
        clipped: ``(k, requested, used)`` of each lowered rank.
        clipping_note: a sentence about the clipping ('' when none).
        core_shapes: ``(r_{k-1}, n_k, m_k, r_k)`` of each core.
        memory: the :class:`~ttexplore.runs.resources.MemoryEstimate` of training the design
            (at its batch size), part by part.
        memory_budget: bytes a run may use (:func:`~ttexplore.runs.resources.memory_budget`),
            ``None`` when ``TTEXPLORE_MEMORY_LIMIT`` is not a size.
        memory_warning: '' when the run fits; else why it would be refused and the fix.
    """

    config: RunConfig
    in_features: int
    out_features: int
    tt_params: int
    dense_params: int
    compression: float
    compression_factor: float
    tt_flops: int
    dense_flops: int
    strategy: str
    costs: dict
    ranks: tuple[int, ...]
    requested: tuple[int, ...]
    max_useful: tuple[int, ...]
    clipped: tuple[tuple[int, int, int], ...]
    clipping_note: str
    core_shapes: tuple[tuple[int, int, int, int], ...]
    memory: Optional[MemoryEstimate] = None
    memory_budget: Optional[int] = None
    memory_warning: str = ""

    @property
    def label(self) -> str:
        """``"4x8x8x4"`` or ``"4x7x4x7->5x5x8x4"``, as :class:`~ttexplore.tt.shapes.ShapeSuggestion` labels it."""
        return self.layer.shape_label()

    @property
    def layer(self) -> Any:
        """The TT layer previewed (the network's first hidden layer)."""
        return self.config.layers[0]


def memory_verdict(config: RunConfig) -> "tuple[MemoryEstimate, Optional[int], str]":
    """What training ``config`` would take, the budget it is held to (``None`` when TTEXPLORE_MEMORY_LIMIT is not
    a size) and the guard's refusal in its words (``""`` when allowed): the memory tile's three facts."""
    memory = resources.estimate_run_memory(config)
    budget: Optional[int] = None
    warning = ""
    try:
        budget = resources.memory_budget()
        resources.check_run_memory(config, estimate=memory)
    except ResourceError as error:  # over the budget, or TTEXPLORE_MEMORY_LIMIT is not a size
        warning = str(error)
    return memory, budget, warning


def layer_preview(config: RunConfig) -> LayerPreview:
    """Weights, compression, FLOPs and ranks of the (first) TT layer ``config`` describes.

    Complexity: ``O(d)`` integer arithmetic, plus the cost model's plans at batch 1, at
    the training batch and at the evaluation batch (cached; the same ones training
    uses; the first call for a 10-core shape takes about a second).
    """
    layer = config.layers[0]
    if not layer.has_tt_cores:
        raise ConfigError("layers[0]", f"hidden layer 1 ({layer.label()}) has no TT cores to preview: make it a TT "
                                       "layer, e.g. tt:4x8x8x4:4")
    in_modes, out_modes = layer.in_modes, layer.out_modes
    plan = ttmath.plan_ranks(in_modes, out_modes, layer.ranks)
    in_features, out_features = ttmath.prod(in_modes), ttmath.prod(out_modes)
    tt_params = ttmath.param_count(in_modes, out_modes, plan.ranks)
    dense_params = ttmath.dense_param_count(in_features, out_features)
    costs = costmodel.strategy_costs(in_modes, out_modes, plan.ranks, 1)
    strategy = costmodel.best_strategy(costs)
    memory, budget, warning = memory_verdict(config)
    return LayerPreview(
        config=config,
        in_features=in_features,
        out_features=out_features,
        tt_params=tt_params,
        dense_params=dense_params,
        compression=tt_params / dense_params,
        compression_factor=dense_params / tt_params,
        tt_flops=costs[strategy]["flops"],
        dense_flops=ttmath.dense_flops(in_features, out_features, 1),
        strategy=strategy,
        costs=costs,
        ranks=plan.ranks,
        requested=plan.requested,
        max_useful=plan.max_useful,
        clipped=plan.clipped,
        clipping_note=plan.describe_clipping(),
        core_shapes=tuple(ttmath.core_shapes(in_modes, out_modes, plan.ranks)),
        memory=memory,
        memory_budget=budget,
        memory_warning=warning,
    )


def rank_slider_max(in_modes: Sequence[int], out_modes: Sequence[int], cap: Optional[int] = None) -> int:
    """The top of the max-rank slider: the largest useful rank of any boundary (1,024 in the middle of
    4x8x8x4; a rank above it is clipped anyway), at most ``cap`` when given, and at least 2 (a slider
    needs two values)."""
    limits = ttmath.max_useful_ranks(in_modes, out_modes)
    top = max(limits) if limits else 1
    return max(2, min(cap, top) if cap is not None else top)


def core_rank_limits(in_modes: Sequence[int], out_modes: Sequence[int], cap: Optional[int] = None) -> list[int]:
    """The top of each per-core rank slider: that boundary's maximal useful rank (at most ``cap`` when given)."""
    return [min(cap, limit) if cap is not None else limit for limit in ttmath.max_useful_ranks(in_modes, out_modes)]


#: Per side, how many of the most balanced factorizations are paired at the user's depth and at
#: the other depths: enough to find the cheapest shapes (the cheapest are balanced), few enough
#: to answer within tens of milliseconds when the rank slider moves.
SEARCH_WIDTH, OTHER_DEPTH_WIDTH = 60, 16


@lru_cache(maxsize=256)
def _suggestions(in_features: int, out_features: int, depth: int, rank: int, top: int, width: int) -> tuple[ShapeSuggestion, ...]:
    if not (1 <= depth <= MAX_MODES and has_factorization(in_features, depth) and has_factorization(out_features, depth)):
        return ()  # no factorization into ``depth`` modes: nothing to compare (and no padding hint to compute)
    try:
        return tuple(suggest_shapes(in_features, out_features, d=depth, rank=rank, top=top, max_candidates=width))
    except ValueError:  # no factorization into ``depth`` modes
        return ()


def other_factorizations(
    in_modes: Sequence[int], out_modes: Sequence[int], rank: int, same_depth: int = 5, depths: Sequence[int] = (2, 3, 4, 5, 6, 8, 10)
) -> list[ShapeSuggestion]:
    """Shapes to compare with the user's, priced at the same uniform max ``rank``, fewest weights first.

    The ``same_depth`` cheapest shapes with as many cores as the user's, the
    cheapest of each other depth in ``depths``, and the user's own shape (always
    present, so a chart can highlight it).

    Complexity: at most ``SEARCH_WIDTH**2`` shapes priced at the user's depth and
    ``OTHER_DEPTH_WIDTH**2`` at each other one; cached. Modes beyond
    :data:`~ttexplore.tt.shapes.MAX_MODES` or :data:`~ttexplore.tt.shapes.MAX_FEATURES`
    raise ``ValueError`` (as :func:`~ttexplore.tt.shapes.parse_modes` does).
    """
    in_modes, out_modes = parse_modes(in_modes, "in_modes"), parse_modes(out_modes, "out_modes")
    in_features, out_features = ttmath.prod(in_modes), ttmath.prod(out_modes)
    rank = int(rank)
    own_depth = len(in_modes)
    chosen: dict[str, ShapeSuggestion] = {}
    for item in _suggestions(in_features, out_features, own_depth, rank, same_depth, SEARCH_WIDTH):
        chosen.setdefault(item.label, item)
    for depth in depths:
        if depth != own_depth:
            for item in _suggestions(in_features, out_features, depth, rank, 1, OTHER_DEPTH_WIDTH):
                chosen.setdefault(item.label, item)
    params = ttmath.param_count(in_modes, out_modes, rank)
    own = ShapeSuggestion(in_modes, out_modes, params, params / ttmath.dense_param_count(in_features, out_features))
    chosen[own.label] = own
    return sorted(chosen.values(), key=lambda s: (s.params, len(s.in_modes), s.label))


def human_count(value: float) -> str:
    """``2176`` -> ``"2,176"``; ``1048576`` -> ``"1.05M"``; ``3.2e9`` -> ``"3.2G"`` (for tiles)."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:,.0f}"


def memory_tile(view: LayerPreview) -> dict[str, str]:
    """The "Training memory (est.)" tile: ``value`` (the peak), ``delta`` (the budget and
    whether it fits) and ``help`` (the parts), as strings for ``st.metric``."""
    if view.memory is None:
        return {"value": "?", "delta": "no estimate", "help": ""}
    parts = ", ".join(f"{name.replace('_', ' ')} {resources.human_bytes(size)}"
                      for name, size in view.memory.parts().items() if size)
    if view.memory_budget is None:
        delta = "budget unknown: TTEXPLORE_MEMORY_LIMIT is not a size"
    else:
        verdict = "within" if not view.memory_warning else "over"
        delta = f"{verdict} the {resources.human_bytes(view.memory_budget)} budget"
    return {"value": resources.human_bytes(view.memory.total), "delta": delta,
            "help": f"Peak memory of training this design at batch {view.config.batch_size} (float32): {parts}. "
                    f"Set {resources.ENV_LIMIT} (e.g. 8G) to change the budget."}


def strategy_rows(view: LayerPreview) -> list[dict]:
    """One row per forward strategy for one image: its plan, FLOPs, activation memory and
    estimated time, the one ``auto`` picks first (for the preview's table)."""
    rows = [
        {
            "strategy": name + (" (auto)" if name == view.strategy else ""),
            "plan": cost.get("plan", ""),
            "FLOPs": cost["flops"],
            "peak activations (KiB)": round(cost["peak_bytes"] / 1024, 1),
            "estimated µs": round(cost["seconds"] * 1e6, 1),
        }
        for name, cost in view.costs.items()
    ]
    return sorted(rows, key=lambda row: (not row["strategy"].endswith("(auto)"), row["estimated µs"]))
