"""What the pages show of TT-rounding: the curves' marks, the schedule box's message and weights, the run
page's Round and continue offer and target, the compress views of a TT run."""

from __future__ import annotations

import pytest

from ttexplore.presenters import compress as compress_views
from ttexplore.presenters import plots, tracking
from ttexplore.presenters.rounding import continue_offer, parse_target, rounding_marks, schedule_caption, schedule_check
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.schedule import ROUND_KIND
from ttexplore.tt.ttmath import param_count

MODES = (4, 8, 8, 4)


def event(kind: str, epoch: float, accuracy: float, **extra) -> dict:
    return {"kind": kind, "epoch": epoch, "step": int(epoch * 63), "elapsed_s": 2.0 * epoch, "train_loss": 0.5,
            "train_accuracy": accuracy, "test_loss": 0.5, "test_accuracy": accuracy, **extra}


def rounding(epoch: float, after: int, ranks: list) -> dict:
    return event(ROUND_KIND, epoch, 0.7, detail={"round": "4", "params_before": 8448, "params_after": after,
                                                 "layers": [{"index": 0, "layer": "hidden", "ranks_before": [8, 8, 8],
                                                             "ranks_after": ranks, "params_before": 8448,
                                                             "params_after": after, "rel_error": 0.4}]})


EVENTS = [event("eval", 0, 0.1), event("epoch", 1, 0.9), rounding(1, 2176, [4, 4, 4]), event("epoch", 2, 0.93),
          rounding(2, 576, [2, 2, 2]), event("epoch", 3, 0.92)]


def test_each_rounding_is_a_mark_with_the_new_weights():
    assert rounding_marks(EVENTS) == [{"x": 1, "params": 2176, "text": "→ 2,176 weights"},
                                      {"x": 2, "params": 576, "text": "→ 576 weights"}]
    assert [mark["x"] for mark in rounding_marks(EVENTS, "step")] == [63, 126]
    assert rounding_marks([event("epoch", 1, 0.9)]) == []


@pytest.mark.parametrize("x, key", [("epoch", "epoch"), ("step", "step"), ("time", "elapsed_s")])
def test_the_curves_draw_a_line_per_rounding_in_both_panels(x, key):
    figure = plots.training_curves([{"label": "scheduled", "events": EVENTS}, {"label": "plain", "events": EVENTS[:2]}], x=x)
    lines = [shape for shape in figure.layout.shapes if shape.type == "line"]
    assert sorted(shape.x0 for shape in lines) == sorted([EVENTS[2][key]] * 2 + [EVENTS[4][key]] * 2)
    assert {shape.line.color for shape in lines} == {plots.PALETTE[0]}  # the scheduled run's colour
    assert sorted(note.text for note in figure.layout.annotations if "weights" in (note.text or "")) == \
        ["→ 2,176 weights", "→ 576 weights"]
    test_trace = next(trace for trace in figure.data if trace.name == "scheduled (test)" and trace.xaxis == "x2")
    assert list(test_trace.y) == [e["test_accuracy"] for e in EVENTS]  # the rounded net's point is on the curve


def test_the_schedule_box_says_its_error_in_the_fields_words_or_the_weights_it_leads_to():
    def build(text):
        return lambda: RunConfig.for_dataset("mnist5k", ranks=8, epochs=15, round_to=text)

    problem, caption = schedule_check(build("4@5, 8@10"))
    assert problem.field == "round_to" and "rank 8 in 8@10 is not below" in str(problem) and caption == ""
    problem, caption = schedule_check(build("4@5, 2@10"))
    eight, four, two = (param_count(MODES, MODES, rank) for rank in (8, 4, 2))
    assert problem is None
    assert caption == f"Weights of the hidden layers: {eight:,} weights → {four:,} after epoch 5 → {two:,} after epoch 10"
    assert "depend on the trained cores" in schedule_caption(build("4@5, rel:0.2@10")())
    assert schedule_check(build("")) == (None, "")

    def other_field_wrong():
        raise ConfigError("lr", "lr 20 must be at most 10")

    assert schedule_check(other_field_wrong) == (None, "")  # said where it is typed


def run(status: str, layers: list, **config) -> dict:
    return {"id": "r1", "status": status, "config": {"dataset": "mnist5k", "layers": layers, "epochs": 15, **config}}


def test_round_and_continue_is_offered_for_an_ended_tt_run_with_weights():
    tt = [{"kind": "tt", "in_modes": [4, 8, 8, 4], "out_modes": [4, 8, 8, 4], "ranks": 8}]
    offered, text = continue_offer(run("completed", tt, round_to="4@5,2@10"), EVENTS, True)
    assert offered and "TT ranks in use now: 2,2,2." in text
    assert continue_offer(run("interrupted", tt), [], True) == (True, continue_offer(run("completed", tt), [], True)[1])
    assert "8,8,8" in continue_offer(run("cancelled", tt), [], True)[1]
    assert continue_offer(run("running", tt), [], True)[0] is False
    assert "resume it first" in continue_offer(run("interrupted", tt), [], False)[1]
    offered, text = continue_offer(run("completed", [{"kind": "dense", "width": 64}]), [], True)
    assert not offered and "TT layers" in text


@pytest.mark.parametrize("text, expected", [("2", (2, None)), (" 12 ", (12, None)), ("rel:0.1", (None, 0.1)),
                                            ("REL: 0.25", (None, 0.25))])
def test_a_target_reads_as_a_rank_or_a_relative_error(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text, field, words", [("0", "rank", "at least 1"), ("2.5", "rank", "whole number"),
                                                ("rel:1.5", "rel_error", "between 0 and 1"), ("two", "rank", "not a rounding target"),
                                                ("", "rank", "not a rounding target")])
def test_a_bad_target_names_its_field(text, field, words):
    with pytest.raises(ConfigError, match=words) as caught:
        parse_target(text)
    assert caught.value.field == field


def test_the_runs_table_has_the_schedule():
    runs = [run("completed", [], round_to="4@5,2@10") | {"id": "a"}, run("completed", []) | {"id": "b"}]
    table = tracking.hparams_table(runs)
    assert table["rounded"].iloc[0] == "4@5,2@10" and table["rounded"].isna().iloc[1]
    labels = tracking.distinct_labels(runs)
    assert labels["a"].endswith("rounded 4@5,2@10") and labels["a"] != labels["b"]


def test_the_compress_views_name_a_rounding():
    rows = [{"rank": 2, "ranks": [2, 2, 2], "params": 576, "dense_params": 1 << 20, "compression": 576 / (1 << 20),
             "rel_error": 0.6, "test_accuracy": 0.4, "finetuned_test_accuracy": 0.9, "scratch_test_accuracy": 0.92,
             "finetune_epochs": 2, "scratch_epochs": 5}]
    table = compress_views.compress_table(rows, "tt-round")
    assert "rounded" in table.columns and "TT-SVD" not in table.columns
    assert "TT-SVD" in compress_views.compress_table(rows).columns
    markdown = compress_views.compress_markdown(rows, 0.95, "tt-round")
    assert "| rounded | rounded + 2 epochs |" in markdown and "| as trained |" in markdown
    figure = compress_views.compress_figure(rows, "params", 1 << 20, 0.95, method="tt-round")
    assert {trace.name for trace in figure.data} >= {"rounded", "rounded + fine-tuning", "rounding error"}
    assert "dense layer" not in {trace.name for trace in figure.data}
