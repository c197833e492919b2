"""What a run page shows inside the TT cores: each core's weight and gradient norms over training, the
singular values of each unfolding of the trained layer, its effective ranks, and in words which rank
boundary is saturated (its rank limits it) and which is wasted (fewer would do).

Plain data in (metric events as :meth:`~ttexplore.runs.store.RunStore.metrics` returns them, each with its
``"cores"`` norms; a spectra record as :mod:`ttexplore.runs.corestats` keeps it), plotly figures, table
rows and words out. No streamlit; torch only inside :func:`spectra_for`, which has a missing record
computed once.

A boundary ``k`` of a layer, with ``r_k`` the rank in use and ``sigma_1 >= ... >= sigma_{r_k}`` the singular
values of its unfolding (from the trained cores), is

* **wasted** when ``r_k`` exceeds its effective rank at :data:`WASTED_TOLERANCE` (a smaller rank keeps
  the layer within that relative error: the rest of the rank spends weights on next to nothing);
* else **full** when ``r_k`` is its maximal useful rank (the layer is exact there, nothing limits it);
* else **saturated** when ``sigma_{r_k} / sigma_1 >= SATURATED_RATIO`` (the spectrum is still high at the
  last value kept: the rank cuts it off, so the rank limits what the layer can learn there);
* else **fits** (its spectrum decays within the rank, and the rank is needed).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttexplore.presenters.plots import PALETTE
from ttexplore.presenters.tracking import X_AXES, curve_xy

__all__ = ["SATURATED_RATIO", "WASTED_TOLERANCE", "VERDICTS", "TABLE_WIDTHS", "norm_series", "norms_figure", "boundary_verdicts",
           "verdict_markdown", "effective_rank_rows", "spectra_figure", "layer_sections", "spectra_for"]

#: A boundary whose last kept singular value is at least this share of its first is saturated.
SATURATED_RATIO = 0.1
#: A boundary whose rank exceeds its effective rank at this relative error is wasted.
WASTED_TOLERANCE = 1e-2
#: Each verdict's one-line meaning (the table's help and the legend of the words).
VERDICTS = {
    "saturated": "its last kept singular value is still large next to its first: the rank limits it",
    "wasted": f"a smaller rank keeps the layer within {WASTED_TOLERANCE:g}: the rest of its rank adds weights for next to nothing",
    "full": "it uses its maximal useful rank: the layer is exact there, no rank limits it",
    "fits": "its spectrum decays within its rank and every value is needed",
}
_TEMPLATE = "plotly_white"
#: Pixel widths of :func:`effective_rank_rows`' columns: the table fits the run page's right column at 1400 px.
TABLE_WIDTHS = {"boundary": 62, "in use": 50, "at 0.1": 48, "at 0.01": 52, "at 0.001": 58, "σ_r / σ_1": 60, "verdict": 72}


# ---------------------------------------------------------------- norms over training
def norm_series(events: Sequence[Mapping[str, Any]], layer: int, x: str = "epoch") -> dict[str, Any]:
    """The core norms of hidden layer ``layer`` (0-based) over the events that carry them.

    Returns:
        ``{"x": [...], "weight": [[core 1's norms], ...], "grad": [[...], ...]}``, one list per core, aligned
        with ``x`` (a gradient norm is ``None`` before the first optimizer step); empty lists when no event
        carries the layer's norms (a run recorded before they were, or a layer without TT cores).
    """
    xs: list[Any] = []
    weight: list[list[Optional[float]]] = []
    grad: list[list[Optional[float]]] = []
    for event, position in zip(events, curve_xy(events, x)):
        record = next((item for item in event.get("cores") or [] if item.get("layer") == layer), None)
        if record is None:
            continue
        cores = len(record["weight"])
        while len(weight) < cores:
            weight.append([None] * len(xs))
            grad.append([None] * len(xs))
        xs.append(position)
        for core in range(len(weight)):
            weight[core].append(record["weight"][core] if core < cores else None)
            grads = record.get("grad")
            grad[core].append(grads[core] if grads is not None and core < len(grads) else None)
    return {"x": xs, "weight": weight, "grad": grad}


def norms_figure(events: Sequence[Mapping[str, Any]], layer: int, title: str, x: str = "epoch") -> go.Figure:
    """Left: the Frobenius norm of each core of hidden layer ``layer`` over training; right: the norm of its
    gradient at each metric event (log y). One colour per core, ``G1..Gd`` in the legend."""
    series = norm_series(events, layer, x)
    axis_title = X_AXES.get(x, X_AXES["epoch"])[1]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=("‖G_k‖ (weight norm per core)", "‖∂loss/∂G_k‖ (gradient norm, last step)"))
    mode = "lines+markers" if len(series["x"]) < 40 else "lines"
    for core, (weights, grads) in enumerate(zip(series["weight"], series["grad"]), start=1):
        color = PALETTE[(core - 1) % len(PALETTE)]
        figure.add_trace(go.Scatter(x=series["x"], y=weights, mode=mode, name=f"G{core}", legendgroup=str(core),
                                    line={"color": color, "width": 2}, marker={"size": 5}, connectgaps=True,
                                    hovertemplate=f"G{core}: %{{y:.4g}}<br>{axis_title} %{{x:.4g}}<extra></extra>"),
                         row=1, col=1)
        figure.add_trace(go.Scatter(x=series["x"], y=grads, mode=mode, name=f"G{core}", legendgroup=str(core),
                                    showlegend=False, line={"color": color, "width": 2}, marker={"size": 5},
                                    hovertemplate=f"G{core} gradient: %{{y:.3g}}<br>{axis_title} %{{x:.4g}}<extra></extra>"),
                         row=1, col=2)
    figure.update_xaxes(title_text=axis_title)
    figure.update_yaxes(title_text="norm", row=1, col=1)
    figure.update_yaxes(title_text="gradient norm", type="log", exponentformat="power", row=1, col=2)
    figure.update_layout(template=_TEMPLATE, title=title, height=380, legend={"orientation": "h", "y": -0.25},
                         margin={"t": 80, "b": 40})
    return figure


# ---------------------------------------------------------------- the trained layer's spectra
def _ratio(spectrum: Sequence[float]) -> float:
    """``sigma_last / sigma_1`` of a spectrum (0 for an empty or zero one)."""
    return float(spectrum[-1]) / float(spectrum[0]) if spectrum and spectrum[0] > 0 else 0.0


def boundary_verdicts(layer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per rank boundary of a layer's spectra record: its rank in use, maximal useful rank, last kept
    singular value over the first, effective ranks, and its verdict (see the module docstring).

    Returns:
        ``[{"boundary": k (1-based), "rank", "max_useful", "ratio", "effective": {"0.1": r, ...}, "verdict"}]``.
    """
    wasted_key = f"{WASTED_TOLERANCE:g}"
    rows = []
    for index, spectrum in enumerate(layer["singular_values"]):
        rank, limit = int(layer["ranks"][index]), int(layer["max_useful"][index])
        effective = {key: int(ranks[index]) for key, ranks in layer["effective_ranks"].items()}
        ratio = _ratio(spectrum)
        if wasted_key in effective and rank > effective[wasted_key]:
            verdict = "wasted"
        elif rank >= limit:
            verdict = "full"
        elif ratio >= SATURATED_RATIO:
            verdict = "saturated"
        else:
            verdict = "fits"
        rows.append({"boundary": index + 1, "rank": rank, "max_useful": limit, "ratio": ratio, "effective": effective,
                     "verdict": verdict})
    return rows


def effective_rank_rows(layer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The small table beside the spectra: per boundary, the rank in use, the effective rank at each
    tolerance, ``sigma_r / sigma_1`` and the verdict (the maximal useful rank is in the words)."""
    return [{"boundary": f"r{row['boundary']}", "in use": row["rank"],
             **{f"at {key}": value for key, value in row["effective"].items()},
             "σ_r / σ_1": round(row["ratio"], 4), "verdict": row["verdict"]} for row in boundary_verdicts(layer)]


def _boundaries(numbers: Sequence[int]) -> str:
    listed = ", ".join(f"r{number}" for number in numbers)
    return f"boundary {listed}" if len(numbers) == 1 else f"boundaries {listed}"


def verdict_markdown(layer: Mapping[str, Any]) -> str:
    """The spectra in words: which boundaries are saturated and which are wasted, with their numbers and what
    to try (one line each), then the others in one line."""
    rows = boundary_verdicts(layer)
    if not rows:
        return "One core: the layer has no rank boundary."
    lines = []
    for row in rows:
        k, rank, effective = row["boundary"], row["rank"], row["effective"].get(f"{WASTED_TOLERANCE:g}")
        if row["verdict"] == "saturated":
            lines.append(f"- **r{k} is saturated**: its smallest kept singular value is {row['ratio']:.2f} of its first, "
                         f"so its rank {rank} limits it; a higher rank there may help (up to {row['max_useful']:,} is useful).")
        elif row["verdict"] == "wasted":
            lines.append(f"- **r{k} is wasted**: it uses rank {rank}, but rank {effective} already keeps the layer within "
                         f"{WASTED_TOLERANCE:g}; the rest costs weights for next to nothing.")
    others = {verdict: [row["boundary"] for row in rows if row["verdict"] == verdict] for verdict in ("full", "fits")}
    if others["full"]:
        lines.append(f"- {_boundaries(others['full']).capitalize()} at the maximal useful rank: exact there.")
    if others["fits"]:
        lines.append(f"- {_boundaries(others['fits']).capitalize()} fit: the spectrum decays within the rank, all of it needed.")
    if not any(row["verdict"] in ("saturated", "wasted") for row in rows):
        lines.insert(0, "No boundary is saturated or wasted.")
    return "\n".join(lines)


def spectra_figure(layer: Mapping[str, Any], title: str) -> go.Figure:
    """The singular values of each unfolding of the trained layer, scaled by the largest (log y), one line per
    rank boundary; a diamond marks the rank in use (the last value the cores keep) and a dotted line the
    saturation threshold :data:`SATURATED_RATIO`."""
    figure = go.Figure()
    verdicts = {row["boundary"]: row["verdict"] for row in boundary_verdicts(layer)}
    for index, spectrum in enumerate(layer["singular_values"]):
        k, color = index + 1, PALETTE[index % len(PALETTE)]
        top = spectrum[0] if spectrum and spectrum[0] > 0 else 1.0
        scaled = [max(float(value) / top, 1e-16) for value in spectrum]
        ranks = list(range(1, len(scaled) + 1))
        figure.add_trace(go.Scatter(x=ranks, y=scaled, mode="lines+markers" if len(scaled) <= 64 else "lines",
                                    name=f"r{k} ({verdicts.get(k, '')})", legendgroup=str(k),
                                    line={"color": color, "width": 2}, marker={"size": 5},
                                    hovertemplate=f"r{k}, i=%{{x}}: σ_i/σ_1 %{{y:.3g}}<extra></extra>"))
        if scaled:
            figure.add_trace(go.Scatter(x=[len(scaled)], y=[scaled[-1]], mode="markers", legendgroup=str(k),
                                        showlegend=False, marker={"color": color, "size": 12, "symbol": "diamond",
                                                                  "line": {"width": 1, "color": "#7F7F7F"}},
                                        hovertemplate=f"r{k} in use: {layer['ranks'][index]}<extra></extra>"))
    figure.add_hline(y=SATURATED_RATIO, line={"dash": "dot", "color": "#7F7F7F"},
                     annotation_text=f"saturated above {SATURATED_RATIO:g}", annotation_position="bottom right")
    figure.update_xaxes(title_text="i (the diamond: the rank in use)", type="log" if max(layer["ranks"], default=1) > 32 else "linear")
    figure.update_yaxes(title_text="σ_i / σ_1", type="log", exponentformat="power")
    figure.update_layout(template=_TEMPLATE, title=title, height=380, legend={"orientation": "h", "y": -0.25},
                         margin={"t": 60, "b": 40})
    return figure


def spectra_for(store: Any, run: Mapping[str, Any]) -> Optional[dict]:
    """The run's spectra record: the one kept with it, else (once the run is no longer queued or running) computed
    from its final weights or its last checkpoint and kept, so it is computed once; ``None`` while it is active,
    for a network without a TT layer, or without weights to read (why is logged)."""
    import logging

    from ttexplore.runs import corestats
    from ttexplore.runs.store import ACTIVE_STATUSES

    record = corestats.read_spectra(store, run["id"])
    if record is not None or run.get("status") in ACTIVE_STATUSES:
        return record
    try:
        from ttexplore.runs.config import RunConfig
        from ttexplore.runs.lifecycle import load_checkpoint
        from ttexplore.runs.models import load_model

        config = RunConfig.from_dict(dict(run["config"]))
        if not any(layer.has_tt_cores for layer in config.layers):
            return None
        weights = store.artifact_path(run.get("weights_path"))
        if weights is not None and weights.is_file():
            model, _ = load_model(weights)
            return corestats.record_spectra(store, run["id"], config, model, "final weights")
        state = load_checkpoint(store.checkpoint_path_for(run["id"]), config)
        if state is None:
            return None
        return corestats.record_spectra_from_state(store, run["id"], config, state.model_state,
                                                   f"checkpoint after epoch {state.epochs_done}")
    except Exception as error:  # noqa: BLE001 - the page says there are none; the log says why
        logging.getLogger(__name__).warning("no spectra for run %s: %s", run.get("id"), error)
        return None


def layer_sections(run: Mapping[str, Any], events: Sequence[Mapping[str, Any]],
                   record: Optional[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the run page draws per TT layer of ``run``: ``{"layer" (0-based), "heading", "norms" (whether some
    event carries its core norms), "norms_note" (why not, else ''), "spectra" (its record, or None),
    "spectra_note" (where the spectra come from, or why there are none)}``; ``[]`` for a network without
    a TT layer."""
    from ttexplore.runs.config import RunConfig

    config = RunConfig.from_dict(dict(run["config"]))
    active = run.get("status") in ("queued", "running")
    by_layer = {item.get("layer"): item for item in (record or {}).get("layers", [])}
    sections = []
    for index, layer in enumerate(config.layers):
        if not layer.has_tt_cores:
            continue
        norms = any(item.get("layer") == index for event in events for item in event.get("cores") or [])
        spectra = by_layer.get(index)
        sections.append({
            "layer": index,
            "heading": f"Hidden layer {index + 1}: {layer.describe(config.layer_shapes[index])}",
            "norms": norms,
            "norms_note": "" if norms else ("No point yet: the norms come with each evaluation." if active or not events
                                            else "This run was recorded before core norms were: train it again to see them."),
            "spectra": spectra,
            "spectra_note": (f"From its {record.get('source', 'weights')}." if spectra is not None and record else
                             "The spectra come when the run ends." if active else
                             "No spectra: the run left no weights or checkpoint to read them from."),
        })
    return sections
