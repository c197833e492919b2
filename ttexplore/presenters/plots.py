"""Plotly figures from plain data: curves, accuracy against weights, rank and shape views, core diagrams.

Every function takes plain Python data (dicts, lists, a pandas DataFrame) and
returns a ``plotly.graph_objects.Figure``; none computes metrics or trains.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttexplore.core import ttmath
from ttexplore.core.ttshape import layer_text

__all__ = [
    "PALETTE",
    "training_curves",
    "accuracy_vs_params",
    "params_vs_rank",
    "factorizations_chart",
    "core_diagram",
]

#: Colour cycle shared by all figures (colour-blind safe, after Okabe & Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
           "#8C564B", "#7F7F7F")
_TEMPLATE = "plotly_white"


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _train_values(events: Sequence[Mapping[str, Any]], key: str) -> list[Optional[float]]:
    """Train metric ``key`` per event, without the whole-epoch averages that sit among finer points.

    :mod:`ttexplore.runs.fit` reports an ``"eval"`` event's train metrics over the batches since the
    previous event, but an ``"epoch"`` event's over the whole epoch. Drawn on one line the two
    kinds make a saw-tooth at every epoch end, so an epoch's own average is left out (``None``,
    bridged by ``connectgaps``) when that epoch already has ``"eval"`` points.
    """
    epochs_with_evals = {math.ceil(event["epoch"]) for event in events if event.get("kind") == "eval" and event.get("step", 0) > 0}
    return [None if event.get("kind") == "epoch" and math.ceil(event["epoch"]) in epochs_with_evals else event.get(key)
            for event in events]


def training_curves(runs: Sequence[Mapping[str, Any]], title: str = "Training curves") -> go.Figure:
    """Loss and accuracy against epochs, train dashed and test solid, one colour per run.

    Args:
        runs: each ``{"label": str, "events": [metric event, ...]}`` (events as
            :mod:`ttexplore.runs.fit` emits them or :meth:`RunStore.metrics` returns them).

    The legend names each run once; clicking it hides both of the run's lines.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss (cross-entropy)", "Accuracy"), horizontal_spacing=0.1)
    for index, run in enumerate(runs):
        events = list(run.get("events") or [])
        color, label = _color(index), str(run.get("label", f"run {index + 1}"))
        epochs = [event["epoch"] for event in events]
        # the legend's one entry for the run (an empty trace); the curves below are named "<label> (train|test)"
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines+markers", name=label, legendgroup=label,
                                    line={"color": color, "width": 2}, marker={"size": 5}, hoverinfo="skip"),
                         row=1, col=1)
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for split, dash in (("train", "dash"), ("test", "solid")):
                key = f"{split}_{metric}"
                values = _train_values(events, key) if split == "train" else [event.get(key) for event in events]
                figure.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=values,
                        mode="lines+markers" if len(events) < 40 else "lines",
                        connectgaps=True,
                        line={"color": color, "dash": dash, "width": 2},
                        marker={"size": 5},
                        name=f"{label} ({split})",
                        legendgroup=label,
                        showlegend=False,
                        hovertemplate=f"{label}<br>{split} {metric}: %{{y:.4f}}<br>epoch %{{x:.2f}}<extra></extra>",
                    ),
                    row=1,
                    col=column,
                )
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="loss", row=1, col=1)
    figure.update_yaxes(title_text="accuracy", row=1, col=2)
    figure.update_layout(template=_TEMPLATE, title=title, legend={"orientation": "h", "y": -0.2}, margin={"t": 70},
                         height=440)
    return figure


def accuracy_vs_params(
    rows: "Iterable[Mapping[str, Any]] | Any",
    title: str = "Accuracy against the number of weights in the first layer",
    accuracy_key: str = "test_accuracy",
    group_key: str = "shape",
    baselines: Sequence[str] = ("dense", "matrix rank"),
) -> go.Figure:
    """The 2018 reproduction's figure: accuracy against layer weights (log x), one line per shape.

    Args:
        rows: dicts (or a DataFrame) with ``layer_params``, ``accuracy_key``,
            ``group_key`` and optionally ``rank`` (used for hover text and order).
            Rows whose group is in ``baselines`` are drawn as separate marker traces.
    """
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else [dict(row) for row in rows]
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get(accuracy_key) is None or record.get("layer_params") is None:
            continue
        groups.setdefault(str(record[group_key]), []).append(record)
    figure = go.Figure()
    for index, (group, members) in enumerate(sorted(groups.items(), key=lambda item: (item[0] in baselines, item[0]))):
        members.sort(key=lambda record: record["layer_params"])
        is_baseline = group in baselines
        figure.add_trace(
            go.Scatter(
                x=[record["layer_params"] for record in members],
                y=[record[accuracy_key] for record in members],
                mode="markers" if is_baseline and len(members) == 1 else "lines+markers",
                name=group,
                marker={"size": 11 if is_baseline else 8, "symbol": "diamond" if is_baseline else "circle", "color": _color(index)},
                line={"color": _color(index), "dash": "dot" if is_baseline else "solid"},
                text=[f"rank {record.get('rank', '')}" for record in members],
                hovertemplate=f"{group}<br>%{{text}}<br>weights %{{x:,}}<br>accuracy %{{y:.4f}}<extra></extra>",
            )
        )
    xs = [record["layer_params"] for members in groups.values() for record in members if record["layer_params"] > 0]
    wide = bool(xs) and max(xs) / min(xs) >= 100  # label only the powers of ten when they are enough
    figure.update_xaxes(type="log", title_text="number of weights in the first layer (log scale)", dtick=1 if wide else None)
    figure.update_yaxes(title_text="test accuracy")
    figure.update_layout(template=_TEMPLATE, title=title, legend={"title": {"text": "shape"}})
    return figure


def params_vs_rank(
    in_modes: Sequence[int], out_modes: Sequence[int], max_rank: int = 16, current_rank: Optional[int] = None
) -> go.Figure:
    """TT layer weights against the max TT rank for one shape, the current rank marked.

    The left axis counts weights, the right axis reads the same curve as the
    compression rate (TT / dense weights); the dense layer is the dotted line.
    """
    ranks = list(range(1, max(2, int(max_rank)) + 1))
    dense = ttmath.dense_param_count(ttmath.prod(in_modes), ttmath.prod(out_modes))
    counts = [ttmath.param_count(in_modes, out_modes, rank) for rank in ranks]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(x=ranks, y=counts, mode="lines+markers", name="layer weights", line={"color": _color(0)},
                   customdata=[[count / dense, dense / count] for count in counts],
                   hovertemplate="rank %{x}<br>%{y:,} weights<br>rate %{customdata[0]:.3g} (%{customdata[1]:,.0f}x smaller)<extra></extra>"),
        secondary_y=False,
    )
    # an invisible twin on the right axis, so that axis exists; its range mirrors the left one
    figure.add_trace(go.Scatter(x=ranks, y=[count / dense for count in counts], mode="lines", line={"width": 0},
                                showlegend=False, hoverinfo="skip"), secondary_y=True)
    if current_rank is not None:
        current = ttmath.param_count(in_modes, out_modes, current_rank)
        figure.add_trace(
            go.Scatter(x=[min(current_rank, ranks[-1])], y=[current], mode="markers", name="your choice",
                       marker={"size": 16, "color": _color(1), "symbol": "star"},
                       hovertemplate="rank %{x}: %{y:,} weights<extra>your choice</extra>"),
            secondary_y=False,
        )
    figure.add_trace(go.Scatter(x=[ranks[0], ranks[-1]], y=[dense, dense], mode="lines", name=f"dense ({dense:,})",
                                line={"color": "#999", "dash": "dot"}, hoverinfo="skip"), secondary_y=False)
    low, high = math.log10(min(counts) / 2), math.log10(dense * 2)
    figure.update_xaxes(title_text="max TT rank", dtick=1 if len(ranks) <= 12 else (2 if len(ranks) <= 24 else None))
    figure.update_yaxes(title_text="layer weights", type="log", range=[low, high], dtick=1, secondary_y=False)
    figure.update_yaxes(title_text="compression rate (TT / dense)", type="log", secondary_y=True, showgrid=False,
                        range=[low - math.log10(dense), high - math.log10(dense)], dtick=1, tickformat=".0e")
    figure.update_layout(template=_TEMPLATE, title="Layer weights by max TT rank",
                         legend={"orientation": "h", "y": -0.25}, height=420, margin={"t": 60, "l": 60, "r": 60})
    return figure


def _shape_text(item: Any) -> str:
    """The item's shape in the house text form (``4x8x8x4``, ``4x7x4x7->5x5x8x4``), else its label."""
    in_modes, out_modes = getattr(item, "in_modes", None), getattr(item, "out_modes", None)
    if in_modes is None or out_modes is None:
        return str(item.label)
    return layer_text(in_modes, out_modes)


def factorizations_chart(suggestions: Sequence[Any], current_label: Optional[str] = None, rank: Optional[int] = None) -> go.Figure:
    """Horizontal bars of layer weights for other tensorizations of the same layer.

    Args:
        suggestions: :class:`ttexplore.core.shapes.ShapeSuggestion` items (``label``, ``params``,
            ``in_modes``, ``out_modes``), drawn top to bottom in the given order.
        current_label: the user's choice (highlighted), e.g. ``"4x8x8x4"``.
    """
    labels = [_shape_text(item) for item in suggestions]
    colors = [_color(1) if item.label == current_label else _color(0) for item in suggestions]
    figure = go.Figure(
        go.Bar(
            x=[item.params for item in suggestions],
            y=labels,
            orientation="h",
            marker={"color": colors},
            text=[f"{item.params:,}" + ("  ← yours" if item.label == current_label else "") for item in suggestions],
            textposition="outside",
            cliponaxis=False,
            customdata=[item.label for item in suggestions],
            hovertemplate="%{customdata}<br>%{x:,} weights<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", title_text=None, automargin=True, tickfont={"size": 11})
    highest = max((item.params for item in suggestions), default=1)
    figure.update_xaxes(title_text="layer weights" + (f" at max rank {rank}" if rank is not None else "") + " (log scale)",
                        type="log", dtick=1, range=[0, math.log10(highest) + 0.6])
    figure.update_layout(template=_TEMPLATE, title="Other factorizations of this layer", showlegend=False,
                         height=max(300, 26 * len(labels) + 130), margin={"t": 60, "r": 20})
    return figure


def core_diagram(in_modes: Sequence[int], out_modes: Sequence[int], ranks: ttmath.RanksLike) -> go.Figure:
    """A tensor-network drawing of the cores: boxes ``G_k`` with shape ``r x n x m x r``,
    joined by rank edges, input legs ``n_k`` below and output legs ``m_k`` above.

    Shapes and annotations are collected as plain dicts and set once (plotly validates each
    ``add_shape`` call separately, which made a 10-core drawing take a third of a second).
    """
    shapes = ttmath.core_shapes(in_modes, out_modes, ranks)
    crowded = len(shapes) > 6  # smaller type so ten cores still read on a dashboard column
    small, label = (8, 11) if crowded else (11, 15)
    drawn: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    spacing = 1.6

    def note(x: float, y: float, text: str, **font: Any) -> None:
        notes.append({"x": x, "y": y, "text": text, "showarrow": False, **({"font": font} if font else {})})

    for index, (rank_in, n, m, rank_out) in enumerate(shapes):
        x = index * spacing
        drawn.append({"type": "rect", "x0": x - 0.45, "x1": x + 0.45, "y0": -0.35, "y1": 0.35,
                      "line": {"color": _color(0), "width": 2}, "fillcolor": "rgba(0,114,178,0.12)"})
        note(x, 0.08, f"<b>G<sub>{index + 1}</sub></b>", size=label)
        note(x, -0.16, f"{rank_in}×{n}×{m}×{rank_out}", size=small)
        drawn.append({"type": "line", "x0": x, "x1": x, "y0": -0.35, "y1": -0.9, "line": {"color": _color(2), "width": 2}})
        note(x, -1.05, f"n<sub>{index + 1}</sub>={n}", color=_color(2), size=small + 2)
        drawn.append({"type": "line", "x0": x, "x1": x, "y0": 0.35, "y1": 0.9, "line": {"color": _color(1), "width": 2}})
        note(x, 1.05, f"m<sub>{index + 1}</sub>={m}", color=_color(1), size=small + 2)
        if index < len(shapes) - 1:
            drawn.append({"type": "line", "x0": x + 0.45, "x1": x + spacing - 0.45, "y0": 0, "y1": 0,
                          "line": {"color": "#444", "width": 2}})
            note(x + spacing / 2, 0.12, f"r<sub>{index + 1}</sub>={rank_out}", size=small + 1)
    width = (len(shapes) - 1) * spacing
    return go.Figure(layout={
        "template": _TEMPLATE,
        "height": 220,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "title": {"text": f"{len(shapes)} cores, {sum(ttmath.prod(s) for s in shapes):,} weights"},
        "xaxis": {"visible": False, "range": [-0.8, width + 0.8]},
        "yaxis": {"visible": False, "range": [-1.3, 1.3]},
        "shapes": drawn,
        "annotations": notes,
    })
