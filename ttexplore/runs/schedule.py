"""Rank schedules: TT-rounding during training (``RunConfig.round_to``), as a value. Pure Python.

A schedule is a list of steps, each "after epoch ``e``, round every TT layer of the network to max
rank ``r``" (``4@5``) or "... to relative error ``eps``" (``rel:0.1@5``); its text form joins them
with commas, ``"4@5,2@10"``, and reads back to the same value. It is checked when the config is made,
against the network and the epochs, so a bad schedule is a one-line error before any data loads.

The training loop (:mod:`ttexplore.runs.fit`) asks :meth:`RoundSchedule.at` after every epoch; the
rounding itself (torch) is :mod:`ttexplore.runs.rounding`. Each rounding is recorded as one metric event
of kind :data:`ROUND_KIND` whose ``detail`` says, per TT layer, the ranks and weights before and after
and the error of the rounding (:func:`rounding_changes` reads them back; :func:`network_at_end` gives
the ranks and weights in use at the end of a run).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from ttexplore.tt.errors import ConfigError
from ttexplore.runs.fields import short_repr
from ttexplore.runs.kinds import LayerSpec, Shape, layer_shapes

__all__ = ["RoundStep", "RoundSchedule", "ROUND_KIND", "MAX_ROUNDINGS", "FIELD", "rounding_changes", "network_at_end",
           "round_events", "size_after_truncation"]

#: The metric-event kind of a rounding (see :mod:`ttexplore.runs.fit`).
ROUND_KIND = "round"
#: The config field a schedule lives in (and the field its messages name).
FIELD = "round_to"
#: The most steps a schedule may have (and the longest text read: 40 characters a step).
MAX_ROUNDINGS = 64

_STEP = re.compile(r"^(?:(rel)\s*:\s*)?([^@\s]+)\s*@\s*([^@\s]+)$", re.IGNORECASE)
_SYNTAX = ("write RANK@EPOCH (e.g. 4@5: after epoch 5 round every TT layer to rank 4) or rel:ERROR@EPOCH "
           "(e.g. rel:0.1@5: to a relative error of 0.1), several separated by commas")


def _error(message: str) -> ConfigError:
    """A :class:`ConfigError` of the field ``round_to`` (the CLI prefixes ``--round-to``, the page its label)."""
    return ConfigError(FIELD, message)


@dataclass(frozen=True)
class RoundStep:
    """One rounding: after epoch ``epoch`` (1-based), every TT layer to max rank ``rank`` or to relative
    error ``rel_error`` (exactly one of the two is set)."""

    epoch: int
    rank: Optional[int] = None
    rel_error: Optional[float] = None

    @property
    def target(self) -> str:
        """``"4"`` or ``"rel:0.1"``: what the layers are rounded to."""
        return f"rel:{self.rel_error:g}" if self.rel_error is not None else str(self.rank)

    def text(self) -> str:
        """``"4@5"`` or ``"rel:0.1@5"``."""
        return f"{self.target}@{self.epoch}"

    def describe(self) -> str:
        """``"rank 4 after epoch 5"``."""
        what = f"relative error {self.rel_error:g}" if self.rel_error is not None else f"rank {self.rank}"
        return f"{what} after epoch {self.epoch}"

    @classmethod
    def parse(cls, text: str) -> "RoundStep":
        """``"4@5"`` or ``"rel:0.1@5"`` (spaces allowed around ``@`` and ``:``).

        Raises:
            ConfigError: field ``round_to``, naming the step and the fix.
        """
        match = _STEP.match(text.strip())
        if match is None:
            raise _error(f"{short_repr(text.strip())} is not a rounding step: {_SYNTAX}")
        relative, target, epoch_text = match.groups()
        if not epoch_text.isdigit() or not epoch_text.isascii() or len(epoch_text) > 9:
            raise _error(f"the epoch in {text.strip()} must be a whole number, e.g. {target}@5")
        epoch = int(epoch_text)
        if relative:
            try:
                value = float(target)
            except ValueError:
                raise _error(f"the relative error in {text.strip()} must be a number between 0 and 1, "
                             f"e.g. rel:0.1@{epoch}") from None
            return cls(epoch, rel_error=value)
        if not target.isdigit() or not target.isascii() or len(target) > 9:
            raise _error(f"the rank in {text.strip()} must be a whole number, e.g. 4@{epoch} (or rel:0.1@{epoch} "
                         f"for a relative error)")
        return cls(epoch, rank=int(target))


@dataclass(frozen=True)
class RoundSchedule:
    """The roundings of a run, in epoch order. Text form ``"4@5,2@10"`` (:meth:`text`, :meth:`of`)."""

    steps: tuple[RoundStep, ...]

    @classmethod
    def of(cls, value: Any) -> Optional["RoundSchedule"]:
        """A schedule from its text (``"4@5, 2@10"``), a list of step texts (the CLI's repeated
        ``--round-to``) or a schedule; ``None`` for nothing (``None``, ``""``, ``[]``). The steps are put in
        epoch order; their values are checked against a network by :meth:`check`.

        Raises:
            ConfigError: field ``round_to``, for text that is not a schedule.
        """
        if value is None or isinstance(value, RoundSchedule):
            return value
        if isinstance(value, str):
            if len(value) > 40 * MAX_ROUNDINGS:
                raise _error(f"the rank schedule's {len(value)} characters are far too many: give at most {MAX_ROUNDINGS} steps such as 4@5")
            parts = [part for part in re.split(r"[,;]", value) if part.strip()]
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_ROUNDINGS:
                raise _error(f"{len(value)} steps are too many: give at most {MAX_ROUNDINGS}")
            if not all(isinstance(part, (str, RoundStep)) for part in value):
                raise _error(f"{short_repr(value)} is not a schedule: {_SYNTAX}")
            parts = [part for item in value
                     for part in ([item] if isinstance(item, RoundStep) else re.split(r"[,;]", item)) if
                     isinstance(part, RoundStep) or part.strip()]
        else:
            raise _error(f"{short_repr(value)} is not a schedule: {_SYNTAX}")
        if not parts:
            return None
        if len(parts) > MAX_ROUNDINGS:
            raise _error(f"{len(parts)} steps are too many: give at most {MAX_ROUNDINGS}")
        steps = [part if isinstance(part, RoundStep) else RoundStep.parse(part) for part in parts]
        return cls(tuple(sorted(steps, key=lambda step: step.epoch)))

    def text(self) -> str:
        """``"4@5,2@10"``: what :meth:`of` reads back to this schedule."""
        return ",".join(step.text() for step in self.steps)

    def describe(self) -> str:
        """``"rounded to 4 after epoch 5, to 2 after epoch 10"``."""
        return "rounded " + ", ".join(f"to {step.target} after epoch {step.epoch}" for step in self.steps)

    def at(self, epoch: int) -> Optional[RoundStep]:
        """The step after epoch ``epoch`` (1-based), or ``None``."""
        return next((step for step in self.steps if step.epoch == epoch), None)

    def check(self, layers: Sequence[LayerSpec], in_shape: Shape, epochs: int) -> None:
        """Check the schedule against the network and the run's epochs (each rule one message, in this order):
        a TT layer to round, ranks of at least 1, relative errors in (0, 1), epochs from 1 to ``epochs - 1``
        (training goes on after each rounding), one rounding per epoch, and every rank below the ranks
        in use then (a schedule only goes down: below the TT layers' largest rank in use, and below the
        rank of the step before).

        Raises:
            ConfigError: field ``round_to``, naming the step and the fix.
        """
        if not self.steps:
            raise _error(f"the rank schedule is empty: {_SYNTAX}")
        shapes = layer_shapes(layers, in_shape)
        tt_layers = [(layer, shapes[index]) for index, layer in enumerate(layers) if layer.has_tt_cores]
        if not tt_layers:
            network = ", ".join(layer.label() for layer in layers)
            raise _error(f"the network has no TT layer ({network}): a schedule rounds TT cores; leave it out, or use "
                         f"a TT layer (e.g. tt:4x8x8x4:8)")
        for step in self.steps:
            if step.rank is not None and step.rank < 1:
                raise _error(f"rank {step.rank} in {step.text()} must be at least 1: a TT rank is a whole number of 1 "
                             f"or more, e.g. 2@{step.epoch}")
            if step.rel_error is not None and not (math.isfinite(step.rel_error) and 0 < step.rel_error < 1):
                raise _error(f"relative error {step.rel_error:g} in {step.text()} must be between 0 and 1 (both "
                             f"excluded), e.g. rel:0.1@{step.epoch}")
            if step.epoch < 1:
                raise _error(f"epoch {step.epoch} in {step.text()} must be at least 1: a rounding comes after an epoch "
                             f"of training, e.g. {step.target}@1")
            if step.epoch >= epochs:
                last = f"after one of epochs 1 to {epochs - 1}" if epochs > 2 else "after epoch 1" if epochs == 2 else ""
                fix = f"round {last} so that training goes on, or raise epochs" if last else "raise epochs"
                raise _error(f"epoch {step.epoch} in {step.text()} is not before the run's last epoch (epochs is "
                             f"{epochs}): {fix}")
        for earlier, later in zip(self.steps, self.steps[1:]):
            if earlier.epoch == later.epoch:
                raise _error(f"two roundings after epoch {later.epoch} ({earlier.text()} and {later.text()}): give "
                             f"one per epoch")
        ceiling = max((max(layer.ranks_used(shape), default=0) for layer, shape in tt_layers), default=0)
        if ceiling == 0 and any(step.rank is not None for step in self.steps):
            raise _error("the network's TT layers have one core each, no rank to lower: leave the schedule out")
        for step in self.steps:
            if step.rank is None:
                continue
            if step.rank >= ceiling:
                raise _error(f"rank {step.rank} in {step.text()} is not below the ranks in use then (at most "
                             f"{ceiling}): a schedule only lowers ranks, e.g. {max(1, ceiling // 2)}@{step.epoch}")
            ceiling = step.rank


# ---------------------------------------------------------------- reading roundings back
def round_events(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rounding events among a run's metric events, in order."""
    return [event for event in events if event.get("kind") == ROUND_KIND and isinstance(event.get("detail"), Mapping)]


def rounding_changes(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each layer a rounding changed, in order: ``{"epoch", "round", "index", "layer", "ranks_before",
    "ranks_after", "params_before", "params_after", "rel_error", "test_accuracy"}`` (``rel_error`` is
    ``||W - W_rounded||_F / ||W||_F`` of that layer; ``test_accuracy`` the network's right after it)."""
    changes = []
    for event in round_events(events):
        detail = event["detail"]
        for layer in detail.get("layers", []):
            if layer.get("ranks_before") == layer.get("ranks_after"):
                continue
            changes.append({"epoch": event.get("epoch"), "round": detail.get("round"), "index": layer.get("index"),
                            "layer": layer.get("layer"), "ranks_before": list(layer.get("ranks_before") or []),
                            "ranks_after": list(layer.get("ranks_after") or []),
                            "params_before": layer.get("params_before"), "params_after": layer.get("params_after"),
                            "rel_error": layer.get("rel_error"), "test_accuracy": event.get("test_accuracy")})
    return changes


def network_at_end(layers: Sequence[LayerSpec], in_shape: Shape, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ranks and weights in use after the last rounding in ``events`` (as built, without one):
    ``{"params": hidden-layer weights, "ranks": [ranks of each hidden layer, () for a layer without]}``."""
    shapes = layer_shapes(layers, in_shape)
    ranks = [list(layer.ranks_used(shapes[index])) for index, layer in enumerate(layers)]
    params = sum(layer.params(shapes[index]) for index, layer in enumerate(layers))
    rounded = round_events(events)
    if rounded:
        detail = rounded[-1]["detail"]
        params = int(detail.get("params_after", params))
        for layer in detail.get("layers", []):
            index = layer.get("index")
            if isinstance(index, int) and 0 <= index < len(ranks):
                ranks[index] = list(layer.get("ranks_after") or [])
    return {"params": params, "ranks": ranks}


def size_after_truncation(roundings: Sequence[tuple[bool, Mapping[str, Any]]]) -> Optional[tuple[int, float]]:
    """The run's ``(layer weights, compression)`` after a resume drops some events: ``roundings`` are its
    rounding details in order, each with whether it is dropped. ``None`` when none is dropped (nothing
    changes); else the sizes after the last rounding kept, or before the first dropped when none is kept."""
    if not any(gone for gone, _ in roundings):
        return None
    kept = [detail for gone, detail in roundings if not gone]
    if kept:
        return int(kept[-1]["params_after"]), float(kept[-1]["compression_after"])
    first = next(detail for gone, detail in roundings if gone)
    return int(first["params_before"]), float(first["compression_before"])
