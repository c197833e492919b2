"""What the pages show about TT-rounding: where a run's curves mark its roundings, what a rank schedule typed
on Explore leaves the network with, whether a run page offers "Round and continue" and what its box means.

Plain data in (run dicts as :meth:`~ttexplore.runs.store.RunStore.list_runs` returns them, metric events as
:meth:`~ttexplore.runs.store.RunStore.metrics` returns them, configs), plain data out. No streamlit, no torch.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional, Sequence

from ttexplore.presenters.reports import run_network
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.schedule import FIELD, network_at_end, round_events

__all__ = ["rounding_marks", "schedule_check", "schedule_caption", "continue_offer", "parse_target", "ROUNDABLE_STATUSES"]

#: Runs a run page offers "Round and continue" for: they ended (or stopped) with their weights saved.
ROUNDABLE_STATUSES = ("completed", "interrupted", "cancelled")


def rounding_marks(events: Sequence[Mapping[str, Any]], x_key: str = "epoch") -> list[dict[str, Any]]:
    """One mark per rounding of a run, for the curves' vertical lines: ``{"x", "params", "text"}`` with ``x``
    the rounding event's value of ``x_key`` (``epoch``, ``step`` or ``elapsed_s``) and ``text`` the
    weights in use from then on (``"→ 2,176 weights"``)."""
    marks = []
    for event in round_events(events):
        params = event["detail"].get("params_after")
        if event.get(x_key) is None or params is None:
            continue
        marks.append({"x": event[x_key], "params": int(params), "text": f"→ {int(params):,} weights"})
    return marks


def schedule_check(build: Callable[[], RunConfig]) -> tuple[Optional[ConfigError], str]:
    """What the page says under the schedule box of the run ``build()`` describes: the schedule's error (``None``
    when it stands, or when another field is wrong: the page says those where they are typed) and the
    weights it leads to (:func:`schedule_caption`; '' on an error or without a schedule)."""
    try:
        config = build()
    except ConfigError as error:
        return (error if error.field == FIELD else None), ""
    except ValueError:
        return None, ""
    return None, schedule_caption(config)


def schedule_caption(config: RunConfig) -> str:
    """Under the schedule box: the weights of the hidden layers after each step (a relative error's ranks depend
    on the trained cores, so from there on it says so), e.g. ``"8,448 → 2,176 after epoch 5 → 576 after epoch 10"``;
    '' without a schedule."""
    if config.round_to is None:
        return ""
    shapes = config.layer_shapes
    layers = list(config.layers)
    parts = [f"{config.layer_params():,} weights"]
    for step in config.round_to.steps:
        if step.rank is None:
            parts.append(f"a relative error of {step.rel_error:g} after epoch {step.epoch} (its ranks depend on the "
                         "trained cores)")
            break
        layers = [layer.with_ranks(_lowered(layer.ranks_used(shapes[index]), step.rank)) if layer.has_tt_cores else layer
                  for index, layer in enumerate(layers)]
        params = sum(layer.params(shapes[index]) for index, layer in enumerate(layers))
        parts.append(f"{params:,} after epoch {step.epoch}")
    return "Weights of the hidden layers: " + " → ".join(parts)


def _lowered(ranks: Sequence[int], cap: int) -> tuple[int, ...]:
    """Ranks after a rounding to max rank ``cap`` (at most ``cap``; the rounding never raises one)."""
    return tuple(min(rank, cap) for rank in ranks)


def continue_offer(run: Mapping[str, Any], events: Sequence[Mapping[str, Any]], has_weights: bool) -> tuple[bool, str]:
    """Whether the run page offers "Round and continue" for ``run`` (its metric ``events`` tell the ranks a
    schedule left), and a line saying why or why not, with the ranks in use."""
    layers, in_shape = run_network(run)
    if layers is None or in_shape is None or not any(layer.has_tt_cores for layer in layers):
        return False, "Round and continue needs a network with TT layers."
    if run.get("status") not in ROUNDABLE_STATUSES:
        return False, "Round and continue is offered once the run has ended or stopped."
    if not has_weights:
        return False, "This run has no weights file to round: resume it first (its checkpoint holds its weights)."
    ranks = [",".join(map(str, ranks)) for ranks, layer in zip(network_at_end(layers, in_shape, events)["ranks"], layers)
             if layer.has_tt_cores and ranks]
    return True, ("A new run, linked to this one, starts from its trained TT cores rounded (never building W) and "
                  f"trains on. TT ranks in use now: {'; '.join(ranks) or 'none'}.")


_TARGET = re.compile(r"^\s*(?:(rel)\s*:\s*)?([0-9.eE+-]+)\s*$", re.IGNORECASE)


def parse_target(text: str) -> tuple[Optional[int], Optional[float]]:
    """``"4"`` -> ``(4, None)`` (a max rank), ``"rel:0.1"`` -> ``(None, 0.1)`` (a relative error), as a schedule
    writes a step's target.

    Raises:
        ConfigError: field ``rank``, naming the text and the two forms.
    """
    match = _TARGET.match(text or "")
    hint = "write a max rank (e.g. 2) or rel: and a relative error (e.g. rel:0.1)"
    if match is None:
        raise ConfigError("rank", f"{text!r:.40} is not a rounding target: {hint}")
    if match.group(1):
        try:
            value = float(match.group(2))
        except ValueError:
            raise ConfigError("rel_error", f"{match.group(2)!r:.20} is not a number: {hint}") from None
        if not 0 < value < 1:
            raise ConfigError("rel_error", f"relative error {value:g} must be between 0 and 1 (both excluded), e.g. rel:0.1")
        return None, value
    if not match.group(2).isdigit():
        raise ConfigError("rank", f"rank {match.group(2)!r:.20} must be a whole number of 1 or more: {hint}")
    rank = int(match.group(2))
    if rank < 1:
        raise ConfigError("rank", f"rank {rank} must be at least 1: {hint}")
    return rank, None
