"""What a sweep is: its TT shapes, its grid of runs, and the spec that expands into that grid.

A :class:`SweepSpec` (datasets x shapes x ranks x seeds, with baselines)
expands (:func:`expand`) into :class:`SweepCell` s, one validated
:class:`~ttexplore.runs.config.RunConfig` each: every TT shape at every max rank
and seed, plus the two baselines of the same sizes (the dense layer, and the
matrix-rank layer ``N x r, r x M`` at the same ranks). A sweep of a network (``network``:
a run preset that sizes itself, ``tt-convnet``, or layers as text) sets every layer with TT
cores to each rank instead (a TT convolution, a TT layer), beside its dense twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from ttexplore.tt import ttmath
from ttexplore.tt.shapes import parse_modes
from ttexplore.tt.ttshape import TTShape, layer_text
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.runs.kinds import (DenseLayerSpec, LayerSpec, MatrixRankLayerSpec, Shape, TTLayerSpec, all_kinds, kind_named,
                                  parse_layers)
from ttexplore.runs.presets import RUN_PRESETS, preset_values

__all__ = ["SweepShape", "SweepCell", "SweepGrid", "SweepSpec", "parse_shapes", "parse_int_list", "make_spec", "expand",
           "estimated_cost", "cell_kind", "is_network", "network_layers", "DENSE_TWIN"]

#: What a network sweep's legend calls its dense twin: ``"tt-convnet dense twin"``.
DENSE_TWIN = "dense twin"


def is_network(config: RunConfig) -> bool:
    """Whether a cell is a network's (several hidden layers, or a layer that reads images): its legend entry is the
    network's name (``config.label``) and its figure counts every parameter of it."""
    return len(config.layers) > 1 or any(not layer.flattens for layer in config.layers)


def cell_kind(config: RunConfig) -> str:
    """The kind a cell is counted and priced by: its first layer with TT cores (a CNN's TT convolution), else its
    first layer (``"tt"``, ``"ttconv"``, ``"dense"``, ``"conv"``)."""
    return next((layer.name for layer in config.layers if layer.has_tt_cores), config.layers[0].name)


@dataclass(frozen=True)
class SweepShape:
    """One TT shape of a sweep: input modes and output modes (equal for a layer that keeps its width)."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]

    @property
    def label(self) -> str:
        """The shape's text (:func:`~ttexplore.tt.ttshape.layer_text`): ``"4x8x8x4"``, ``"2^10"``,
        ``"8x8x8x6->10x10x10x10"``."""
        return layer_text(self.in_modes, self.out_modes)

    @property
    def hidden(self) -> int:
        """Width of the layer's output, ``prod(out_modes)``."""
        return ttmath.prod(self.out_modes)

    def at_rank(self, rank: "int | Sequence[int]") -> TTShape:
        """The layer this shape builds at max TT rank ``rank``, ranks clipped to the maximal useful ones.

        Raises:
            ConfigError: field ``"ranks"``, naming the shape, for a rank below 1 or of the wrong length.
        """
        try:
            return TTShape.of(self.in_modes, self.out_modes, rank)
        except ValueError as error:
            raise ConfigError("ranks", f"{self.label}: {error}") from None


def parse_shapes(text: "str | Iterable[str]") -> list[SweepShape]:
    """Parse ``"4x4x4,8x8"`` or ``"8x8x8x6->10^4, 32x16x6:100x10x10"`` into shapes.

    Shapes are separated by commas, semicolons or new lines; each is ``IN`` (the
    output modes equal the input modes) or ``IN->OUT`` / ``IN:OUT``, each side
    as :func:`ttexplore.tt.shapes.parse_modes` reads it (``2^10`` is ten 2s).
    Duplicates are dropped, the order kept.

    Raises:
        ConfigError: field ``"shapes"``, naming the bad shape.
    """
    if isinstance(text, str):
        tokens = text.replace(";", ",").replace("\n", ",").split(",")
    else:
        tokens = list(text)
    shapes: list[SweepShape] = []
    for token in (token.strip() for token in tokens):
        if not token:
            continue
        sides = token.replace("->", ":").replace("→", ":").split(":")
        if len(sides) > 2:
            raise ConfigError("shapes", f"shape {token!r} has more than one '->': write IN or IN->OUT, e.g. 8x8x8x6->10^4")
        try:
            in_modes = parse_modes(sides[0], "input modes")
            out_modes = parse_modes(sides[1], "output modes") if len(sides) == 2 else in_modes
        except ValueError as error:
            raise ConfigError("shapes", f"shape {token!r}: {error}") from None
        if len(in_modes) != len(out_modes):
            raise ConfigError("shapes", f"shape {token!r}: {len(in_modes)} input modes but {len(out_modes)} output modes; "
                                        "give both sides the same number of modes")
        shape = SweepShape(in_modes, out_modes)
        if shape not in shapes:
            shapes.append(shape)
    if not shapes:
        raise ConfigError("shapes", "no shapes given: list them separated by commas, e.g. 4x8x8x4,32x32")
    return shapes


#: The most values a ranks or seeds list may hold (ranges included), and the largest value in one.
MAX_LIST, MAX_LIST_VALUE = 256, 2 ** 40

#: The most cells a sweep may have (every cell is a training run).
MAX_CELLS = 5000


def parse_int_list(text: "str | int | Iterable[int]", field_name: str, minimum: int = 0) -> tuple[int, ...]:
    """Parse ``"1,2,4"`` or ``"1-4"`` (or a list) into distinct ints, order kept.

    Raises:
        ConfigError: naming ``field_name`` when a value is not a whole number, is below ``minimum`` or above
            :data:`MAX_LIST_VALUE`, or the list holds more than :data:`MAX_LIST` values (checked before a
            range is expanded).
    """
    if isinstance(text, int):
        items: list[int] = [text]
    elif isinstance(text, str):
        items = []
        for token in (token.strip() for token in text.replace(";", ",").split(",")):
            if not token:
                continue
            low, dash, high = token.partition("-")
            try:
                if dash:
                    start, stop = int(low), int(high)
                    if stop < start:
                        raise ValueError
                    if stop - start + 1 > MAX_LIST - len(items):
                        raise ConfigError(field_name, f"{field_name} {text[:40]!r} holds more than {MAX_LIST} values: "
                                                      "give fewer, e.g. 1-8")
                    items.extend(range(start, stop + 1))
                else:
                    items.append(int(token))
            except ConfigError:
                raise
            except ValueError:
                raise ConfigError(field_name, f"{field_name} {text!r} is not understood: write whole numbers like 1,2,4 or a range 1-4") from None
    else:
        items = [int(value) for value in text]
    values = tuple(dict.fromkeys(items))
    if not values:
        raise ConfigError(field_name, f"{field_name} is empty: give at least one number, e.g. 1-4")
    if len(values) > MAX_LIST:
        raise ConfigError(field_name, f"{field_name} holds {len(values)} values: give at most {MAX_LIST}")
    if min(values) < minimum:
        raise ConfigError(field_name, f"{field_name} {min(values)} is below {minimum}")
    if max(values) > MAX_LIST_VALUE:
        raise ConfigError(field_name, f"{field_name} {max(values):.3g} is above {MAX_LIST_VALUE:,} (2^40)")
    return values



@dataclass(frozen=True)
class SweepCell:
    """One run of a sweep.

    Attributes:
        config: the validated run.
        shape: the legend entry it belongs to (:attr:`SweepShape.label`, ``"dense"``, ``"matrix rank"``).
        rank: the max TT rank actually used (after clipping), the matrix rank, or ``None`` (dense).
    """

    config: RunConfig
    shape: str
    rank: Optional[int]

    @property
    def key(self) -> str:
        """:meth:`RunConfig.key`: what resume matches on."""
        return self.config.key()

    def describe(self) -> str:
        """``"4x8x8x4 r=2 (mnist5k, seed 0)"``."""
        rank = f" r={self.rank}" if self.rank is not None else ""
        return f"{self.shape}{rank} ({self.config.dataset}, seed {self.config.seed})"


@dataclass(frozen=True)
class SweepGrid:
    """The cells of a sweep and what expanding it had to say (clipped ranks, skipped baselines)."""

    cells: tuple[SweepCell, ...]
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Cells per kind of hidden layer, in the order the kinds are registered, e.g.
        ``{"tt": 24, "dense": 1, "matrix_rank": 4}`` (kinds without cells left out)."""
        counts = {kind.name: 0 for kind in all_kinds()}
        for cell in self.cells:
            name = cell_kind(cell.config)
            counts[name] = counts.get(name, 0) + 1
        return {name: count for name, count in counts.items() if count}

    def counts_text(self) -> str:
        """:meth:`counts` for people: ``"24 TT, 1 dense, 4 matrix rank"``."""
        return ", ".join(f"{count} {kind_named(name).title}" for name, count in self.counts().items())


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: datasets x shapes x ranks x seeds (+ baselines), trained alike.

    Attributes:
        name: the sweep's name in the run store (resume matches cells within it).
        datasets: dataset names; every shape must fit every dataset.
        shapes: the TT shapes.
        ranks: max TT ranks (also the matrix ranks of the matrix-rank baseline).
        seeds: one run per seed for every cell.
        baselines: add, for each hidden size, the dense layer and the matrix-rank layers.
        epochs, lr, batch_size, train_limit, evals_per_epoch: as in :class:`RunConfig`
            (one evaluation per epoch keeps sweeps fast).
        pad_to: image side after padding; ``None`` uses the dataset's default
            (28-pixel images padded to 32, as the 2018 reproduction did).
        max_dense_weights: skip a dense baseline larger than this (3072 x 10^5 does
            not train on a CPU); the skip is reported in :attr:`SweepGrid.notes`.
        network: instead of ``shapes``, a network whose layers with TT cores take each rank: a run preset that
            sizes itself for the dataset (``"tt-convnet"``) or its layers as text (``"conv:32:3; pool:2; ..."``);
            its baseline is its dense twin. ``""``: a sweep of shapes.
    """

    name: str
    datasets: tuple[str, ...]
    shapes: tuple[SweepShape, ...]
    ranks: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    baselines: bool = True
    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 64
    train_limit: Optional[int] = None
    evals_per_epoch: int = 1
    pad_to: Optional[int] = None
    max_dense_weights: int = 50_000_000
    network: str = ""

    @property
    def network_name(self) -> str:
        """How the legend names the network: the preset's name, else ``"network"``."""
        return self.network.strip() if self.network.strip() in RUN_PRESETS else "network"

    def training_values(self) -> dict[str, Any]:
        """The :class:`RunConfig` fields every cell shares."""
        values: dict[str, Any] = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                                  "train_limit": self.train_limit, "evals_per_epoch": self.evals_per_epoch}
        if self.pad_to is not None:
            values["pad_to"] = self.pad_to
        return values


def expand(spec: SweepSpec) -> SweepGrid:
    """The cells of ``spec``: TT cells (dataset, shape, rank, seed order), then the baselines.

    A rank above a shape's maximal useful ranks is clipped (the cell records
    the max rank it really uses), so two ranks that build the same network
    give one cell; cells with equal :meth:`RunConfig.key` appear once.
    Baselines: for every dataset and distinct hidden size, one dense layer and
    one matrix-rank layer per rank.

    Raises:
        ConfigError: ``"datasets"``, ``"shapes"``, ``"ranks"``, ... naming what does not fit.

    Complexity: ``O(datasets * (shapes + hidden sizes) * ranks * seeds)`` configs.
    """
    if not spec.datasets:
        raise ConfigError("dataset", "no dataset given: choose one of " + ", ".join(DATASETS))
    for dataset in spec.datasets:
        if dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
    if not spec.shapes and not spec.network:
        raise ConfigError("shapes", "no shapes given: list them separated by commas, e.g. 4x8x8x4,32x32")
    most = len(spec.datasets) * max(len(spec.shapes), 1) * len(spec.ranks) * len(spec.seeds) * (2 if spec.baselines else 1)
    if most > MAX_CELLS:  # counted before any config is built (an upper bound: clipped ranks merge cells)
        raise ConfigError("ranks", f"the grid has up to {most:,} cells (datasets x shapes x ranks x seeds"
                                   f"{' x 2 with the baselines' if spec.baselines else ''}), more than {MAX_CELLS:,} runs: "
                                   "give fewer ranks, seeds or shapes")
    cells: dict[str, SweepCell] = {}
    notes: list[str] = []
    for dataset in spec.datasets:
        if spec.network:
            dataset_cells = _network_cells(spec, dataset, notes)
        else:
            dataset_cells = _tt_cells(spec, dataset, notes)
            if spec.baselines:
                dataset_cells += _baseline_cells(spec, dataset, notes)
        for cell in dataset_cells:
            cells.setdefault(cell.key, cell)
    return SweepGrid(tuple(cells.values()), tuple(dict.fromkeys(notes)))


def _tt_cells(spec: SweepSpec, dataset: str, notes: list[str]) -> list[SweepCell]:
    """The TT cells of ``spec`` on ``dataset`` in shape, rank, seed order; a clipped rank adds a line to ``notes``."""
    cells, shared = [], spec.training_values()
    for shape in spec.shapes:
        for rank in spec.ranks:
            tt_shape = shape.at_rank(rank)
            used = tt_shape.max_rank
            if used != rank:
                notes.append(f"{shape.label}: rank {rank} is above the maximal useful ranks "
                             f"{','.join(map(str, tt_shape.max_useful_ranks))}; it trains as rank {used}")
            for seed in spec.seeds:
                try:
                    config = RunConfig.for_dataset(dataset, layers=[TTLayerSpec(shape.in_modes, shape.out_modes, used)],
                                                   seed=seed, **shared)
                except ConfigError as error:
                    if error.field.endswith("_modes"):
                        raise ConfigError("shapes", f"shape {shape.label} does not fit {dataset}: {error}") from None
                    raise
                cells.append(SweepCell(config, shape.label, used))
    return cells


def _baseline_cells(spec: SweepSpec, dataset: str, notes: list[str]) -> list[SweepCell]:
    """For every distinct hidden size of ``spec``'s shapes: the dense cells, then the matrix-rank cells per rank.

    Labels get a ``" ->M"`` suffix when the shapes have several hidden sizes. A
    dense layer over ``spec.max_dense_weights`` is left out, with a line in ``notes``; a
    matrix rank above the full rank ``min(N, M)`` is clipped to it (as TT ranks are clipped
    to their maximal useful ones), with a line in ``notes``.
    """
    cells = []
    hidden_sizes = list(dict.fromkeys(shape.hidden for shape in spec.shapes))
    for hidden in hidden_sizes:
        suffix = "" if len(hidden_sizes) == 1 else f" ->{hidden}"
        base = RunConfig.for_dataset(dataset, layers=[DenseLayerSpec(hidden)], **spec.training_values())
        if base.in_features * hidden > spec.max_dense_weights:
            notes.append(f"dense baseline {base.in_features}x{hidden} skipped: {base.in_features * hidden:,} weights "
                         f"is more than {spec.max_dense_weights:,}")
        else:
            cells += [SweepCell(base.replace(seed=seed), DenseLayerSpec.title + suffix, None) for seed in spec.seeds]
        full = min(base.in_features, hidden)  # a matrix rank above min(N, M) adds weights, not expressive power
        for rank in spec.ranks:
            used = min(rank, full)
            if used != rank:
                notes.append(f"matrix-rank baseline {base.in_features}x{hidden}: rank {rank} is above the full rank "
                             f"{full}; it trains as rank {used}")
            low_rank = base.replace(layers=[MatrixRankLayerSpec(hidden, used)])
            cells += [SweepCell(low_rank.replace(seed=seed), MatrixRankLayerSpec.title + suffix, used) for seed in spec.seeds]
    return cells


def network_layers(network: str, dataset: str, pad_to: Optional[int] = None) -> list[Any]:
    """The layers of a network sweep on ``dataset``: a run preset's, sized for the dataset's images (padded to
    ``pad_to``), or the layers typed (text forms separated by ``;``).

    Raises:
        ConfigError: field ``"network"``, naming the presets, for text that is neither.
    """
    name = network.strip()
    if name in RUN_PRESETS:
        values = RUN_PRESETS[name]["values"]
        if RUN_PRESETS[name].get("layers_for") is None and not values.get("hidden_layers"):
            raise ConfigError("network", f"{name} is one TT layer: sweep its shapes (e.g. {values.get('in_modes')}) instead")
        try:
            return list(preset_values(name, dataset, pad_to if pad_to is not None else "preset").get("layers")
                        or values["hidden_layers"])
        except ConfigError as error:
            raise ConfigError("network", f"{name} does not fit {dataset}: {error}") from None
    if ":" not in name:
        raise ConfigError("network", f"network {name[:40]!r} is neither a preset ({', '.join(RUN_PRESETS)}) nor layers: "
                                     "write e.g. tt-convnet, or conv:32:3; pool:2; ttconv:2x4x4->4x4x4:4:3; dense:256")
    try:
        return list(parse_layers(name))
    except ConfigError as error:
        raise ConfigError("network", f"network: {error}") from None


def _layer_at_rank(layer: LayerSpec, rank: int, in_shape: Shape) -> LayerSpec:
    """``layer`` at max rank ``rank``: one number while no rank is clipped, else the maximal useful ranks it reaches
    (so two ranks above them build one network, one cell)."""
    layer = layer.with_ranks(rank)
    return layer.with_ranks(layer.ranks_used(in_shape)) if layer.clipping(in_shape) else layer


def _network_cells(spec: SweepSpec, dataset: str, notes: list[str]) -> list[SweepCell]:
    """A network sweep's cells on ``dataset``: every layer with TT cores at each rank (a rank above a layer's
    maximal useful ranks clipped, with a note), per seed; then, with baselines, its dense twin per seed. Each
    cell's config is labelled with the network's name (its legend entry; the label is no part of a run's key).

    Raises:
        ConfigError: ``"network"`` for a network without a layer with TT cores, or one that does not fit the dataset.
    """
    name, shared = spec.network_name, spec.training_values()
    pad_to = shared.get("pad_to")
    try:
        base = RunConfig.for_dataset(dataset, layers=network_layers(spec.network, dataset, pad_to), label=name, **shared)
    except ConfigError as error:
        raise ConfigError("network", f"{name} on {dataset}: {error}") if error.field != "network" else error from None
    if not any(layer.has_tt_cores for layer in base.layers):
        raise ConfigError("network", f"{name} has no layer with TT cores to sweep: use tt-convnet, or give "
                                     "ttconv:IN->OUT:RANK:K, tt:IN->OUT:RANK or tt4d:OUT:RANK:K layers")
    shapes, cells = base.layer_shapes, []
    for rank in spec.ranks:
        layers = [_layer_at_rank(layer, rank, shapes[index]) if layer.has_tt_cores else layer
                  for index, layer in enumerate(base.layers)]
        clipped = [layer.part_label() for layer, shape in zip(base.layers, shapes)
                   if layer.has_tt_cores and layer.with_ranks(rank).clipping(shape)]
        if clipped:
            notes.append(f"{name}: rank {rank} is above the maximal useful ranks of {', '.join(clipped)}; those layers "
                         "train at their maximal useful ranks")
        used = max(max(layer.ranks_used(shape), default=0) for layer, shape in zip(layers, shapes) if layer.has_tt_cores)
        at_rank = base.replace(layers=layers)
        cells += [SweepCell(at_rank.replace(seed=seed), name, used) for seed in spec.seeds]
    if spec.baselines:
        twin = base.dense_twin().replace(label=f"{name} {DENSE_TWIN}")
        if twin.layer_params() > spec.max_dense_weights:
            notes.append(f"{name}'s dense twin skipped: {twin.layer_params():,} weights is more than {spec.max_dense_weights:,}")
        else:
            cells += [SweepCell(twin.replace(seed=seed), f"{name} {DENSE_TWIN}", None) for seed in spec.seeds]
    return cells


#: What a GEMM call costs beyond its FLOPs, as FLOPs: the per-call overhead that makes a 10-core TT
#: layer slower than its FLOPs say.
CALL_OVERHEAD_FLOPS = 2e5


#: A training image costs about this many forwards (the forward, and a backward of about twice its work).
TRAIN_FORWARDS = 3


def estimated_cost(config: RunConfig) -> float:
    """A rough relative cost of a run's training loop, used to start the longest cells first and, times a
    rate measured here, to estimate a sweep's time (:mod:`ttexplore.experiments.sweep.estimate`).

    ``epochs * (3 * n_train + evals_per_epoch * n_test) * (forward FLOPs per image + 2e5 per GEMM call)``: a
    training image costs a forward and a backward (:data:`TRAIN_FORWARDS`), and each metric event evaluates
    the whole test split; the forward's FLOPs summed over the hidden layers (each kind gives its FLOPs and
    calls: one per TT core), plus the head.
    """
    info = dataset_info(config.dataset)
    images = config.train_limit or info.train_size
    shapes = config.layer_shapes
    flops = sum(layer.flops(shapes[index]) + CALL_OVERHEAD_FLOPS * layer.forward_calls()
                for index, layer in enumerate(config.layers))
    forwards = TRAIN_FORWARDS * images + config.evals_per_epoch * info.test_size
    return config.epochs * forwards * (flops + 2 * config.hidden_features * config.num_classes)


#: The longest sweep name (it is also the default output folder's name).
MAX_NAME = 120


def make_spec(name: str, datasets: "str | Sequence[str]", shapes: Any, ranks: Any = (1, 2, 3, 4), seeds: Any = (0,),
              **values: Any) -> SweepSpec:
    """A :class:`SweepSpec` from plain values: ``datasets`` and ``shapes`` as text or lists, ``ranks``/``seeds`` as
    ``"1-4"``-style text or lists; other keywords as the spec's fields.

    Raises:
        ConfigError: naming the field that does not parse.
    """
    if isinstance(datasets, str):
        datasets = tuple(part.strip() for part in datasets.split(",") if part.strip())
    if values.get("network") is not None and not shapes:
        if not str(values["network"]).strip():
            raise ConfigError("network", "the network is empty: choose a preset (tt-convnet) or give its layers, e.g. "
                                         "conv:32:3; pool:2; ttconv:2x4x4->4x4x4:4:3; dense:64")
        shape_list: Any = ()
    else:
        shape_list = shapes if shapes and isinstance(shapes, (list, tuple)) and isinstance(shapes[0], SweepShape) else parse_shapes(shapes)
    name = (name or "").strip()
    if not name:
        raise ConfigError("name", "the sweep needs a name (runs are grouped and resumed by it)")
    if len(name) > MAX_NAME or any(ord(character) < 32 or ord(character) == 127 for character in name):
        raise ConfigError("name", f"the sweep's name {name[:40]!r} must be at most {MAX_NAME} characters without "
                                  "control characters (it names the output folder): e.g. mnist-ranks")
    return SweepSpec(name=name, datasets=tuple(datasets), shapes=tuple(shape_list),
                     ranks=parse_int_list(ranks, "ranks", minimum=1), seeds=parse_int_list(seeds, "seeds", minimum=0), **values)
