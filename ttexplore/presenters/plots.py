"""Plotly figures from plain data: curves, accuracy against weights, rank and shape views, core diagrams.

Every function takes plain Python data (dicts, lists, a pandas DataFrame) and
returns a ``plotly.graph_objects.Figure``; none computes metrics or trains.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttexplore.presenters.groups import BAND_LEGEND, BAND_WORDS
from ttexplore.tt import ttmath
from ttexplore.tt.convshape import conv_core_shapes
from ttexplore.tt.ttshape import layer_text, ranks_text
from ttexplore.presenters.usertext import plot_text

__all__ = [
    "PALETTE",
    "THEME_BACKGROUNDS",
    "band_trace",
    "training_curves",
    "accuracy_vs_params",
    "params_vs_rank",
    "factorizations_chart",
    "core_diagram",
    "ttconv_diagram",
    "hparams_parallel",
    "hparam_scatter",
    "tt_schematic_svg",
]

#: Colour cycle shared by all figures, after Okabe & Ito's colour-blind-safe set, each with a contrast of at least
#: 3:1 (WCAG's bar for lines and markers) against both backgrounds a figure is drawn on: the light theme's white
#: and the dark theme's #0E1117 (:data:`THEME_BACKGROUNDS`). Okabe & Ito's black vanished on the dark theme and
#: their yellow, orange and sky blue on white: they became a purple, and darker amber, olive and sky blue.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#C77C00", "#3399CC", "#8E8E00", "#9467BD",
           "#8C564B", "#7F7F7F")
#: The plot backgrounds of the app's light and dark themes (and of the downloads' white template).
THEME_BACKGROUNDS = {"light": "#FFFFFF", "dark": "#0E1117"}
_TEMPLATE = "plotly_white"


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _rgba(color: str, alpha: float) -> str:
    """``"#0072B2"`` -> ``"rgba(0,114,178,0.15)"``: a colour's band fill."""
    red, green, blue = (int(color[index:index + 2], 16) for index in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


#: How a legend names a line style.
STYLE_WORDS = {"dash": "dashed", "solid": "solid", "dot": "dotted"}


def band_trace(xs: Sequence[Any], lows: Sequence[Optional[float]], highs: Sequence[Optional[float]], color: str,
               legendgroup: str, name: str) -> Optional[go.Scatter]:
    """A filled band between ``lows`` and ``highs`` over ``xs`` (points where either is ``None`` left out), for
    a seed group's spread; ``None`` when no point has both edges. The trace's ``y`` runs along the highs and back
    along the lows, its ``x`` likewise (plotly's ``fill="toself"``)."""
    kept = [(x, low, high) for x, low, high in zip(xs, lows, highs) if low is not None and high is not None and x is not None]
    if not kept:
        return None
    return go.Scatter(x=[x for x, _, _ in kept] + [x for x, _, _ in reversed(kept)],
                      y=[high for _, _, high in kept] + [low for _, low, _ in reversed(kept)],
                      fill="toself", fillcolor=_rgba(color, 0.15), line={"width": 0}, mode="lines", hoverinfo="skip",
                      legendgroup=legendgroup, showlegend=False, name=name)


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


#: The y range each panel of :func:`training_curves` shows before any point arrives.
_EMPTY_RANGES = {"loss": [0.0, 2.5], "accuracy": [0.0, 1.0]}


def training_curves(
    runs: Sequence[Mapping[str, Any]],
    title: str = "Training curves",
    x: str = "epoch",
    smoothing: float = 0.0,
    log_loss: bool = False,
) -> go.Figure:
    """Loss and accuracy of several runs, train dashed and test solid, one colour per run.

    Args:
        runs: each ``{"label": str, "events": [metric event, ...]}`` (events as
            :mod:`ttexplore.runs.fit` emits them or :meth:`RunStore.metrics` returns them),
            optionally ``"epochs"`` (the planned epochs: the x range while it waits) and
            ``"waiting"`` (a short reason, shown while the run has no point) and ``"pending"``
            (False once it ended: a run that failed before its first point is not waited for); a seed
            group's mean curve (:func:`ttexplore.presenters.groups.mean_events`) also has ``"bands"``
            (``{metric key: (lows, highs, kinds)}``), drawn as a band around each line, and ``n`` per event.
        x: ``"epoch"``, ``"step"`` (optimizer steps) or ``"time"`` (training seconds); see
            :data:`ttexplore.presenters.tracking.X_AXES`.
        smoothing: TensorBoard's exponential smoothing weight in ``[0, 1)``; the raw
            points stay as a faint line under the smoothed one.
        log_loss: draw the loss on a log axis.

    The legend names each run once (clicking it hides all of the run's lines) and says
    which line style is train and which is test (and validation, dotted, when a run holds a validation
    split out), also in an exported image. A run without
    points is listed with its reason; with no point at all the axes keep sensible ranges
    and the figure says what it waits for. Each rounding of a rank schedule (a ``"round"``
    event) is a dotted vertical line in the run's colour, labelled with the weights in use
    from then on.
    """
    from ttexplore.presenters.rounding import rounding_marks
    from ttexplore.presenters.tracking import X_AXES, curve_xy, smooth

    axis_title = X_AXES.get(x, X_AXES["epoch"])[1]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss (cross-entropy)", "Accuracy"), horizontal_spacing=0.1)
    # a run with a validation split also draws it, dotted (its epoch ends only)
    validated = any(event.get("val_loss") is not None for run in runs for event in run.get("events") or [])
    styles = (("train", "dash"), ("test", "solid")) + ((("val", "dot"),) if validated else ())
    plotted = 0
    waiting: list[str] = []
    for index, run in enumerate(runs):
        events = list(run.get("events") or [])
        color, label = _color(index), plot_text(run.get("label", f"run {index + 1}"))  # a user's name: not markup
        if not events:
            waiting.append(f"{label}: {plot_text(run.get('waiting') or 'waiting for its first point')}")
        xs = curve_xy(events, x)
        plotted += len(events)
        # the legend's one entry for the run (an empty trace); the curves below are named "<label> (train|test)"
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines+markers", line={"color": color, "width": 2},
                                    name=label if events else f"{label} (no point yet)", legendgroup=label,
                                    marker={"size": 5}, hoverinfo="skip"), row=1, col=1)
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for split, dash in styles:
                key = f"{split}_{metric}"
                values = _train_values(events, key) if split == "train" else [event.get(key) for event in events]
                hover = f"{label}<br>{split} {metric}: %{{y:.4f}}<br>{axis_title} %{{x:.4g}}<extra></extra>"
                band = (run.get("bands") or {}).get(key)
                customdata = None
                if band is not None:
                    lows, highs, kinds = band
                    shown = [value is not None for value in values]  # the band follows the line's own points
                    trace = band_trace([x if keep else None for x, keep in zip(xs, shown)], lows, highs, color, label,
                                       f"{label} ({split}, band)")
                    if trace is not None:
                        figure.add_trace(trace, row=1, col=column)
                    customdata = [[event.get("n", 1), BAND_WORDS.get(kind, "")] for event, kind in zip(events, kinds)]
                    hover = (f"{label}<br>{split} {metric}: %{{y:.4f}} (mean of %{{customdata[0]}}, band "
                             f"%{{customdata[1]}})<br>{axis_title} %{{x:.4g}}<extra></extra>")
                if smoothing > 0 and len(events) > 1:
                    figure.add_trace(go.Scatter(x=xs, y=values, mode="lines", connectgaps=True, opacity=0.25,
                                                line={"color": color, "dash": dash, "width": 1}, legendgroup=label,
                                                name=f"{label} ({split}, raw)", showlegend=False, hoverinfo="skip"),
                                     row=1, col=column)
                    values = smooth(values, smoothing)
                figure.add_trace(
                    go.Scatter(x=xs, y=values, mode="lines+markers" if len(events) < 40 else "lines", connectgaps=True,
                               line={"color": color, "dash": dash, "width": 2}, marker={"size": 5}, customdata=customdata,
                               name=f"{label} ({split})", legendgroup=label, showlegend=False, hovertemplate=hover),
                    row=1, col=column,
                )
        for mark in rounding_marks(events, X_AXES.get(x, X_AXES["epoch"])[0]):
            for column in (1, 2):
                figure.add_vline(x=mark["x"], line={"color": color, "dash": "dot", "width": 1}, row=1, col=column,
                                 annotation_text=mark["text"] if column == 2 else None,
                                 annotation_position="bottom right", annotation_font={"size": 10, "color": color})
    # what the two line styles mean, in the legend itself (an exported image keeps it)
    for split, dash in styles:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{split} ({STYLE_WORDS[dash]})",
                                    line={"color": "#888", "dash": dash, "width": 2}, legendgroup=f"style-{split}",
                                    hoverinfo="skip"), row=1, col=1)
    if any(run.get("bands") for run in runs):  # what the bands are, in the legend too
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=BAND_LEGEND, fill="toself",
                                    line={"color": "rgba(136,136,136,0.4)", "width": 8}, hoverinfo="skip"), row=1, col=1)
    figure.update_xaxes(title_text=axis_title)
    figure.update_yaxes(title_text="loss" + (" (log scale)" if log_loss else ""), type="log" if log_loss else None, row=1, col=1)
    figure.update_yaxes(title_text="accuracy", row=1, col=2)
    if not plotted:
        planned = max((float(run.get("epochs") or 1) for run in runs), default=1.0) if x == "epoch" else 1.0
        figure.update_xaxes(range=[0, planned])
        figure.update_yaxes(range=_EMPTY_RANGES["accuracy"], row=1, col=2)
        if not log_loss:
            figure.update_yaxes(range=_EMPTY_RANGES["loss"], row=1, col=1)
        pending = any(run.get("pending", True) for run in runs)
        message = ("Waiting for the first point" if pending else "No point to draw") if runs else "No run chosen"
        figure.add_annotation(text=f"<b>{message}</b>" + "".join(f"<br>{line}" for line in waiting[:4]), showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 14},
                              bgcolor="rgba(128,128,128,0.12)", borderpad=8)
    elif waiting:
        figure.add_annotation(text="Still waiting: " + "; ".join(waiting[:3]), showarrow=False, xref="paper", yref="paper",
                              x=0, y=1.13, xanchor="left", font={"size": 11}, opacity=0.8)
    # uirevision: a live redraw keeps the user's zoom and the runs hidden from the legend
    figure.update_layout(template=_TEMPLATE, title=plot_text(title) if title is not None else None,  # may hold a name
                         legend={"orientation": "h", "y": -0.22}, margin={"t": 80}, height=460,
                         uirevision=f"curves-{x}-{log_loss}")
    return figure


def accuracy_vs_params(
    rows: "Iterable[Mapping[str, Any]] | Any",
    title: str = "Accuracy against the number of weights in the first layer",
    accuracy_key: str = "test_accuracy",
    group_key: str = "group",
    baselines: Sequence[str] = ("dense", "matrix rank"),
    reference: Optional[Mapping[str, Any]] = None,
    accuracy_title: str = "test accuracy",
    error_key: Optional[str] = None,
    x_title: str = "weights in the first layer (log scale)",
) -> go.Figure:
    """The 2018 reproduction's figure: accuracy against layer weights (log x), one line per group.

    Args:
        rows: dicts (or a DataFrame) with ``layer_params``, ``accuracy_key``, ``shape``,
            optionally ``group_key`` (the line; default the shape: see
            :func:`ttexplore.presenters.groups.accuracy_points`, which keeps training
            budgets apart), ``rank`` and ``budget`` (hover text). A point that is a seed group's mean
            also has ``n``, ``low``, ``high`` and ``band`` (``"std"`` or ``"min-max"``,
            :class:`ttexplore.presenters.groups.Spread`): a line's band is a filled area, a lone point's
            an error bar, and the legend says which band is which.
            Rows whose shape (or group) is in ``baselines`` are drawn as separate dotted traces.
        reference: a pinned baseline run, ``{"label", "accuracy", "layer_params"}``: a dashed line at its
            accuracy, and each point's hover gives its accuracy difference and weight ratio against it.
        error_key: a key holding each point's spread (e.g. the std over seeds), drawn as error bars.
        x_title: the x axis' title (``layer_params`` may hold the whole network's weights).
    """
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else [dict(row) for row in rows]
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get(accuracy_key) is None or record.get("layer_params") is None:
            continue
        groups.setdefault(str(record.get(group_key) or record.get("shape")), []).append(record)

    def is_baseline(group: str) -> bool:
        return group in baselines or str(groups[group][0].get("shape")) in baselines

    def hover_text(record: dict[str, Any]) -> str:
        parts = [f"rank {record['rank']}" if record.get("rank") not in (None, "") else "", str(record.get("budget") or "")]
        if record.get("n"):
            parts.append(f"mean of {record['n']} seed{'s' if record['n'] != 1 else ''}"
                         + (f", band {BAND_WORDS[record['band']]} {record['low']:.4f}–{record['high']:.4f}"
                            if record["n"] > 1 else ""))
        if reference is not None and reference.get("accuracy") is not None and reference.get("layer_params"):
            parts.append(f"{record[accuracy_key] - reference['accuracy']:+.4f} vs baseline, "
                         f"{record['layer_params'] / reference['layer_params']:.3g}× its weights")
        return " · ".join(part for part in parts if part)

    figure = go.Figure()
    banded = False
    for index, (group, members) in enumerate(sorted(groups.items(), key=lambda item: (is_baseline(item[0]), item[0]))):
        members.sort(key=lambda record: record["layer_params"])
        baseline = is_baseline(group)
        color = _color(index)
        xs = [record["layer_params"] for record in members]
        spreads = [record.get("n", 1) > 1 and record.get("low") is not None for record in members]
        error_y = None
        if any(spreads) and len(members) > 1:
            trace = band_trace(xs, [record.get("low") if kept else None for record, kept in zip(members, spreads)],
                               [record.get("high") if kept else None for record, kept in zip(members, spreads)],
                               color, group, f"{group} (band)")
            if trace is not None:
                figure.add_trace(trace)
                banded = True
        if error_key is not None:  # a spread given per point (e.g. a std over seeds): error bars
            error_y = {"type": "data", "array": [record.get(error_key) or 0.0 for record in members], "visible": True,
                       "thickness": 1.5}
        elif any(spreads) and len(members) == 1:
            error_y = {"type": "data", "symmetric": False, "color": color,
                       "array": [record["high"] - record[accuracy_key] for record in members],
                       "arrayminus": [record[accuracy_key] - record["low"] for record in members]}
            banded = True
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=[record[accuracy_key] for record in members],
                mode="markers" if baseline and len(members) == 1 else "lines+markers",
                name=group,
                legendgroup=group,
                marker={"size": 11 if baseline else 8, "symbol": "diamond" if baseline else "circle", "color": color},
                line={"color": color, "dash": "dot" if baseline else "solid"},
                error_y=error_y,
                text=[hover_text(record) for record in members],
                hovertemplate=f"{group}<br>%{{text}}<br>weights %{{x:,}}<br>accuracy %{{y:.4f}}<extra></extra>",
            )
        )
    if banded:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=BAND_LEGEND, hoverinfo="skip",
                                    line={"color": "rgba(136,136,136,0.4)", "width": 8}))
    if reference is not None and reference.get("accuracy") is not None:
        figure.add_hline(y=reference["accuracy"], line={"dash": "dash", "color": "#7F7F7F"},
                         annotation_text=f"baseline: {reference.get('label', '')} {reference['accuracy']:.4f}",
                         annotation_position="bottom right")
    xs = [record["layer_params"] for members in groups.values() for record in members if record["layer_params"] > 0]
    wide = bool(xs) and max(xs) / min(xs) >= 100  # label only the powers of ten when they are enough
    figure.update_xaxes(type="log", title_text=x_title, dtick=1 if wide else None,
                        automargin=True)
    figure.update_yaxes(title_text=accuracy_title, automargin=True)
    figure.update_layout(template=_TEMPLATE, title=title, legend={"title": {"text": "shape"}})
    return figure


def params_vs_rank(
    in_modes: Sequence[int], out_modes: Sequence[int], max_rank: int = 16, current_rank: Optional[int] = None,
    current_ranks: Optional[Sequence[int]] = None,
) -> go.Figure:
    """TT layer weights against the max TT rank for one shape, the current choice marked.

    The left axis counts weights, the right axis reads the same curve as the
    compression rate (TT / dense weights); the dense layer is the dotted line.
    ``current_ranks`` (the internal ranks in use, per core) places the mark at the
    weights the layer really has, at its largest rank; without it the mark sits on the
    curve at ``current_rank``.
    """
    ranks = list(range(1, max(2, int(max_rank)) + 1))
    dense = ttmath.dense_param_count(ttmath.prod(in_modes), ttmath.prod(out_modes))
    counts = [ttmath.param_count(in_modes, out_modes, rank) for rank in ranks]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(x=ranks, y=counts, mode="lines+markers", name="every rank equal", line={"color": _color(0)},
                   customdata=[[count / dense, dense / count] for count in counts],
                   hovertemplate="rank %{x}<br>%{y:,} weights<br>rate %{customdata[0]:.3g} (%{customdata[1]:,.0f}x smaller)<extra></extra>"),
        secondary_y=False,
    )
    # an invisible twin on the right axis, so that axis exists; its range mirrors the left one
    figure.add_trace(go.Scatter(x=ranks, y=[count / dense for count in counts], mode="lines", line={"width": 0},
                                showlegend=False, hoverinfo="skip"), secondary_y=True)
    lowest = min(counts)
    if current_ranks:
        used = tuple(int(rank) for rank in current_ranks)
        current, at = ttmath.param_count(in_modes, out_modes, used), max(used)
        name = f"yours ({ranks_text(used)})"
        lowest = min(lowest, current)
    elif current_rank is not None:
        current, at, name = ttmath.param_count(in_modes, out_modes, current_rank), current_rank, "your choice"
    if current_ranks or current_rank is not None:
        figure.add_trace(
            go.Scatter(x=[min(at, ranks[-1])], y=[current], mode="markers", name=name,
                       marker={"size": 16, "color": _color(1), "symbol": "star"},
                       hovertemplate=f"{name}: %{{y:,}} weights<extra></extra>"),
            secondary_y=False,
        )
    figure.add_trace(go.Scatter(x=[ranks[0], ranks[-1]], y=[dense, dense], mode="lines", name=f"dense ({dense:,})",
                                line={"color": "#999", "dash": "dot"}, hoverinfo="skip"), secondary_y=False)
    low, high = math.log10(lowest / 2), math.log10(dense * 2)
    figure.update_xaxes(title_text="max TT rank", dtick=1 if len(ranks) <= 12 else (2 if len(ranks) <= 24 else None))
    figure.update_yaxes(title_text="layer weights", type="log", range=[low, high], dtick=1, secondary_y=False, automargin=True)
    figure.update_yaxes(title_text="compression rate (TT / dense)", type="log", secondary_y=True, showgrid=False,
                        range=[low - math.log10(dense), high - math.log10(dense)], dtick=1, tickformat=".0e", automargin=True)
    figure.update_layout(template=_TEMPLATE, title="Layer weights by max TT rank",
                         legend={"orientation": "h", "y": -0.25}, height=420, margin={"t": 60, "l": 60, "r": 60})
    return figure


def _shape_text(item: Any) -> str:
    """The item's shape in the house text form (``4x8x8x4``, ``4x7x4x7->5x5x8x4``), else its label."""
    in_modes, out_modes = getattr(item, "in_modes", None), getattr(item, "out_modes", None)
    if in_modes is None or out_modes is None:
        return str(item.label)
    return layer_text(in_modes, out_modes)


def factorizations_chart(suggestions: Sequence[Any], current_label: Optional[str] = None, rank: Optional[int] = None,
                         current_params: Optional[int] = None, current_ranks: Optional[Sequence[int]] = None) -> go.Figure:
    """Horizontal bars of layer weights for other tensorizations of the same layer.

    Args:
        suggestions: :class:`ttexplore.tt.shapes.ShapeSuggestion` items (``label``, ``params``,
            ``in_modes``, ``out_modes``), drawn top to bottom in the given order.
        current_label: the user's choice (highlighted), e.g. ``"4x8x8x4"``.
        rank: the uniform max rank the other shapes are priced at.
        current_params, current_ranks: the weights and internal ranks the user's layer
            really has (per-core ranks); its bar shows those, and says so.
    """
    labels = [_shape_text(item) for item in suggestions]
    mine = [item.label == current_label for item in suggestions]
    values = [current_params if own and current_params is not None else item.params for item, own in zip(suggestions, mine)]
    colors = [_color(1) if own else _color(0) for own in mine]
    note = f" ({ranks_text(current_ranks)})" if current_ranks and len(set(current_ranks)) > 1 else ""
    figure = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker={"color": colors},
            text=[f"{value:,}" + (f"  ← yours{note}" if own else "") for value, own in zip(values, mine)],
            textposition="outside",
            cliponaxis=False,
            customdata=[item.label for item in suggestions],
            hovertemplate="%{customdata}<br>%{x:,} weights<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", title_text=None, automargin=True, tickfont={"size": 11})
    highest = max(values, default=1)
    longest = max((len(f"{value:,}") + (len(f"  ← yours{note}") if own else 0) for value, own in zip(values, mine)), default=8)
    # room on the right for the longest bar's text (about 0.07 decades per character on a ~600 px plot)
    figure.update_xaxes(title_text="layer weights, log scale" + (f" (others at max rank {rank})" if rank is not None else ""),
                        type="log", dtick=1, range=[0, math.log10(highest) + 0.25 + 0.075 * longest], automargin=True)
    figure.update_layout(template=_TEMPLATE, title="Other factorizations of this layer", showlegend=False,
                         height=max(300, 26 * len(labels) + 130), margin={"t": 60, "r": 30})
    return figure


def _chain_figure(cores: Sequence[Mapping[str, Any]], rank_names: Sequence[str], title: str) -> go.Figure:
    """A tensor-network drawing of a chain of cores: a box per core (``name``, its ``shape`` text), a leg below
    (``below``, the input's mode) and one above (``above``, the output's; ``None`` for none), joined by rank
    edges labelled ``rank_names[k]`` (the rank between core ``k`` and ``k + 1``).

    Shapes and annotations are collected as plain dicts and set once (plotly validates each
    ``add_shape`` call separately, which made a 10-core drawing take a third of a second).
    """
    crowded = len(cores) > 6  # smaller type so ten cores still read on a dashboard column
    small, label = (8, 11) if crowded else (11, 15)
    drawn: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    spacing = 1.6

    def note(x: float, y: float, text: str, **font: Any) -> None:
        notes.append({"x": x, "y": y, "text": text, "showarrow": False, **({"font": font} if font else {})})

    for index, core in enumerate(cores):
        x = index * spacing
        color = core.get("color", 0)
        drawn.append({"type": "rect", "x0": x - 0.45, "x1": x + 0.45, "y0": -0.35, "y1": 0.35,
                      "line": {"color": _color(color), "width": 2},
                      "fillcolor": "rgba(0,114,178,0.12)" if color == 0 else "rgba(230,159,0,0.15)"})
        note(x, 0.08, f"<b>{core['name']}</b>", size=label)
        note(x, -0.16, core["shape"], size=small)
        drawn.append({"type": "line", "x0": x, "x1": x, "y0": -0.35, "y1": -0.9, "line": {"color": _color(2), "width": 2}})
        note(x, -1.05, core["below"], color=_color(2), size=small + 2)
        if core.get("above") is not None:
            drawn.append({"type": "line", "x0": x, "x1": x, "y0": 0.35, "y1": 0.9, "line": {"color": _color(1), "width": 2}})
            note(x, 1.05, core["above"], color=_color(1), size=small + 2)
        if index < len(cores) - 1:
            drawn.append({"type": "line", "x0": x + 0.45, "x1": x + spacing - 0.45, "y0": 0, "y1": 0,
                          "line": {"color": "#888", "width": 2}})
            note(x + spacing / 2, 0.12, rank_names[index], size=small + 1)
    width = (len(cores) - 1) * spacing
    return go.Figure(layout={
        "template": _TEMPLATE,
        "height": 220,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "title": {"text": title},
        "xaxis": {"visible": False, "range": [-0.8, width + 0.8]},
        "yaxis": {"visible": False, "range": [-1.3, 1.3]},
        "shapes": drawn,
        "annotations": notes,
    })


def core_diagram(in_modes: Sequence[int], out_modes: Sequence[int], ranks: ttmath.RanksLike) -> go.Figure:
    """A tensor-network drawing of a TT layer's cores: boxes ``G_k`` with shape ``r x n x m x r``,
    joined by rank edges, input legs ``n_k`` below and output legs ``m_k`` above."""
    shapes = ttmath.core_shapes(in_modes, out_modes, ranks)
    cores = [{"name": f"G<sub>{k}</sub>", "shape": "×".join(map(str, shape)), "below": f"n<sub>{k}</sub>={shape[1]}",
              "above": f"m<sub>{k}</sub>={shape[2]}"} for k, shape in enumerate(shapes, start=1)]
    title = (f"{len(shapes)} core{'s' if len(shapes) != 1 else ''}"
             f"{' (a dense layer: no TT rank)' if len(shapes) == 1 else ''}, {sum(ttmath.prod(s) for s in shapes):,} weights")
    return _chain_figure(cores, [f"r<sub>{k}</sub>={shape[3]}" for k, shape in enumerate(shapes[:-1], start=1)], title)


def ttconv_diagram(in_modes: Sequence[int], out_modes: Sequence[int], kernel_size: int, ranks: ttmath.RanksLike) -> go.Figure:
    """A TT convolution's cores (Garipov et al. 2016): the spatial core ``G_0`` ``(1, k*k, 1, r_0)``, whose leg is
    the kernel position ``(x, y)``, then the channel cores ``G_k`` ``(r_{k-1}, c_k, s_k, r_k)`` with the input
    channels' mode ``c_k`` below and the output channels' ``s_k`` above; ranks as used (clipped)."""
    kernel = (int(kernel_size), int(kernel_size))
    shapes = conv_core_shapes(in_modes, out_modes, kernel, ranks)
    spatial, channel = shapes[0], shapes[1:]
    cores = [{"name": "G<sub>0</sub>", "shape": "×".join(map(str, spatial)), "color": 4,
              "below": f"(x, y): {kernel[0]}×{kernel[1]}", "above": None}]
    cores += [{"name": f"G<sub>{k}</sub>", "shape": "×".join(map(str, shape)), "below": f"c<sub>{k}</sub>={shape[1]}",
               "above": f"s<sub>{k}</sub>={shape[2]}"} for k, shape in enumerate(channel, start=1)]
    title = (f"TT conv: a spatial core and {len(channel)} channel core{'s' if len(channel) != 1 else ''}, "
             f"{sum(ttmath.prod(shape) for shape in shapes):,} weights ({ttmath.prod(in_modes)} → "
             f"{ttmath.prod(out_modes)} channels)")
    return _chain_figure(cores, [f"r<sub>{k}</sub>={shape[3]}" for k, shape in enumerate(shapes[:-1])], title)


#: Columns of a hyper-parameter table drawn on a log axis.
_LOG_COLUMNS = ("lr", "layer weights", "net weights", "weight decay", "× smaller", "train images")


def _tick(value: float) -> str:
    """``2176`` -> ``"2,176"``, ``0.003`` -> ``"0.003"``: a readable axis value."""
    return f"{value:,.0f}" if value >= 1 and float(value).is_integer() else f"{value:.3g}"


def _dimension(table: Any, column: str) -> dict[str, Any]:
    """One parallel-coordinates axis: numbers as they are (log10 for rates and sizes), text as categories."""
    values = list(table[column])
    numeric = all(isinstance(value, (int, float)) and not isinstance(value, bool) and value == value for value in values)
    if numeric:
        if column in _LOG_COLUMNS and all(value > 0 for value in values):
            ticks = sorted(set(values))
            shown = ticks if len(ticks) <= 8 else ticks[:: max(1, len(ticks) // 6)]
            return {"label": f"{column} (log)", "values": [math.log10(value) for value in values],
                    "tickvals": [math.log10(value) for value in shown], "ticktext": [_tick(value) for value in shown]}
        return {"label": column, "values": values}
    values = ["—" if value is None or value != value else (_tick(value) if isinstance(value, float) else value)
              for value in values]  # a missing value (every image, no padding) is its own category
    names = sorted({str(value) for value in values})
    codes = {name: index for index, name in enumerate(names)}
    return {"label": column, "values": [codes[str(value)] for value in values], "tickvals": list(range(len(names))),
            "ticktext": names, "range": [-0.5, max(len(names) - 0.5, 0.5)]}


def hparams_parallel(table: Any, columns: Sequence[str], color: str = "best test acc",
                     title: str = "Hyper-parameters against test accuracy") -> go.Figure:
    """Parallel coordinates: one line per run across the hyper-parameter ``columns`` of a
    :func:`ttexplore.presenters.tracking.hparams_table`, ending on ``color`` (the accuracy), which also colours it.

    Runs without a ``color`` value are left out; text columns become categorical axes.
    """
    scored = table[table[color].notna()] if len(table) else table
    dimensions = [_dimension(scored, column) for column in columns if column in scored.columns and column != color]
    if len(scored):
        dimensions.append({"label": color, "values": list(scored[color]),
                           "range": [min(scored[color].min(), 0.9 * scored[color].max()), 1.0]})
    figure = go.Figure(go.Parcoords(
        line={"color": list(scored[color]) if len(scored) else [], "colorscale": "Viridis", "showscale": True,
              "colorbar": {"title": {"text": color}}},
        dimensions=dimensions,
        labelangle=-20,
        labelside="bottom",
    ))
    figure.update_layout(template=_TEMPLATE, title=title, height=440, margin={"l": 70, "r": 40, "t": 70, "b": 90})
    return figure


def hparam_scatter(table: Any, x: str, y: str = "best test acc", group: str = "shape",
                   title: Optional[str] = None) -> go.Figure:
    """Each run as a point, hyper-parameter ``x`` against ``y``, one colour per ``group`` value;
    hovering names the run. Rates and sizes go on a log axis."""
    figure = go.Figure()
    rows = table[table[y].notna()] if len(table) else table
    for index, (name, members) in enumerate(rows.groupby(group, sort=True) if len(rows) else []):
        figure.add_trace(go.Scatter(
            x=list(members[x]), y=list(members[y]), mode="markers", name=plot_text(name),
            marker={"size": 10, "color": _color(index), "line": {"width": 1, "color": "#fff"}},
            text=[plot_text(value) for value in members["name"]] if "name" in members else None,  # users' names
            hovertemplate=f"%{{text}}<br>{x} %{{x}}<br>{y} %{{y:.4f}}<extra>{plot_text(name)}</extra>",
        ))
    numeric = len(rows) and all(isinstance(value, (int, float)) for value in rows[x])
    log = bool(numeric) and x in _LOG_COLUMNS and all(value > 0 for value in rows[x])
    figure.update_xaxes(title_text=x + (" (log scale)" if log else ""), type="log" if log else None, automargin=True)
    figure.update_yaxes(title_text=y, automargin=True)
    figure.update_layout(template=_TEMPLATE, title=title or f"{y} against {x}", legend={"title": {"text": group}}, height=420)
    return figure


def tt_schematic_svg(cores: int = 3) -> str:
    """A small static drawing of a TT-matrix layer (SVG markup): cores ``G_k`` in a row joined by rank
    edges ``r_k``, an input leg ``n_k`` below and an output leg ``m_k`` above each. Mid-grey text
    and the figures' colours, so it reads on a light and a dark page alike."""
    width, spacing, top = 90 + 110 * (cores - 1) + 90, 110, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 150" width="{width}" height="150" '
             'font-family="sans-serif" font-size="13" text-anchor="middle">']
    for index in range(cores):
        x = 90 + index * spacing
        k = index + 1
        parts += [
            f'<line x1="{x}" y1="{top + 14}" x2="{x}" y2="{top + 40}" stroke="{_color(1)}" stroke-width="2"/>',
            f'<text x="{x}" y="{top + 8}" fill="{_color(1)}">m{k}</text>',
            f'<rect x="{x - 28}" y="{top + 40}" width="56" height="40" rx="6" fill="rgba(0,114,178,0.15)" '
            f'stroke="{_color(0)}" stroke-width="2"/>',
            f'<text x="{x}" y="{top + 65}" fill="#888" font-weight="bold">G{k}</text>',
            f'<line x1="{x}" y1="{top + 80}" x2="{x}" y2="{top + 106}" stroke="{_color(2)}" stroke-width="2"/>',
            f'<text x="{x}" y="{top + 120}" fill="{_color(2)}">n{k}</text>',
        ]
        if index < cores - 1:
            parts += [f'<line x1="{x + 28}" y1="{top + 60}" x2="{x + spacing - 28}" y2="{top + 60}" stroke="#888" stroke-width="2"/>',
                      f'<text x="{x + spacing / 2}" y="{top + 54}" fill="#888">r{k}</text>']
    parts.append("</svg>")
    return "".join(parts)
