"""The validation split, early stopping on it and the best epoch's weights: the split is disjoint from
training, stratified and reproducible; early stopping stops at the right epoch; the best weights are
those of the best epoch (in the result, the checkpoint and the second weights file); a run resumed across
the bookkeeping ends bit for bit where the uninterrupted one does; the new config fields and their keys."""

from __future__ import annotations

import math
import re

import pytest
import torch

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.fit import fit
from ttexplore.runs.lifecycle import StopFlags, execute, load_checkpoint
from ttexplore.runs.models import load_model
from ttexplore.runs.store import RunStore
from ttexplore.runs.validation import BestEpoch, best_of, class_counts, hold_out

SMALL = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=5, batch_size=32,
             train_limit=320, evals_per_epoch=2, val_split=0.2)


def small(**changes) -> RunConfig:
    return RunConfig.from_dict({**SMALL, **changes})


def labelled(counts: dict[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose only value is their own index (so a split can be traced back), classes in a shuffled order."""
    labels = torch.cat([torch.full((count,), label) for label, count in counts.items()])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    return torch.arange(len(labels), dtype=torch.float64).reshape(-1, 1), labels


# ---------------------------------------------------------------- the split
def test_the_split_is_disjoint_complete_stratified_and_reproducible():
    counts = {0: 50, 1: 31, 2: 7, 3: 2}
    images, labels = labelled(counts)
    train_x, train_y, val_x, val_y = hold_out(images, labels, 0.2, seed=11)
    train_ids, val_ids = set(train_x[:, 0].long().tolist()), set(val_x[:, 0].long().tolist())
    assert not train_ids & val_ids and train_ids | val_ids == set(range(len(labels)))
    assert torch.equal(train_y, labels[train_x[:, 0].long()]) and torch.equal(val_y, labels[val_x[:, 0].long()])
    # per class round(n * 0.2), at least one, never the class's last image: 10, 6, 1, 1 (counted by hand)
    assert {label: int((val_y == label).sum()) for label in counts} == {0: 10, 1: 6, 2: 1, 3: 1}
    assert [class_counts(n, 0.2) for n in (50, 31, 7, 2, 1)] == [(40, 10), (25, 6), (6, 1), (1, 1), (1, 0)]
    assert train_x[:, 0].tolist() == sorted(train_x[:, 0].tolist())  # both parts keep the images' order
    again = hold_out(images, labels, 0.2, seed=11)
    assert torch.equal(again[2], val_x) and torch.equal(again[0], train_x)
    other = hold_out(images, labels, 0.2, seed=12)
    assert not torch.equal(other[2], val_x)


def test_a_class_with_one_image_cannot_be_split():
    images, labels = labelled({0: 10, 1: 1})
    with pytest.raises(ValueError, match="class 1 has a single training image"):
        hold_out(images, labels, 0.2, seed=0)


def test_a_run_trains_on_the_rest_and_reports_validation_metrics_at_each_epoch_end():
    config = small(epochs=2)
    result = fit(config)
    assert result.status == "completed"
    history = result.history
    assert all("val_loss" in event and "val_accuracy" in event for event in history)
    assert not any("val_loss" in event for event in result.events if event["kind"] == "eval")
    # 320 digits, 20 % held out per class: 256 or so trained on, 32 images per batch
    trained = 320 - sum(class_counts(n, 0.2)[1] for n in _digit_class_counts(320))
    assert history[0]["steps_per_epoch"] == math.ceil(trained / 32)


def _digit_class_counts(limit: int) -> list[int]:
    from ttexplore.runs.data import load_dataset

    labels = load_dataset("digits").train_labels[:limit]
    return [int((labels == label).sum()) for label in labels.unique()]


# ---------------------------------------------------------------- early stopping
def scripted(losses, patience):
    """Feed ``losses`` (epochs 1, 2, ...) to a :class:`BestEpoch` as the loop does; the epochs trained and the tracker."""
    best = BestEpoch(patience)
    trained = 0
    for epoch, loss in enumerate(losses, start=1):
        if best.should_stop:
            break
        trained = epoch
        best.observe(epoch, loss, 1 - loss, 0.5, lambda epoch=epoch: {"w": torch.tensor([float(epoch)])})
    return trained, best


def test_early_stopping_stops_when_the_patience_runs_out_on_a_scripted_loss_sequence():
    losses = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7]
    trained, best = scripted(losses, patience=2)
    assert (trained, best.epoch, best.val_loss) == (4, 2, 0.8)  # epochs 3 and 4 bring no loss below 0.8
    assert best.model_state["w"].item() == 2.0 and best.summary(len(losses))["stopped_early_at"] == 4
    trained, best = scripted(losses, patience=3)
    assert (trained, best.epoch) == (5, 2)
    trained, best = scripted(losses, patience=4)
    assert (trained, best.epoch, best.summary(len(losses))["stopped_early_at"]) == (6, 6, None)  # epoch 6 improves
    trained, best = scripted([0.5, 0.5, 0.5], patience=2)  # a tie is no improvement: the earliest stays best
    assert (trained, best.epoch) == (3, 1)
    assert scripted(losses, patience=None)[0] == 6
    assert best_of([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": None}, {"epoch": 3, "val_loss": 0.5}])["epoch"] == 1


def test_a_run_stops_early_where_its_own_validation_losses_say():
    config = small(epochs=12, early_stop=1, lr=0.05)
    result = fit(config)
    losses = [event["val_loss"] for event in result.history]
    expected, best = len(losses), 0
    for epoch, loss in enumerate(losses, start=1):  # an independent reading of the rule: stop after the first rise
        if epoch > 1 and not loss < min(losses[: epoch - 1]):
            expected = epoch
            break
    assert result.status == "completed" and len(losses) == expected < 12
    assert result.validation["stopped_early_at"] == expected
    best = min(range(len(losses)), key=lambda index: (losses[index], index))
    assert result.validation["best_val_epoch"] == best + 1
    assert result.validation["test_accuracy_at_best_val"] == result.history[best]["test_accuracy"]


def test_the_best_weights_are_those_of_the_best_epoch_and_are_saved_beside_the_last(tmp_path):
    torch.set_num_threads(1)
    config = small(epochs=4, lr=0.05)
    states = {}

    def keep(state):
        states[state.epochs_done] = {name: tensor.clone() for name, tensor in state.model_state.items()}

    result = fit(config, on_epoch_end=keep)
    losses = [event["val_loss"] for event in result.history]
    best_epoch = min(range(4), key=lambda index: (losses[index], index)) + 1
    for name, tensor in states[best_epoch].items():
        assert torch.equal(result.best_model_state[name], tensor), name
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(config, status="running")
    execute(store, run_id)
    run = store.get_run(run_id)
    assert run["best_val_epoch"] == best_epoch and run["best_val_loss"] == losses[best_epoch - 1]
    assert run["test_accuracy_at_best_val"] == result.history[best_epoch - 1]["test_accuracy"]
    best_model, _ = load_model(store.best_weights_path_for(run_id))
    last_model, _ = load_model(run["weights_path"])
    for name, tensor in states[best_epoch].items():
        assert torch.equal(best_model.state_dict()[name], tensor), name
        assert torch.equal(last_model.state_dict()[name], states[4][name]), name
    store.delete_runs([run_id])
    assert not store.best_weights_path_for(run_id).exists()


class StopAfterEpoch:
    """A fit wrapper that interrupts the run once ``epochs`` epochs are checkpointed."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.stop = epochs, StopFlags.new()

    def __call__(self, config, dataset=None, on_epoch_end=None, **kwargs):
        def checkpoint_then_maybe_stop(state):
            on_epoch_end(state)
            if state.epochs_done >= self.epochs:
                self.stop.interrupt.set()

        return fit(config, dataset, on_epoch_end=checkpoint_then_maybe_stop, **kwargs)


@pytest.mark.parametrize("stop_after", [1, "stopped"])
def test_a_run_resumed_across_the_early_stopping_bookkeeping_ends_bit_for_bit_as_the_uninterrupted_one(tmp_path, stop_after):
    torch.set_num_threads(1)
    config = small(epochs=12, early_stop=2, lr=0.05)
    uninterrupted = fit(config)
    stopped_at = uninterrupted.validation["stopped_early_at"]
    assert stopped_at is not None and uninterrupted.validation["best_val_epoch"] < stopped_at
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(config, status="running")
    if stop_after == "stopped":
        # killed right after the checkpoint of the epoch it stops at, before the run was recorded as ended
        kept = tmp_path / "kept.pt"

        def keep_checkpoint(config, dataset=None, on_epoch_end=None, **kwargs):
            def write_then_copy(state):
                on_epoch_end(state)
                if state.epochs_done == stopped_at:
                    kept.write_bytes(store.checkpoint_path_for(run_id).read_bytes())

            return fit(config, dataset, on_epoch_end=write_then_copy, **kwargs)

        execute(store, run_id, fit_function=keep_checkpoint)
        store.finish(run_id, "interrupted")
        store.checkpoint_path_for(run_id).write_bytes(kept.read_bytes())
        epochs = stopped_at
    else:
        stopper = StopAfterEpoch(stop_after)
        execute(store, run_id, stop=stopper.stop, fit_function=stopper)
        epochs = stop_after
    state = load_checkpoint(store.checkpoint_path_for(run_id), config)
    assert store.get_run(run_id)["status"] == "interrupted" and state.epochs_done == epochs
    assert state.validation["last_epoch"] == epochs and state.validation["model_state"] is not None
    assert store.requeue(run_id)
    resumed = execute(store, run_id)
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == stopped_at
    history = [event for event in store.metrics(run_id) if event["kind"] == "epoch"]
    assert [event["val_loss"] for event in history] == [event["val_loss"] for event in uninterrupted.history]
    assert [event["train_loss"] for event in history] == [event["train_loss"] for event in uninterrupted.history]
    assert resumed.validation == uninterrupted.validation
    for name, tensor in uninterrupted.best_model_state.items():
        assert torch.equal(resumed.best_model_state[name], tensor), name
    assert run["best_val_epoch"] == uninterrupted.validation["best_val_epoch"]


def test_a_truncated_history_recomputes_the_best_validation_epoch(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(small(), status="running")
    for epoch, (loss, accuracy) in enumerate([(0.9, 0.7), (0.6, 0.8), (0.4, 0.85)], start=1):
        store.add_event(run_id, {"kind": "epoch", "epoch": float(epoch), "step": 10 * epoch, "test_accuracy": accuracy,
                                 "val_loss": loss, "val_accuracy": accuracy + 0.01})
    run = store.get_run(run_id)
    assert (run["best_val_epoch"], run["test_accuracy_at_best_val"], run["best_val_accuracy"]) == (3.0, 0.85, 0.86)
    store.truncate_metrics(run_id, after_epoch=2)
    run = store.get_run(run_id)
    assert (run["best_val_epoch"], run["best_val_loss"], run["test_accuracy_at_best_val"]) == (2.0, 0.6, 0.8)
    store.truncate_metrics(run_id, after_epoch=0)
    assert store.get_run(run_id)["best_val_epoch"] is None


# ---------------------------------------------------------------- the config fields
def test_the_new_fields_stay_out_of_the_key_at_their_defaults_and_change_it_otherwise():
    plain = RunConfig()
    assert "val_split" not in plain.to_dict() and "early_stop" not in plain.to_dict()
    assert RunConfig(val_split=0.0, early_stop=None).key() == plain.key()
    held = plain.replace(val_split=0.1)
    assert held.key() != plain.key() and held.replace(early_stop=3).key() != held.key()
    assert RunConfig.from_dict(held.replace(early_stop=3).to_dict()) == held.replace(early_stop=3)


@pytest.mark.parametrize("values, field, words", [
    ({"val_split": 0.6}, "val_split", "between 0 and 0.5"),
    ({"val_split": -0.1}, "val_split", "between 0 and 0.5"),
    ({"val_split": 0.001}, "val_split", "at least one image per class (10): use at least 0.0025"),
    ({"val_split": 0.1, "train_limit": 50}, "val_split", "holds out 5 of the 50"),
    ({"val_split": "a tenth"}, "val_split", "not a number"),
    ({"early_stop": 3}, "early_stop", "set val_split too"),
    ({"val_split": 0.1, "early_stop": 0}, "early_stop", "between 1 and 10000"),
    ({"val_split": 0.1, "early_stop": 1.5}, "early_stop", "whole number"),
])
def test_bad_validation_settings_are_refused_naming_the_field_and_the_fix(values, field, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        RunConfig.from_dict(values)
    assert caught.value.field == field


def test_the_smallest_split_suggested_is_accepted():
    assert math.floor(4000 * 0.0025) == 10
    RunConfig.from_dict({"val_split": 0.0025})


# ---------------------------------------------------------------- a rank schedule: the best epoch of the rounded net
def test_a_rounding_restarts_the_best_epoch_and_its_patience():
    best = BestEpoch(patience=2)
    best.observe(1, 0.2, 0.9, 0.9, lambda: {"w": torch.zeros(4)})
    best.observe(2, 0.5, 0.8, 0.8, lambda: {"w": torch.ones(4)})
    best.restart()  # rounded after epoch 2: a worse loss is now the best of the network in use
    assert best.epoch is None and not best.should_stop
    assert best.observe(3, 0.6, 0.7, 0.7, lambda: {"w": torch.ones(2)})
    assert (best.epoch, best.val_loss, best.model_state["w"].shape) == (3, 0.6, (2,))
    best.observe(4, 0.7, 0.7, 0.7, lambda: {"w": torch.ones(2)})
    assert not best.should_stop  # one epoch without a lower loss since the rounding's first: the patience is 2
    best.observe(5, 0.7, 0.7, 0.7, lambda: {"w": torch.ones(2)})
    assert best.should_stop


@pytest.mark.slow  # three short trainings of a small net
def test_a_scheduled_runs_best_weights_are_of_the_network_it_ends_with(tmp_path, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_HOME", str(tmp_path))
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 4,
                                  "epochs": 3, "batch_size": 32, "train_limit": 320, "val_split": 0.2, "round_to": "1@2"})
    store = RunStore()
    run_id = store.create_run(config, status="running")
    execute(store, run_id, config=config)
    run = store.get_run(run_id)
    # rank 1 after epoch 2 loses more than epoch 3 wins back: the best epoch overall is 2, of a network gone
    events = store.metrics(run_id)
    epochs = {event["epoch"]: event["val_loss"] for event in events if event["kind"] == "epoch"}
    assert epochs[2] < epochs[3], "the case this test is about: the best validation loss is before the rounding"
    assert run["status"] == "completed" and run["best_val_epoch"] == 3  # the best of the network the run ends with
    after = [event for event in events if event["kind"] == "epoch" and event["epoch"] > 2]
    assert run["best_val_loss"] == min(event["val_loss"] for event in after)
    best, _ = load_model(store.best_weights_path_for(run_id))
    last, _ = load_model(store.weights_path_for(run_id))
    assert [tuple(p.shape) for p in best.parameters()] == [tuple(p.shape) for p in last.parameters()]  # rank 2 cores
    assert last.hidden.ranks == (1, 1)
