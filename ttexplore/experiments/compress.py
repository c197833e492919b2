"""Compress a trained layer by TT-SVD (or a trained TT layer by TT-rounding), fine-tune it, and set it beside
TT layers trained from scratch.

The 2018 slides' algorithm has two paths to a TT layer: "in theory" (choose the shapes, compute
``W``'s TT factorization, the ranks given by ``W``) and "in practice" (choose the ranks, train).
This module runs the first on a trained network and compares it with the second:

1. :func:`source_from_run` / :func:`source_from_file`: the trained dense hidden layer ``W``.
2. :func:`unfolding_spectra`: the singular values of each TT unfolding of ``W`` (which rank each
   core boundary needs for an error: :func:`ttexplore.tt.ttmath.ranks_for_error`).
3. :func:`plan_compression`: per rank, three runs described by :class:`RunConfig`: the TT-SVD
   network evaluated as it is (0 epochs), the same fine-tuned for ``K`` epochs (both start from
   ``W`` through ``init_from``), and the same TT net from a random draw (trained from scratch).
4. :func:`run_plan` records and runs what the store lacks (through :mod:`ttexplore.runs.lifecycle`,
   like every run); the app queues the same configs on its job manager instead.
5. :func:`compress_rows`: the table, read back from the store; :func:`combine_seeds` sets the tables of
   several sources that differ only by their seed (the seed group of a dense run) side by side: per rank
   the mean of each path, its sample std and its range, so a difference can be read against the seed noise.

A TT run is compressed by TT-rounding its trained cores instead (:meth:`TTMatrix.round
<ttexplore.nn.ttmatrix.TTMatrix.round>`, in its own modes, to each lower rank; the spectra are those of its
cores' unfoldings, :meth:`TTMatrix.singular_values`, never building ``W``): the runs start from the rounded
cores (``init_from`` method ``tt-round``); :func:`ttexplore.runs.warmstart.continue_config` is that start
as one run of its own ("Round and continue").
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch

from ttexplore.tt import ttmath
from ttexplore.tt.shapes import parse_modes
from ttexplore.tt.ttshape import TTShape, modes_text
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import DenseLayerSpec, TTLayerSpec
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.models import hidden_layers, load_model
from ttexplore.runs.rounding import round_start
from ttexplore.runs.store import RunStore
from ttexplore.runs.warmstart import WarmStartError, file_sha256, read_source, tt_svd_cores

__all__ = ["CompressSource", "CompressTarget", "CompressRow", "source_from_run", "source_from_file", "merged_tensor",
           "unfolding_spectra", "plan_compression", "missing_runs", "run_tags", "run_plan", "compress_rows",
           "find_scratch", "source_accuracy", "COMPRESS_TAG", "source_spectra", "default_ranks", "PATH_KEYS", "combine_seeds",
           "check_seed_sources"]

#: Tag of every run a compression records (the Runs page and ``runs list`` filter on it).
COMPRESS_TAG = "compress"


@dataclass
class CompressSource:
    """The trained network to compress.

    Attributes:
        init_from: where its weights are (file, SHA-256, run id, ``state_dict`` key).
        base: its :class:`RunConfig` (a dense one-layer net on the dataset; for a file that is not a
            ttexplore model, one made for the file's weight), without ``init_from`` or a schedule.
        weight: the hidden layer's dense weight ``(M, N)`` (``None`` for a TT run: see ``trained``).
        trained: for a TT run, its trained network (the TT layer is rounded, ``W`` never built); else ``None``.
        label: ``"run 2024...-ab12cd"`` or the file's name.
        has_head: whether the file holds the classifier (else it starts from a random draw).
        notes: what a user should know about the file.
    """

    init_from: InitFrom
    base: RunConfig
    weight: Optional[torch.Tensor]
    label: str
    has_head: bool = True
    notes: list[str] = field(default_factory=list)
    trained: Optional[Any] = None

    @property
    def tt(self) -> Any:
        """A TT run's trained layer as a :class:`~ttexplore.nn.ttmatrix.TTMatrix` (``None`` for a dense source)."""
        return hidden_layers(self.trained)[0][1].tt_matrix() if self.trained is not None else None

    @property
    def method(self) -> str:
        """``"tt-round"`` for a TT run (its cores are rounded), ``"tt-svd"`` for a dense layer."""
        return "tt-round" if self.trained is not None else "tt-svd"

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1]) if self.weight is not None else self.base.in_features

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0]) if self.weight is not None else self.base.layer_widths[1]

    def describe(self) -> str:
        return f"{self.label}: {self.base.describe()}, W {self.out_features}x{self.in_features}"


def _one_hidden_layer(config: RunConfig, where: str) -> None:
    if len(config.layers) > 1:
        raise ConfigError("source", f"{where} has {len(config.layers)} hidden layers: compress takes a network "
                                    "of one hidden layer (the paper's)")


def source_from_run(store: RunStore, run_id: str) -> CompressSource:
    """The hidden layer of a recorded run (normally a dense one) and its network.

    Raises:
        ConfigError: field ``"run"`` for an unknown run, one without weights or of several hidden layers.
    """
    run = store.get_run(run_id)
    if run is None:
        raise ConfigError("run", f"no run {run_id!r} in {store.path}: see 'python -m ttexplore runs list'")
    path = store.artifact_path(run.get("weights_path"))
    if path is None or not path.is_file():
        raise ConfigError("run", f"run {run_id} has no saved weights ({run['status']}): compress a completed run")
    config = RunConfig.from_dict(run["config"])
    _one_hidden_layer(config, f"run {run_id}")
    base = config.replace(init_from=None, round_to=None)
    start = InitFrom(str(path), file_sha256(path), run=run_id)
    if config.layers[0].has_tt_cores:  # its trained cores are rounded, never multiplied out
        try:
            model, _ = load_model(path)
        except ValueError as error:
            raise WarmStartError(str(error)) from None
        return CompressSource(start, base, None, f"run {run_id}", trained=model)
    return CompressSource(start, base, read_source(path).layers[0].weight, f"run {run_id}")


def source_from_file(path: "str | Path", dataset: str = "mnist5k", weight_key: Optional[str] = None,
                     **values: Any) -> CompressSource:
    """A user's weights file: a ttexplore model file (its own network and dataset), or a ``state_dict`` /
    tensor holding an ``nn.Linear`` weight (read weights-only) for a dense net on ``dataset``.

    Args:
        values: other :class:`RunConfig` fields of the network around a bare weight (``pad_to``, ...).

    Raises:
        WarmStartError: for a file without a fitting weight; ConfigError for a bad dataset or padding.
    """
    path = Path(path).expanduser().resolve()
    probe = RunConfig.for_dataset(dataset, **values)  # the input and the classes around the weight
    source = read_source(path, weight_key, probe.in_features, probe.num_classes)
    if source.config is not None:
        _one_hidden_layer(source.config, str(path))
        base = source.config.replace(init_from=None)
    else:
        base = RunConfig.for_dataset(dataset, layers=[DenseLayerSpec(int(source.layers[0].weight.shape[0]))], **values)
    start = InitFrom(str(path), file_sha256(path), weight_key=weight_key if source.config is None else None)
    return CompressSource(start, base, source.layers[0].weight, path.name, source.head_weight is not None,
                          list(source.notes))


# ---------------------------------------------------------------- W's TT unfoldings
def merged_tensor(weight: torch.Tensor, in_modes: Sequence[int], out_modes: Sequence[int]) -> torch.Tensor:
    """``W (M, N)`` as the ``d``-way tensor TT-SVD factors: index ``k`` runs over ``(n_k, m_k)``."""
    d = len(in_modes)
    tensor = weight.reshape(*out_modes, *in_modes)
    order = [index for k in range(d) for index in (d + k, k)]
    return tensor.permute(order).reshape([n * m for n, m in zip(in_modes, out_modes)])


def unfolding_spectra(weight: torch.Tensor, in_modes: Sequence[int], out_modes: Sequence[int]) -> list[list[float]]:
    """The singular values of each TT unfolding of ``W``, largest first: the ``k``-th is the matrix
    ``(n_1 m_1 ... n_k m_k) x (n_{k+1} m_{k+1} ... n_d m_d)``, whose rank is the smallest TT rank
    ``r_k`` that represents ``W`` exactly (Oseledets 2011, Theorem 2.1).

    Complexity: one SVD per boundary, ``O(N M min(L_k, NM / L_k))`` each (seconds for 1024x1024).
    """
    tensor = merged_tensor(weight.detach().double(), in_modes, out_modes)
    sizes = list(tensor.shape)
    spectra = []
    for k in range(1, len(sizes)):
        matrix = tensor.reshape(math.prod(sizes[:k]), -1)
        spectra.append(torch.linalg.svdvals(matrix).tolist())
    return spectra


def source_spectra(source: CompressSource, in_modes: Sequence[int], out_modes: Sequence[int]) -> list[list[float]]:
    """The singular values of each TT unfolding of the source's layer, largest first: of ``W`` in the given
    modes (:func:`unfolding_spectra`), or, for a TT run, of its trained cores in their own modes
    (:meth:`TTMatrix.singular_values`; its zeros beyond the rank in use dropped).

    Complexity: :func:`unfolding_spectra`, or ``O(d n m r^3)`` for a TT run.
    """
    if source.trained is None:
        return unfolding_spectra(source.weight, in_modes, out_modes)
    return [spectrum.tolist() for spectrum in source.tt.singular_values()]


def default_ranks(source: CompressSource) -> list[int]:
    """The ranks a compression tries when none are given: 1, 2, 4, 8, 16; for a TT run, the powers of 2 below
    its largest rank in use (rounding only lowers ranks)."""
    if source.trained is None:
        return [1, 2, 4, 8, 16]
    top = max(source.tt.ranks, default=1)
    return [2**power for power in range(7) if 2**power < top] or [1]


# ---------------------------------------------------------------- the plan
@dataclass
class CompressTarget:
    """One rank of a compression: the three runs that answer it.

    Attributes:
        rank: the max rank asked (``None`` when the ranks came from ``rel_error``).
        rel_error_target: the error asked, when the ranks came from one.
        ranks: the internal ranks in use.
        rel_error: ``||W - W_TT||_F / ||W||_F`` of the TT-SVD at these ranks.
        compressed: the TT-SVD network, evaluated as it is (0 epochs).
        finetuned: the same, trained ``K`` more epochs (``None`` when ``K = 0``).
        scratch: the same TT net from a random draw (looked up, or trained when asked).
        layer_errors: for a network (:mod:`ttexplore.experiments.netcompress`), each compressed layer's
            TT-SVD error (``rel_error`` is the largest); empty for one layer.
    """

    rank: Optional[int]
    rel_error_target: Optional[float]
    ranks: tuple[int, ...]
    rel_error: float
    compressed: RunConfig
    finetuned: Optional[RunConfig]
    scratch: RunConfig
    layer_errors: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return f"r={self.rank}" if self.rank is not None else f"rel_error {self.rel_error_target:g}"


def plan_compression(source: CompressSource, in_modes: Any, out_modes: Any, ranks: Sequence[int] = (),
                     rel_errors: Sequence[float] = (), finetune_epochs: int = 0, scratch_epochs: Optional[int] = None,
                     **training: Any) -> list[CompressTarget]:
    """The runs that compress ``source`` at each of ``ranks`` (a max rank) and each of ``rel_errors``.

    Args:
        in_modes, out_modes: the TT shapes (``"4x8x8x4"`` or tuples), multiplying to ``W``'s sizes.
        finetune_epochs: ``K``; 0 for no fine-tuning.
        scratch_epochs: epochs of the from-scratch run (default ``K``, else the source's epochs).
        training: other :class:`RunConfig` fields for the fine-tune and from-scratch runs (``lr``, ...).

    Raises:
        ConfigError: naming ``in_modes``, ``out_modes``, ``ranks`` or ``rel_error`` and the fix.
    """
    in_modes, out_modes = _modes(in_modes, "in_modes"), _modes(out_modes, "out_modes")
    if source.trained is not None:
        return _plan_rounding(source, in_modes, out_modes, ranks, rel_errors, finetune_epochs, scratch_epochs, training)
    for name, modes, size in (("in_modes", in_modes, source.in_features), ("out_modes", out_modes, source.out_features)):
        if ttmath.prod(modes) != size:
            raise ConfigError(name, f"{name} {modes_text(modes)} multiply to {ttmath.prod(modes)}, but W has {size} "
                                    f"{'inputs' if name == 'in_modes' else 'outputs'}: choose modes of {size}")
    if not ranks and not rel_errors:
        raise ConfigError("ranks", "give ranks (e.g. 1,2,4,8) or a rel_error (e.g. 0.3) to compress to")
    for value in rel_errors:
        if not 0 < value < 1:
            raise ConfigError("rel_error", f"rel_error {value} must be between 0 and 1, e.g. 0.3")
    for rank in ranks:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError("ranks", f"ranks: {rank!r} is not a TT rank: every rank is a whole number of at least 1, "
                                       "e.g. 1,2,4,8")
    if scratch_epochs is not None and scratch_epochs < 1:
        raise ConfigError("scratch_epochs", f"scratch_epochs {scratch_epochs} must be at least 1 (leave it out for "
                                            "the fine-tuning's epochs, else the source's)")
    base = source.base.replace(layers=[TTLayerSpec(in_modes, out_modes)], **training)
    scratch_epochs = scratch_epochs or finetune_epochs or source.base.epochs
    targets = []
    asked: list[tuple[Optional[int], Optional[float]]] = [(int(rank), None) for rank in ranks]
    asked += [(None, float(value)) for value in rel_errors]
    seen: set[tuple[int, ...]] = set()
    for rank, target_error in asked:
        capped = ttmath.plan_ranks(in_modes, out_modes, rank) if rank is not None else None
        cores, error = tt_svd_cores(source.weight, in_modes, out_modes, capped.ranks if capped else None,
                                    rel_error=target_error)
        used = tuple(int(core.shape[-1]) for core in cores[:-1])
        if (capped.ranks if capped else used) in seen:
            continue  # a rank above the maximal useful ones is the same layer as a lower one
        seen.add(capped.ranks if capped else used)
        # an unclipped max rank stays one number (as sweeps and the train command write it)
        asked_ranks = rank if capped and not capped.clipped else (capped.ranks if capped else used)
        start = base.replace(layers=[TTLayerSpec(in_modes, out_modes, asked_ranks)], init_from=source.init_from.to_dict(),
                             label=f"TT-SVD of {source.label}")
        compressed = start.replace(epochs=0)
        finetuned = start.replace(epochs=finetune_epochs, label=f"TT-SVD of {source.label} + {finetune_epochs} epochs") \
            if finetune_epochs else None
        scratch = start.replace(init_from=None, epochs=scratch_epochs, label="")
        targets.append(CompressTarget(rank, target_error, TTShape.of(in_modes, out_modes, used).ranks, error,
                                      compressed, finetuned, scratch))
    return targets


def _plan_rounding(source: CompressSource, in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: Sequence[int],
                   rel_errors: Sequence[float], finetune_epochs: int, scratch_epochs: Optional[int],
                   training: dict[str, Any]) -> list[CompressTarget]:
    """:func:`plan_compression` of a TT run: its trained cores rounded (in their own modes) to each rank below
    the ranks in use and to each relative error; the three runs of each start from the rounded cores."""
    layer = source.base.layers[0]
    tt = source.tt
    if (in_modes, out_modes) != (tt.in_modes, tt.out_modes):
        raise ConfigError("in_modes", f"a TT run is rounded in its own modes, {modes_text(tt.in_modes)} -> "
                                      f"{modes_text(tt.out_modes)}, not {modes_text(in_modes)} -> {modes_text(out_modes)}: "
                                      "give those modes (or none)")
    top = max(tt.ranks, default=0)
    for rank in ranks:
        if not 1 <= int(rank) < top:
            raise ConfigError("ranks", f"rank {rank} is not below the run's ranks in use (at most {top}): rounding only "
                                       f"lowers ranks; choose ranks from 1 to {top - 1}")
    for value in rel_errors:
        if not 0 < value < 1:
            raise ConfigError("rel_error", f"rel_error {value} must be between 0 and 1, e.g. 0.3")
    base = source.base.replace(**training)
    scratch_epochs = scratch_epochs or finetune_epochs or source.base.epochs
    targets, seen = [], set()
    asked = [(int(rank), None) for rank in ranks] + [(None, float(value)) for value in rel_errors]
    for rank, target_error in asked:
        try:
            start, roundings = round_start(base, source.trained, source.init_from, rank, target_error)
        except ConfigError:
            if target_error is None:
                raise
            continue  # an error the trained cores already meet: nothing to round
        used = roundings[0].ranks_after
        if used in seen:
            continue
        seen.add(used)
        label = f"{source.label} rounded to {'r=' + str(rank) if rank is not None else f'error {target_error:g}'}"
        compressed = start.replace(epochs=0, label=label)
        finetuned = start.replace(epochs=finetune_epochs, label=f"{label} + {finetune_epochs} epochs") if finetune_epochs else None
        scratch = start.replace(init_from=None, epochs=scratch_epochs, label="")
        targets.append(CompressTarget(rank, target_error, used, roundings[0].rel_error, compressed, finetuned, scratch))
    if not targets:
        raise ConfigError("rel_error", f"the trained {layer.label()} already meets every error asked: ask for larger errors")
    return targets


def _modes(value: Any, name: str) -> tuple[int, ...]:
    try:
        return parse_modes(value, name)
    except ValueError as error:
        raise ConfigError(name, str(error)) from None


# ---------------------------------------------------------------- running and reading back
def find_scratch(store: RunStore, config: RunConfig, epochs: Optional[int] = None,
                 exact: bool = False) -> Optional[dict[str, Any]]:
    """The newest completed run of the same network on the same data, trained from a random draw (any lr or
    epochs; those of ``epochs`` epochs first, then those of ``config``'s seed), or ``None``. With ``exact``
    only runs of ``config``'s seed and of ``epochs`` epochs count: the comparison a compression asks for
    (each seed of compared sources gets its own from-scratch net, trained as long as asked)."""
    wanted = _network_key(config)
    matches = [run for run in store.list_runs(status=("completed",), dataset=config.dataset)
               if "init_from" not in run["config"] and _network_key(_config_or_none(run["config"])) == wanted
               and (not exact or (run["config"].get("seed", 0) == config.seed
                                  and (epochs is None or run["config"].get("epochs") == epochs)))]
    # stable: newest first within each group
    matches.sort(key=lambda run: (epochs is not None and run["config"].get("epochs") != epochs,
                                  run["config"].get("seed", 0) != config.seed))
    return matches[0] if matches else None


def _config_or_none(values: dict[str, Any]) -> Optional[RunConfig]:
    try:
        return RunConfig.from_dict(values)
    except (ConfigError, ValueError, KeyError, TypeError):
        return None


def _network_key(config: Optional[RunConfig]) -> Any:
    """What makes two networks the same for the comparison: data, padding, images used, layers (ranks as used)."""
    if config is None:
        return None
    shapes = config.layer_shapes
    layers = tuple((layer.name, layer.shape_label(), layer.out_shape(shapes[index]), layer.ranks_used(shapes[index]))
                   for index, layer in enumerate(config.layers))
    return (config.dataset, config.pad_to, config.train_limit, layers)


def missing_runs(store: RunStore, targets: Sequence[CompressTarget], scratch: bool = False,
                 skip_active: bool = False) -> list[tuple[str, RunConfig, str]]:
    """``(what, config, name)`` of each run the targets need that the store has not completed (nor,
    with ``skip_active``, queued or running): the compressed and fine-tuned ones, and with ``scratch``
    the from-scratch one when the store has none of its seed and epochs. ``what`` is ``compressed``, ``finetuned``
    or ``scratch``."""
    active = {run["config_key"] for run in store.list_runs(status=("queued", "running"))} if skip_active else set()
    wanted = []
    for target in targets:
        jobs = [("compressed", target.compressed), ("finetuned", target.finetuned)]
        if scratch and find_scratch(store, target.scratch, target.scratch.epochs, exact=True) is None:
            jobs.append(("scratch", target.scratch))
        for what, config in jobs:
            if config is None or config.key() in active or store.find_completed(config) is not None:
                continue
            active.add(config.key())  # two targets never queue one network twice
            wanted.append((what, config, f"{what} {config.shape_label()} {target.label}"))
    return wanted


def run_tags(what: str) -> list[str]:
    """The tags of a run a compression records."""
    return [COMPRESS_TAG, "from-scratch" if what == "scratch" else what]


def run_plan(store: RunStore, targets: Sequence[CompressTarget], dataset: Any = None, data_dir: Optional[str] = None,
             scratch: bool = False, interrupt: Optional[threading.Event] = None,
             on_run: Optional[Callable[[str, RunConfig, str], None]] = None,
             on_event: Optional[Callable[[dict[str, Any]], None]] = None) -> list[str]:
    """Record and run, one after the other, the runs :func:`missing_runs` lists, each through
    :func:`ttexplore.runs.lifecycle.execute` (the app queues the same configs on its job manager).

    Args:
        interrupt: set it (a signal handler) to stop the current run ``interrupted`` and go no further.
        on_run: called ``(run_id, config, what)`` as each run starts.

    Returns:
        The ids of the runs it recorded; it stops at the first that does not complete.
    """
    from ttexplore.runs.lifecycle import StopFlags, execute

    interrupt = interrupt or threading.Event()
    recorded = []
    for what, config, name in missing_runs(store, targets, scratch):
        if interrupt.is_set():
            break
        run_id = store.create_run(config, status="running", name=name, tags=run_tags(what))
        recorded.append(run_id)
        if on_run is not None:
            on_run(run_id, config, what)
        execute(store, run_id, stop=StopFlags(threading.Event(), interrupt), dataset=dataset, data_dir=data_dir,
                on_event=on_event, config=config)
        if store.get_run(run_id)["status"] != "completed":
            break
    return recorded


@dataclass
class CompressRow:
    """One line of the compress table (accuracies ``None`` where the run is missing or unfinished)."""

    rank: Optional[int]
    rel_error_target: Optional[float]
    ranks: tuple[int, ...]
    params: int
    dense_params: int
    compression: float
    rel_error: float
    test_accuracy: Optional[float]
    finetuned_test_accuracy: Optional[float]
    scratch_test_accuracy: Optional[float]
    scratch_epochs: Optional[int]
    compressed_run_id: Optional[str]
    finetuned_run_id: Optional[str]
    scratch_run_id: Optional[str]
    finetune_epochs: int = 0
    net_params: Optional[int] = None
    dense_net_params: Optional[int] = None
    layer_errors: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; ``net_params``/``dense_net_params`` (every parameter of the network and of its dense
        twin) always, ``layer_errors`` for a network."""
        values = dict(self.__dict__)
        values["ranks"] = list(self.ranks)
        values["layer_errors"] = list(self.layer_errors)
        if not self.layer_errors:
            values.pop("layer_errors")
        if self.rel_error_target is None:
            values.pop("rel_error_target")
        return values


def compress_rows(store: RunStore, targets: Sequence[CompressTarget]) -> list[CompressRow]:
    """The table of ``targets`` as the store has it now: each rank's weights, compression, TT-SVD error
    and the accuracy of its three paths."""
    rows = []
    for target in targets:
        compressed = _completed_or_latest(store, target.compressed)
        finetuned = _completed_or_latest(store, target.finetuned) if target.finetuned is not None else None
        scratch = find_scratch(store, target.scratch, target.scratch.epochs)  # its seed's first, else another's
        config = target.compressed
        rows.append(CompressRow(
            rank=target.rank, rel_error_target=target.rel_error_target, ranks=target.ranks,
            params=config.layer_params(), dense_params=config.dense_layer_params(), compression=config.compression(),
            rel_error=target.rel_error,
            test_accuracy=_accuracy(compressed), finetuned_test_accuracy=_accuracy(finetuned),
            scratch_test_accuracy=_accuracy(scratch),
            scratch_epochs=scratch["config"]["epochs"] if scratch else None,
            compressed_run_id=compressed["id"] if compressed else None,
            finetuned_run_id=finetuned["id"] if finetuned else None,
            scratch_run_id=scratch["id"] if scratch else None,
            finetune_epochs=target.finetuned.epochs if target.finetuned is not None else 0,
            net_params=config.net_params(), dense_net_params=config.dense_net_params(), layer_errors=target.layer_errors,
        ))
    return rows


#: The accuracies of the three paths in a compress row.
PATH_KEYS = ("test_accuracy", "finetuned_test_accuracy", "scratch_test_accuracy")


def combine_seeds(rows_by_source: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The compress tables of several sources, the seeds of one experiment, as one table (rows as
    :meth:`CompressRow.to_dict` gives them, the same targets in the same order for every source).

    Per target: the first source's row (rank, ranks, weights), ``rel_error`` and each path's accuracy
    (:data:`PATH_KEYS`) replaced by its mean over the sources that have it, and beside each ``<key>_std``
    (sample std, ``None`` below two), ``<key>_n``, ``<key>_low``/``<key>_high`` and ``<key>_band`` (the band a
    figure draws: ± 1 std from three on, min-max below; :class:`~ttexplore.presenters.groups.Spread`);
    ``seeds``: how many sources.
    """
    from ttexplore.presenters.groups import spread

    combined = []
    for members in zip(*rows_by_source):
        row = dict(members[0])
        for key in ("rel_error", *PATH_KEYS):
            values = spread(member.get(key) for member in members)
            row[key] = values.mean if values is not None else None
            row[f"{key}_std"] = values.std if values is not None else None
            row[f"{key}_n"] = values.n if values is not None else 0
            row[f"{key}_low"] = values.band_low if values is not None else None
            row[f"{key}_high"] = values.band_high if values is not None else None
            row[f"{key}_band"] = values.band if values is not None else None
        row["seeds"] = len(members)
        combined.append(row)
    return combined


def check_seed_sources(configs: Sequence[RunConfig]) -> None:
    """Sources compared together must be seeds of one experiment (the same settings but the seed, each seed once).

    Raises:
        ConfigError: field ``"run"``, naming the first source that differs and how.
    """
    for config in configs[1:]:
        if config.group_key() != configs[0].group_key():
            raise ConfigError("run", f"{config.describe()} (seed {config.seed}) differs from {configs[0].describe()} "
                                     "in more than its seed: compare the seeds of one experiment")
    seeds = [config.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("run", f"two sources have the same seed ({', '.join(map(str, seeds))}): give each seed once")


def _completed_or_latest(store: RunStore, config: Optional[RunConfig]) -> Optional[dict[str, Any]]:
    """The completed run of ``config``, else its newest run of any status (queued, running), else ``None``."""
    if config is None:
        return None
    done = store.find_completed(config)
    if done is not None:
        return done
    key = config.key()
    return next((run for run in store.list_runs() if run.get("config_key") == key), None)


def _accuracy(run: Optional[dict[str, Any]]) -> Optional[float]:
    return run.get("final_test_accuracy") if run is not None and run.get("status") == "completed" else None


def source_accuracy(source: CompressSource, dataset: Any = None, data_dir: Optional[str] = None) -> Optional[float]:
    """Test accuracy of the source network itself (``None`` when the file has no head)."""
    if not source.has_head:
        return None
    from ttexplore.runs.fit import fit

    config = source.base.replace(init_from=source.init_from.to_dict(), epochs=0)
    result = fit(config, dataset, data_dir=data_dir)
    if result.status != "completed":
        raise WarmStartError(result.error or "the source network could not be evaluated")
    return result.final_test_accuracy


def targets_summary(targets: Iterable[CompressTarget]) -> list[str]:
    """One line per target: ``"r=4: ranks 4,4,4, 2,176 weights, rel_error 0.93"`` (for progress output)."""
    return [f"{target.label}: ranks {','.join(map(str, target.ranks))}, {target.compressed.layer_params():,} weights, "
            f"rel_error {target.rel_error:.3g}" for target in targets]
