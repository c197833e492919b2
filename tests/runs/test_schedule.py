"""Rank schedules as values: the text form round-trips, every bad schedule is one ConfigError naming
``round_to`` before anything runs, the key of a config without one is unchanged, and the store keeps each
rounding (the run's weights follow it, a resume that drops it puts them back)."""

from __future__ import annotations

import json

import pytest

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.schedule import (ROUND_KIND, RoundSchedule, RoundStep, network_at_end, rounding_changes,
                                     size_after_truncation)
from ttexplore.runs.store import RunStore
from ttexplore.tt.ttmath import param_count


def paper(**values) -> RunConfig:
    return RunConfig.for_dataset("mnist5k", ranks=8, epochs=15, **values)


@pytest.mark.parametrize("text, steps", [
    ("4@5,2@10", [RoundStep(5, rank=4), RoundStep(10, rank=2)]),
    (" 4 @ 5 ,  2@10 ", [RoundStep(5, rank=4), RoundStep(10, rank=2)]),
    ("2@10, 4@5", [RoundStep(5, rank=4), RoundStep(10, rank=2)]),  # put in epoch order
    ("rel:0.1@3", [RoundStep(3, rel_error=0.1)]),
    ("REL: 0.25@3;2@9", [RoundStep(3, rel_error=0.25), RoundStep(9, rank=2)]),
])
def test_the_text_form_reads_and_round_trips(text, steps):
    schedule = RoundSchedule.of(text)
    assert list(schedule.steps) == steps
    assert RoundSchedule.of(schedule.text()) == schedule
    config = paper(round_to=text)
    assert config.round_to == schedule
    assert RunConfig.from_dict(json.loads(config.to_json())) == config
    assert json.loads(config.to_json())["round_to"] == schedule.text()


def test_the_cli_list_form_and_nothing():
    assert paper(round_to=["4@5", "2@10"]).round_to.text() == "4@5,2@10"
    for nothing in (None, "", [], "  "):
        assert paper(round_to=nothing).round_to is None


def test_the_key_is_unchanged_without_a_schedule_and_changes_with_one():
    plain = paper()
    assert "round_to" not in plain.to_dict()
    assert paper(round_to=None).key() == plain.key() == RunConfig.from_dict(plain.to_dict()).key()
    scheduled = paper(round_to="4@5,2@10")
    assert scheduled.key() != plain.key()
    assert scheduled.key() == paper(round_to="2@10,4@5").key()  # one schedule, one key
    assert paper(round_to="4@5").key() not in (plain.key(), scheduled.key())
    assert scheduled.replace(round_to=None).key() == plain.key()
    assert scheduled.dense_twin().round_to is None


BAD = [
    ("0@3", "rank 0 in 0@3 must be at least 1"),
    ("4@0", "epoch 0 in 4@0 must be at least 1"),
    ("4@99", "epoch 99 in 4@99 is not before the run's last epoch"),
    ("4@15", "epoch 15 in 4@15 is not before the run's last epoch"),
    ("16@3", "rank 16 in 16@3 is not below the ranks in use then (at most 8)"),
    ("8@3", "rank 8 in 8@3 is not below"),
    ("4@3,4@6", "rank 4 in 4@6 is not below the ranks in use then (at most 4)"),
    ("rel:2@3", "relative error 2 in rel:2@3 must be between 0 and 1"),
    ("rel:0@3", "relative error 0 in rel:0@3 must be between 0 and 1"),
    ("rel:nan@3", "must be between 0 and 1"),
    ("4@5,2@5", "two roundings after epoch 5"),
    ("4 at 5", "is not a rounding step"),
    ("4.5@3", "the rank in 4.5@3 must be a whole number"),
    ("4@-1", "the epoch in 4@-1 must be a whole number"),
    ("rel:x@3", "the relative error in rel:x@3 must be a number"),
    (",".join(f"1@{epoch}" for epoch in range(1, 70)), "too many"),
]


@pytest.mark.parametrize("text, words", BAD, ids=[text[:20] for text, _ in BAD])
def test_a_bad_schedule_is_one_error_naming_round_to(text, words):
    with pytest.raises(ConfigError) as caught:
        paper(round_to=text)
    assert caught.value.field == "round_to"
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_schedule_needs_a_tt_layer():
    with pytest.raises(ConfigError, match="the network has no TT layer") as caught:
        RunConfig.for_dataset("mnist5k", layer="dense", epochs=5, round_to="4@2")
    assert caught.value.field == "round_to"
    with pytest.raises(ConfigError, match="no TT layer"):
        RunConfig.for_dataset("mnist5k", hidden_layers=["dense:64", "matrix_rank:32:4"], epochs=5, round_to="2@1")


def test_a_schedule_on_several_layers_goes_below_the_largest_rank():
    config = RunConfig.for_dataset("mnist5k", hidden_layers=["tt:4x8x8x4:2", "tt:4x8x8x4:6"], epochs=5, round_to="4@2")
    assert config.round_to.steps == (RoundStep(2, rank=4),)
    with pytest.raises(ConfigError, match="at most 6"):
        config.replace(round_to="6@2")


def test_changing_the_epochs_or_ranks_is_checked_again():
    config = paper(round_to="4@5,2@10")
    with pytest.raises(ConfigError, match="not before the run's last epoch") as caught:
        config.replace(epochs=10)
    assert caught.value.field == "round_to"
    with pytest.raises(ConfigError, match="not below"):
        config.with_ranks(4)


# ---------------------------------------------------------------- reading roundings back
def round_event(epoch: float, before: int, after: int, ranks_before, ranks_after, accuracy: float, dense: int = 1 << 20):
    return {"kind": ROUND_KIND, "epoch": epoch, "step": int(epoch * 10), "train_loss": 1.0, "train_accuracy": 0.5,
            "test_loss": 1.0, "test_accuracy": accuracy, "elapsed_s": epoch,
            "detail": {"round": "4", "params_before": before, "params_after": after, "compression_before": before / dense,
                       "compression_after": after / dense,
                       "layers": [{"index": 0, "layer": "hidden", "ranks_before": ranks_before, "ranks_after": ranks_after,
                                   "params_before": before, "params_after": after, "rel_error": 0.3}]}}


def test_the_network_at_the_end_follows_the_last_rounding():
    config = paper(round_to="4@5,2@10")
    modes = (4, 8, 8, 4)
    eight, four, two = (param_count(modes, modes, rank) for rank in (8, 4, 2))
    events = [round_event(5, eight, four, [8, 8, 8], [4, 4, 4], 0.8), round_event(10, four, two, [4, 4, 4], [2, 2, 2], 0.7)]
    assert network_at_end(config.layers, config.input_shape, []) == {"params": eight, "ranks": [[8, 8, 8]]}
    assert network_at_end(config.layers, config.input_shape, events[:1]) == {"params": four, "ranks": [[4, 4, 4]]}
    assert network_at_end(config.layers, config.input_shape, events) == {"params": two, "ranks": [[2, 2, 2]]}
    changes = rounding_changes(events)
    assert [(change["epoch"], change["ranks_after"], change["params_after"], change["test_accuracy"]) for change in changes] \
        == [(5, [4, 4, 4], four, 0.8), (10, [2, 2, 2], two, 0.7)]


def test_sizes_after_a_resume_drops_roundings():
    first = round_event(5, 800, 400, [8], [4], 0.8)["detail"]
    second = round_event(10, 400, 200, [4], [2], 0.7)["detail"]
    assert size_after_truncation([(False, first), (False, second)]) is None
    assert size_after_truncation([(False, first), (True, second)]) == (400, 400 / (1 << 20))
    assert size_after_truncation([(True, first), (True, second)]) == (800, 800 / (1 << 20))


def test_the_store_keeps_roundings_and_the_run_follows_them(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    config = paper(round_to="4@5,2@10")
    run_id = store.create_run(config, status="running")
    assert store.get_run(run_id)["layer_params"] == config.layer_params()

    def epoch(number: float, accuracy: float) -> dict:
        return {"kind": "epoch", "epoch": number, "step": int(number * 10), "train_loss": 1.0, "train_accuracy": 0.5,
                "test_loss": 1.0, "test_accuracy": accuracy, "elapsed_s": number}

    store.add_event(run_id, epoch(5, 0.95))
    store.add_event(run_id, round_event(5, config.layer_params(), 2176, [8, 8, 8], [4, 4, 4], 0.60))
    run = store.get_run(run_id)
    assert run["layer_params"] == 2176 and run["compression"] == pytest.approx(2176 / config.dense_layer_params())
    assert run["best_test_accuracy"] == 0.60 and run["final_test_accuracy"] == 0.60  # the best of the net in use
    store.add_event(run_id, epoch(6, 0.90))
    store.add_event(run_id, round_event(6, 2176, 576, [4, 4, 4], [2, 2, 2], 0.50))
    store.add_event(run_id, epoch(7, 0.85))
    events = store.metrics(run_id)
    assert events[1]["detail"]["layers"][0]["ranks_after"] == [4, 4, 4] and events[0]["detail"] is None
    assert store.get_run(run_id)["layer_params"] == 576 and store.get_run(run_id)["best_test_accuracy"] == 0.85
    store.truncate_metrics(run_id, after_epoch=5)  # a resume from the checkpoint of epoch 5 (after its rounding)
    run = store.get_run(run_id)
    assert (run["layer_params"], run["best_test_accuracy"], run["final_test_accuracy"]) == (2176, 0.60, 0.60)
    store.truncate_metrics(run_id, after_epoch=4)
    run = store.get_run(run_id)
    assert run["layer_params"] == config.layer_params() and run["compression"] == pytest.approx(config.compression())
    assert run["best_test_accuracy"] is None and store.metrics(run_id) == []


def test_an_older_store_gains_the_detail_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE metrics (run_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
                           "epoch REAL NOT NULL, step INTEGER NOT NULL, train_loss REAL, train_accuracy REAL, "
                           "test_loss REAL, test_accuracy REAL, elapsed_s REAL, PRIMARY KEY (run_id, seq))")
    store = RunStore(path)
    run_id = store.create_run(paper(), status="running")
    store.add_event(run_id, round_event(5, 8448, 2176, [8, 8, 8], [4, 4, 4], 0.6))
    assert store.metrics(run_id)[0]["detail"]["params_after"] == 2176
