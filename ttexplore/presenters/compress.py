"""What the Compress page shows: W's unfolding spectra, and error and accuracy of the three paths
(TT-SVD, TT-SVD + fine-tuning, trained from scratch) against rank and against weights.

Plain data in (spectra as lists of floats, rows as :meth:`CompressRow.to_dict` gives them, run dicts as
:meth:`~ttexplore.runs.store.RunStore.list_runs` returns them), plotly figures, pandas tables and words
out; no torch, no streamlit.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttexplore.tt import ttmath
from ttexplore.tt.shapes import default_modes
from ttexplore.tt.ttshape import modes_text
from ttexplore.presenters.groups import BAND_LEGEND
from ttexplore.presenters.plots import PALETTE, band_trace
from ttexplore.presenters.reports import run_config, run_is_dense, run_layer_count

__all__ = ["PATHS", "METHOD_WORDS", "queued_text", "is_network_run", "compressible_runs", "candidate_labels", "needed_text",
           "shape_problem", "spectra_figure", "needed_ranks_table", "compress_figure",
           "compress_table", "compress_markdown"]

#: The three paths to a TT layer: ``(row key, legend)``.
PATHS = (
    ("test_accuracy", "TT-SVD"),
    ("finetuned_test_accuracy", "TT-SVD + fine-tuning"),
    ("scratch_test_accuracy", "trained from scratch"),
)
_TEMPLATE = "plotly_white"
#: How the first path is called: TT-SVD of a dense W, or TT-rounding of a TT run's trained cores.
METHOD_WORDS = {"tt-svd": "TT-SVD", "tt-round": "rounded"}


def _paths(method: str) -> tuple[tuple[str, str], ...]:
    """:data:`PATHS` with the first path named for ``method``."""
    first = METHOD_WORDS.get(method, "TT-SVD")
    return tuple((key, name.replace("TT-SVD", first)) for key, name in PATHS)


def is_network_run(run: Mapping[str, Any]) -> bool:
    """Whether a run's network is compressed layer by layer (several hidden layers, or a layer that reads images:
    a CNN) rather than as one fully-connected layer."""
    config = run_config(run)
    return config is not None and (len(config.layers) > 1 or any(not layer.flattens for layer in config.layers))


def compressible_runs(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs a layer can be compressed from: completed, with a weights file, not themselves started from
    compressed weights, and of one hidden layer, or a dense network (a CNN, compressed layer by layer); dense
    runs first, else in the order given (newest first)."""
    candidates = [run for run in runs if run.get("status") == "completed" and run.get("weights_path")
                  and "init_from" not in run["config"]
                  and (run_layer_count(run) == 1 or (is_network_run(run) and run_is_dense(run)))]
    candidates.sort(key=lambda run: not run_is_dense(run))  # dense runs first, newest first
    return candidates


def candidate_labels(candidates: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """How the Compress picker names each run (by id): its name when it has one, else what tells it apart
    (:func:`~ttexplore.presenters.tracking.distinct_labels`) and its short id (a label that moved on maps back to its run
    by it: :func:`~ttexplore.presenters.tracking.picked_ids`), with its final test accuracy."""
    from ttexplore.presenters.tracking import distinct_labels

    labels = distinct_labels(candidates, with_id=True)
    return {run["id"]: labels[run["id"]] + (f" · acc {run['final_test_accuracy']:.3f}"
                                            if run.get("final_test_accuracy") is not None else "") for run in candidates}


def shape_problem(in_modes: Sequence[int], out_modes: Sequence[int], in_features: int, out_features: int) -> Optional[str]:
    """What keeps TT shapes from fitting a W of ``in_features`` inputs and ``out_features`` outputs, with shapes
    that would (``"the modes multiply to ... try 4x8x8x4 → 4x8x8x4"``); ``None`` when they fit."""
    if ttmath.prod(in_modes) != in_features or ttmath.prod(out_modes) != out_features:
        return (f"the modes multiply to {ttmath.prod(in_modes):,} → {ttmath.prod(out_modes):,}, but W is "
                f"{in_features:,} → {out_features:,}: try {modes_text(default_modes(in_features))} → "
                f"{modes_text(default_modes(out_features, len(in_modes)))}")
    if len(in_modes) != len(out_modes):
        return f"give as many output modes as input modes ({len(in_modes)})"
    return None


def needed_text(spectra: Sequence[Sequence[float]], in_modes: Sequence[int], out_modes: Sequence[int], rel_error: float,
                dense_params: int, method: str = "TT-SVD") -> str:
    """``"TT-SVD reaches **0.5** with ranks **2, 3**: **1,234** weights (compression 2.1e-02)."``: the ranks each
    boundary needs for ``rel_error`` (:func:`~ttexplore.tt.ttmath.ranks_for_error`) and the weights of the TT-matrix
    of ``in_modes`` x ``out_modes`` at them (a TT convolution's modes start with its kernel's ``k*k`` and 1)."""
    needed = ttmath.ranks_for_error(spectra, rel_error)
    params = ttmath.param_count(in_modes, out_modes, needed)
    return (f"{method} reaches **{rel_error:g}** with ranks **{', '.join(map(str, needed))}**: **{params:,}** weights "
            f"(compression {params / dense_params:.2e}).")


def spectra_figure(spectra: Sequence[Sequence[float]], rel_error: Optional[float] = None,
                   needed: Optional[Sequence[int]] = None, title: str = "Singular values of W's TT unfoldings",
                   boundaries: Optional[Sequence[str]] = None) -> go.Figure:
    """Left: each boundary's singular values (scaled by the largest, log y); right: the relative error
    of cutting that boundary at rank r. A dashed line marks ``rel_error / sqrt(d - 1)``, each
    boundary's share of the error target, and a marker the rank it needs (``needed``). ``boundaries`` names
    them in the legend (a TT convolution's first is ``"r_0: kernel | channels"``); default ``boundary k``."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=("σ_i / σ_1 of unfolding k", "error of cutting boundary k at rank r"))
    share = rel_error / math.sqrt(len(spectra)) if rel_error and spectra else None
    for k, spectrum in enumerate(spectra, start=1):
        color = PALETTE[(k - 1) % len(PALETTE)]
        top = spectrum[0] if spectrum and spectrum[0] > 0 else 1.0
        ranks = list(range(1, len(spectrum) + 1))
        name = boundaries[k - 1] if boundaries is not None and k - 1 < len(boundaries) else f"boundary {k}"
        figure.add_trace(go.Scatter(x=ranks, y=[max(value / top, 1e-16) for value in spectrum], mode="lines",
                                    name=f"{name} ({len(spectrum)} values)", legendgroup=str(k),
                                    line={"color": color, "width": 2},
                                    hovertemplate="r=%{x}: σ/σ₁ %{y:.3g}<extra>boundary " + str(k) + "</extra>"),
                         row=1, col=1)
        tails = ttmath.truncation_errors(spectrum)
        figure.add_trace(go.Scatter(x=list(range(len(tails))), y=tails, mode="lines", legendgroup=str(k),
                                    showlegend=False, line={"color": color, "width": 2},
                                    hovertemplate="r=%{x}: error %{y:.3g}<extra>boundary " + str(k) + "</extra>"),
                         row=1, col=2)
        if needed is not None and k - 1 < len(needed):
            rank = needed[k - 1]
            figure.add_trace(go.Scatter(x=[rank], y=[tails[min(rank, len(tails) - 1)]], mode="markers",
                                        legendgroup=str(k), showlegend=False,
                                        marker={"color": color, "size": 10, "symbol": "diamond"},
                                        hovertemplate=f"boundary {k} needs r={rank}<extra></extra>"), row=1, col=2)
    if share is not None:
        figure.add_hline(y=share, line={"dash": "dash", "color": "#7F7F7F"}, row=1, col=2,
                         annotation_text=f"{rel_error:g} / √{len(spectra)}", annotation_position="top right")
    figure.update_xaxes(title_text="rank r", type="log", row=1, col=1)
    figure.update_xaxes(title_text="rank r", type="log", row=1, col=2)
    figure.update_yaxes(title_text="σ_r / σ_1", type="log", exponentformat="power", row=1, col=1)
    figure.update_yaxes(title_text="‖σ[r:]‖ / ‖W‖", range=[0, 1.02], row=1, col=2)
    figure.update_layout(template=_TEMPLATE, title=title, height=440, legend={"orientation": "h", "y": -0.2},
                         margin={"t": 80, "b": 40})
    return figure


def needed_ranks_table(spectra: Sequence[Sequence[float]], errors: Sequence[float] = (0.9, 0.7, 0.5, 0.3, 0.1, 0.01)):
    """Per relative error, the rank each boundary needs (TT-SVD's cut: ``error / sqrt(d - 1)`` each)."""
    import pandas as pd

    rows = []
    for error in errors:
        ranks = ttmath.ranks_for_error(spectra, error)
        rows.append({"rel_error": error, **{f"r{k}": rank for k, rank in enumerate(ranks, start=1)}})
    return pd.DataFrame(rows)


def compress_figure(rows: Sequence[Mapping[str, Any]], x: str = "rank", dense_params: Optional[int] = None,
                    dense_accuracy: Optional[float] = None, title: Optional[str] = None, method: str = "tt-svd",
                    network: bool = False) -> go.Figure:
    """Left: TT-SVD's relative error; right: test accuracy of the three paths (:data:`PATHS`),
    against the max rank (``x="rank"``) or the layer's weights (``x="params"``, log x; the dense
    layer drawn at ``dense_params``). The dense network's accuracy is a dashed line. With
    ``method="tt-round"`` (a TT run's cores rounded) the error is the rounding's and the source is
    the trained TT net. With ``network`` (a CNN compressed layer by layer) the x axis counts every parameter of
    the network (``net_params``; the dense net at ``dense_params``) and the error is the largest layer's. Rows
    combined over seeds (:func:`ttexplore.experiments.compress.combine_seeds`) draw each line's mean with its
    band (``<key>_low`` to ``<key>_high``: ± 1 std from three seeds on, min-max below), and the legend says so."""
    rounding = method == "tt-round"
    if network:
        rows = [{**row, "params": row.get("net_params", row.get("params"))} for row in rows]
    by = "params" if x == "params" else "rank"
    ordered = sorted((row for row in rows if row.get(by) is not None or by == "rank"),
                     key=lambda row: row.get("params") if by == "params" else max(row.get("ranks") or [0]))
    xs = [row["params"] if by == "params" else max(row.get("ranks") or [1]) for row in ordered]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=("rounding error ‖W − W_r‖_F / ‖W‖_F" if rounding else
                                           "TT-SVD error ‖W − W_TT‖_F / ‖W‖_F" + (", largest layer" if network else ""),
                                           "Test accuracy"))
    error_name = "rounding error" if rounding else "TT-SVD error" + (" (largest layer)" if network else "")
    banded = False
    for column, key, name, color in [(1, "rel_error", error_name, PALETTE[7])] + [
            (2, key, name, PALETTE[index]) for index, (key, name) in enumerate(_paths(method))]:
        if any((row.get(f"{key}_n") or 0) > 1 for row in ordered):
            band = band_trace(xs, [row.get(f"{key}_low") for row in ordered], [row.get(f"{key}_high") for row in ordered],
                              color, name, f"{name} (band)")
            if band is not None:
                figure.add_trace(band, row=1, col=column)
                banded = True
    figure.add_trace(go.Scatter(x=xs, y=[row["rel_error"] for row in ordered], mode="lines+markers", name=error_name,
                                line={"color": PALETTE[7], "width": 2}, showlegend=False,
                                hovertemplate="%{x}: %{y:.3f}<extra>rel_error</extra>"), row=1, col=1)
    if banded:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=BAND_LEGEND, hoverinfo="skip",
                                    line={"color": "rgba(136,136,136,0.4)", "width": 8}), row=1, col=2)
    for index, (key, name) in enumerate(_paths(method)):
        values = [row.get(key) for row in ordered]
        if not any(value is not None for value in values):
            continue
        figure.add_trace(go.Scatter(x=xs, y=values, mode="lines+markers", name=name, connectgaps=False, legendgroup=name,
                                    line={"color": PALETTE[index], "width": 2, "dash": "dot" if index == 2 else "solid"},
                                    marker={"size": 8}, hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>"),
                         row=1, col=2)
    if dense_accuracy is not None:
        figure.add_hline(y=dense_accuracy, line={"dash": "dash", "color": PALETTE[7]}, row=1, col=2,
                         annotation_text=f"{'as trained' if rounding else 'dense'} {dense_accuracy:.3f}",
                         annotation_position="bottom right")
        if by == "params" and dense_params and not rounding:
            figure.add_trace(go.Scatter(x=[dense_params], y=[dense_accuracy], mode="markers",
                                        name="dense network" if network else "dense layer",
                                        marker={"color": PALETTE[7], "size": 10, "symbol": "square"}), row=1, col=2)
    label = ("network parameters (log)" if network else "layer weights (log)") if by == "params" else "max TT rank"
    for column in (1, 2):
        figure.update_xaxes(title_text=label, type="log", row=1, col=column,
                            **({"tickvals": xs, "ticktext": [str(value) for value in xs]} if by == "rank" and xs else {}))
    figure.update_yaxes(range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(title_text="test accuracy", row=1, col=2)
    figure.update_layout(template=_TEMPLATE, height=440, legend={"orientation": "h", "y": -0.2},
                         title=title or f"{'Rounding the trained cores' if rounding else 'Compressing the network layer by layer' if network else 'Compressing W by TT-SVD'}, "
                                        f"against {'weights' if by == 'params' else 'rank'}",
                         margin={"t": 80, "b": 40})
    return figure


def compress_table(rows: Sequence[Mapping[str, Any]], method: str = "tt-svd", network: bool = False):
    """The compress table for people: rank, ranks, weights, compression, error, the three accuracies (the first
    named for ``method``: ``TT-SVD``, or ``rounded`` for a TT run's cores). With ``network`` (a CNN compressed
    layer by layer) ``weights`` and ``compression`` count every parameter of the network, ``rel_error`` is the
    largest layer's, and ``layer errors`` lists each compressed layer's. For rows combined over seeds each
    accuracy's sample std beside it (``"TT-SVD ±"``, ...) and ``seeds``."""
    import pandas as pd

    first = METHOD_WORDS.get(method, "TT-SVD")
    seeds = any(row.get("seeds") for row in rows)
    table = [{
        "rank": row["rank"] if row.get("rank") is not None else f"error {row.get('rel_error_target'):g}",
        "ranks": ",".join(map(str, row["ranks"])),
        "weights": row["net_params"] if network else row["params"],
        "compression": row["net_params"] / row["dense_net_params"] if network else row["compression"],
        "rel_error": row["rel_error"],
        **({"layer errors": ", ".join(f"{error:.3f}" for error in row.get("layer_errors") or [])} if network else {}),
        first: row.get("test_accuracy"),
        "+ fine-tuning": row.get("finetuned_test_accuracy"),
        "fine-tune epochs": row.get("finetune_epochs"),
        "from scratch": row.get("scratch_test_accuracy"),
        "scratch epochs": row.get("scratch_epochs"),
        **({f"{first} ±": row.get("test_accuracy_std"), "+ fine-tuning ±": row.get("finetuned_test_accuracy_std"),
            "from scratch ±": row.get("scratch_test_accuracy_std"), "seeds": row.get("seeds")} if seeds else {}),
    } for row in rows]
    return pd.DataFrame(table)


def compress_markdown(rows: Sequence[Mapping[str, Any]], dense_accuracy: Optional[float] = None,
                      method: str = "tt-svd", dense_std: Optional[float] = None) -> str:
    """The compress table in Markdown (for ``compress --out`` and RESULTS.md); ``method="tt-round"`` names the
    first path ``rounded`` and the source row the trained TT net; rows combined over seeds write each value as
    ``mean ± std`` (the sample std over the seeds), the source network's too (``dense_std``)."""
    def accuracy(value: Optional[float], std: Optional[float] = None) -> str:
        return "-" if value is None else f"{value:.4f}" + (f" ± {std:.4f}" if std is not None else "")

    def error_text(row: Mapping[str, Any]) -> str:
        std = row.get("rel_error_std")
        return f"{row['rel_error']:.3f}" + (f" ± {std:.3f}" if std is not None else "")

    epochs = next((row.get("finetune_epochs") for row in rows if row.get("finetune_epochs")), 0)
    scratch = sorted({row["scratch_epochs"] for row in rows if row.get("scratch_epochs")})
    first = METHOD_WORDS.get(method, "TT-SVD")
    lines = [f"| max TT rank | ranks | layer weights | compression rate | rel_error | {first} | "
             f"{first} + {epochs} epochs | from scratch ({'/'.join(map(str, scratch)) or '-'} epochs) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        rank = row["rank"] if row.get("rank") is not None else f"error {row.get('rel_error_target'):g}"
        lines.append(f"| {rank} | {','.join(map(str, row['ranks']))} | {row['params']:,} | {row['compression']:.1e} | "
                     f"{error_text(row)} | "
                     f"{accuracy(row.get('test_accuracy'), row.get('test_accuracy_std'))} | "
                     f"{accuracy(row.get('finetuned_test_accuracy'), row.get('finetuned_test_accuracy_std'))} | "
                     f"{accuracy(row.get('scratch_test_accuracy'), row.get('scratch_test_accuracy_std'))} |")
    if dense_accuracy is not None and method == "tt-round":
        lines.append(f"| as trained | | | | 0 | {accuracy(dense_accuracy, dense_std)} | | |")
    elif dense_accuracy is not None:
        lines.append(f"| dense | - | {rows[0]['dense_params']:,} | 1 | 0 | {accuracy(dense_accuracy, dense_std)} | | |" if rows else "")
    return "\n".join(lines) + "\n"


def queued_text(new: int, repeats: int = 0) -> str:
    """What the Compress button's toast says: the runs it queued (new ones only), and those it found queued
    moments ago (a double click) and did not queue twice."""
    if not new and not repeats:
        return "Every run is already done or queued"
    text = f"Queued {new} run{'s' if new != 1 else ''}" if new else "Nothing new queued"
    return text + (f"; {repeats} {'were' if repeats != 1 else 'was'} already queued moments ago" if repeats else "")
