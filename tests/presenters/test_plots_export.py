"""Figures carry the data they were given; exports produce real PNG, SVG, HTML, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ttexplore.presenters import export
from ttexplore.presenters import plots
from ttexplore.tt import ttmath
from ttexplore.tt.shapes import suggest_shapes

EVENTS = [{"epoch": step / 4, "step": step, "train_loss": 2 / (step + 1), "test_loss": 2.2 / (step + 1),
           "train_accuracy": 1 - 1 / (step + 2), "test_accuracy": 1 - 1.2 / (step + 2), "kind": "eval", "elapsed_s": step}
          for step in range(6)]


def test_training_curves_have_train_and_test_per_run():
    figure = plots.training_curves([{"label": "a", "events": EVENTS}, {"label": "b", "events": EVENTS[:3]}])
    names = [trace.name for trace in figure.data]
    assert names.count("a (test)") == 2 and names.count("b (train)") == 2  # loss and accuracy panels
    test_acc = [t for t in figure.data if t.name == "a (test)" and t.xaxis == "x2"][0]
    assert list(test_acc.y) == [e["test_accuracy"] for e in EVENTS]


def test_accuracy_vs_params_one_line_per_shape_log_x():
    rows = [{"shape": "4x8x8x4", "layer_params": ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), r), "test_accuracy": 0.9 + r / 100, "rank": r}
            for r in (3, 1, 2)]
    rows += [{"shape": "dense", "layer_params": 1024**2, "test_accuracy": 0.98}, {"shape": "x", "layer_params": 5, "test_accuracy": None}]
    figure = plots.accuracy_vs_params(rows)
    assert figure.layout.xaxis.type == "log"
    by_name = {trace.name: trace for trace in figure.data}
    assert set(by_name) == {"4x8x8x4", "dense"}  # a row without accuracy is left out
    assert list(by_name["4x8x8x4"].x) == [160, 576, 1248]  # sorted by weights


def test_params_vs_rank_marks_the_choice_and_diagram_has_each_core():
    figure = plots.params_vs_rank((4, 8, 8, 4), (4, 8, 8, 4), max_rank=6, current_rank=3)
    curve = figure.data[0]
    assert list(curve.y) == [ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), r) for r in range(1, 7)]
    choice = [t for t in figure.data if t.name == "your choice"][0]
    assert list(choice.x) == [3] and list(choice.y) == [1248]
    diagram = plots.core_diagram((2, 3, 4), (4, 3, 2), 2)
    texts = [a.text for a in diagram.layout.annotations]
    assert "1×2×4×2" in texts and "2×3×3×2" in texts and "2×4×2×1" in texts


def test_factorizations_chart_highlights_current():
    suggestions = suggest_shapes(1024, 1024, d=4, rank=2, top=5)
    figure = plots.factorizations_chart(suggestions, suggestions[2].label, rank=2)
    bar = figure.data[0]
    assert list(bar.x) == [s.params for s in suggestions]
    assert len(set(bar.marker.color)) == 2 and bar.marker.color[2] != bar.marker.color[0]


@pytest.fixture(scope="module")
def figure():
    return plots.training_curves([{"label": "a", "events": EVENTS}])


def test_png_and_svg_through_one_kaleido_server(figure):
    png = export.figure_to_image(figure, "png", width=400, height=300, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = export.figure_to_image(figure, "svg")
    assert svg.lstrip().startswith(b"<svg") and b"</svg>" in svg
    with pytest.raises(export.ExportError, match="not an image format"):
        export.figure_to_image(figure, "gif")


def test_html_is_standalone(figure, tmp_path):
    html = export.figure_to_html(figure)
    assert b"<html" in html and len(html) > 1_000_000  # plotly.js is embedded: the page opens offline
    assert b'<script src="http' not in html
    path = export.write_figure(figure, tmp_path / "curves.html")
    written = path.read_bytes()
    assert written.lower().startswith(b"<!doctype html>") and abs(len(written) - len(html)) < 200  # div ids differ


def test_metrics_csv_and_json():
    runs = {"r1": EVENTS[:2], "r2": EVENTS[:1]}
    rows = list(csv.DictReader(io.StringIO(export.metrics_to_csv(runs, labels={"r1": "first"}).decode())))
    assert [row["run_id"] for row in rows] == ["r1", "r1", "r2"] and rows[0]["label"] == "first"
    assert float(rows[1]["test_accuracy"]) == EVENTS[1]["test_accuracy"]
    assert rows[0]["val_loss"] == "" and list(rows[0])[-2:] == ["val_loss", "val_accuracy"]  # no validation split here
    held = {"r3": [{**EVENTS[0], "val_loss": 0.5, "val_accuracy": 0.9}]}
    assert float(next(csv.DictReader(io.StringIO(export.metrics_to_csv(held).decode())))["val_accuracy"]) == 0.9
    payload = json.loads(export.metrics_to_json(runs, configs={"r1": {"dataset": "digits"}}))
    assert payload["runs"][0]["config"] == {"dataset": "digits"} and len(payload["runs"][0]["events"]) == 2


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(export.ExportError, match="no weights file"):
        export.model_file_bytes(tmp_path / "gone.pt")


def test_image_export_problem_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on the PATH
    assert "apt-get install chromium" in export.image_export_problem()
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert export.image_export_problem() is None


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #RRGGBB colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[index:index + 2], 16) / 255 for index in (1, 3, 5)]
        linear = [value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4 for value in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_run_colour_stands_out_on_both_themes():
    from ttexplore.presenters.plots import PALETTE, THEME_BACKGROUNDS

    assert contrast("#000000", THEME_BACKGROUNDS["dark"]) < 1.2, "the check tells black on the dark theme"
    assert len(set(PALETTE)) == len(PALETTE) == 10
    for theme, background in THEME_BACKGROUNDS.items():
        low = {colour: round(contrast(colour, background), 2) for colour in PALETTE if contrast(colour, background) < 3.0}
        assert low == {}, f"run colours under 3:1 on the {theme} theme"
