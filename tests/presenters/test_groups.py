"""Seed groups and comparisons: group keys (a seed difference groups, anything else does not), the spread and
its band (std from three runs, min-max below), the mean curves and the bands in the figures' data, one more
seed, the settings that differ, and a pinned baseline's differences and ratios. Every expected number is
computed here by hand from the inputs."""

from __future__ import annotations

import math

import pytest

from ttexplore.presenters import compare, groups, plots, tracking
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

BASE = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 2,
                            "epochs": 2})


def run_of(config: RunConfig, run_id: str, best=None, status="completed", at_best_val=None, name="") -> dict:
    """A run dict as RunStore.list_runs gives it, for ``config``."""
    return {"id": run_id, "config": config.to_dict(), "config_key": config.key(), "status": status, "name": name,
            "best_test_accuracy": best, "final_test_accuracy": best, "test_accuracy_at_best_val": at_best_val,
            "layer_params": config.layer_params(), "compression": config.compression(), "dataset": config.dataset,
            "layer": config.layers[0].name, "created_at": 1_700_000_000.0, "tags": [], "label": config.label}


# ---------------------------------------------------------------- group keys
def test_runs_that_differ_only_by_their_seed_share_a_group_and_nothing_else_does():
    same = [BASE.replace(seed=seed) for seed in (0, 1, 7)] + [BASE.replace(seed=3, label="again", device="cpu")]
    assert len({config.group_key() for config in same}) == 1
    assert len({config.key() for config in same}) == 4  # the key itself still tells the seeds apart
    others = [BASE.replace(lr=1e-2), BASE.replace(ranks=3), BASE.replace(epochs=3), BASE.replace(val_split=0.1),
              BASE.replace(dataset="mnist5k", layers=["tt:4x7x4x7->4x4x4x4:2"]), BASE.replace(train_limit=500),
              BASE.replace(batch_size=32), BASE.dense_twin()]
    keys = {config.group_key() for config in others} | {BASE.group_key()}
    assert len(keys) == len(others) + 1
    runs = [run_of(config, f"s{index}") for index, config in enumerate(same)] + [run_of(others[0], "lr")]
    found = groups.seed_groups(runs)
    assert [[run["id"] for run in group.runs] for group in found] == [["s0", "s1", "s2", "s3"], ["lr"]]
    assert found[0].seeds == [0, 1, 3, 7]


# ---------------------------------------------------------------- the spread and its band
def test_the_spread_is_the_sample_std_from_three_runs_on_and_the_range_below():
    three = groups.spread([0.90, 0.93, 0.96])
    std = math.sqrt(((0.90 - 0.93) ** 2 + 0 + (0.96 - 0.93) ** 2) / 2)  # n - 1 in the denominator: 0.03
    assert (three.n, three.mean, three.std, three.band) == (3, pytest.approx(0.93), pytest.approx(std), "std")
    assert (three.band_low, three.band_high) == (pytest.approx(0.93 - std), pytest.approx(0.93 + std))
    two = groups.spread([0.90, None, 0.94, float("nan")])
    assert (two.n, two.band, two.band_low, two.band_high) == (2, "min-max", 0.90, 0.94)
    one = groups.spread([0.91])
    assert (one.std, one.band_low, one.band_high) == (None, 0.91, 0.91) and groups.spread([None]) is None
    assert groups.spread_text(three) == "0.9300 ± 0.0300 (n=3)"
    assert groups.spread_text(two) == "0.9200 (0.9000–0.9400, n=2)" and groups.spread_text(one) == "0.9100 (n=1)"


def events(*points) -> list[dict]:
    """End-of-epoch events: each point ``(epoch, test_accuracy, train_loss)``."""
    return [{"kind": "epoch", "epoch": float(epoch), "step": 10 * epoch, "test_accuracy": accuracy, "train_loss": loss,
             "test_loss": loss, "train_accuracy": accuracy, "elapsed_s": float(epoch)} for epoch, accuracy, loss in points]


def test_mean_curves_and_their_bands_in_the_figure_data():
    runs = [events((1, 0.80, 1.0), (2, 0.90, 0.5)), events((1, 0.84, 1.2), (2, 0.92, 0.4)), events((1, 0.88, 0.8))]
    merged, bands = groups.mean_events(runs)
    assert [event["n"] for event in merged] == [3, 2]  # the third run has not reached epoch 2 yet
    assert [event["test_accuracy"] for event in merged] == pytest.approx([0.84, 0.91])
    lows, highs, kinds = bands["test_accuracy"]
    assert kinds == ["std", "min-max"]
    assert lows == pytest.approx([0.84 - 0.04, 0.90]) and highs == pytest.approx([0.84 + 0.04, 0.92])  # std of .80,.84,.88
    figure = plots.training_curves([{"label": "g · mean of 3 seeds", "events": merged, "bands": bands}])
    fills = {trace.name: trace for trace in figure.data if trace.fill == "toself" and trace.x[0] is not None}
    band = fills["g · mean of 3 seeds (test, band)"]
    assert list(band.x) == [1.0, 2.0, 2.0, 1.0]
    assert list(band.y) == pytest.approx([0.88, 0.92, 0.90, 0.80])  # along the highs, back along the lows
    line = next(trace for trace in figure.data if trace.name == "g · mean of 3 seeds (test)" and trace.xaxis == "x2")
    assert list(line.y) == pytest.approx([0.84, 0.91]) and "mean of" in line.hovertemplate
    assert [list(item) for item in line.customdata] == [[3, "± 1 std"], [2, "min–max"]]
    assert any(trace.name == groups.BAND_LEGEND for trace in figure.data)


def test_the_accuracy_figure_draws_a_band_for_a_line_and_an_error_bar_for_a_lone_point():
    points = [{"shape": "4x4x4", "layer_params": 100, "test_accuracy": 0.9, "n": 3, "low": 0.88, "high": 0.92, "band": "std"},
              {"shape": "4x4x4", "layer_params": 300, "test_accuracy": 0.95, "n": 2, "low": 0.94, "high": 0.96,
               "band": "min-max"},
              {"shape": "dense", "layer_params": 4096, "test_accuracy": 0.97, "n": 2, "low": 0.965, "high": 0.98,
               "band": "min-max"}]
    figure = plots.accuracy_vs_params(points)
    band = next(trace for trace in figure.data if trace.name == "4x4x4 (band)")
    assert list(band.x) == [100, 300, 300, 100] and list(band.y) == pytest.approx([0.92, 0.96, 0.94, 0.88])
    dense = next(trace for trace in figure.data if trace.name == "dense")
    assert list(dense.error_y.array) == pytest.approx([0.01]) and list(dense.error_y.arrayminus) == pytest.approx([0.005])
    line = next(trace for trace in figure.data if trace.name == "4x4x4")
    assert "mean of 3 seeds, band ± 1 std 0.8800–0.9200" in line.text[0]


def test_curve_series_merge_a_seed_group_and_keep_the_others():
    configs = [BASE.replace(seed=0), BASE.replace(seed=1), BASE.replace(lr=1e-2)]
    runs = [run_of(config, f"r{index}", best=0.9) for index, config in enumerate(configs)]
    metrics = {"r0": events((1, 0.8, 1.0)), "r1": events((1, 0.9, 0.9)), "r2": events((1, 0.7, 1.1))}
    series = tracking.curve_runs(runs, metrics, group_seeds=True)
    assert len(series) == 2 and series[0]["label"].endswith("mean of 2 seeds")
    assert series[0]["events"][0]["test_accuracy"] == pytest.approx(0.85) and series[0]["bands"]
    assert "bands" not in series[1] and series[1]["events"] == metrics["r2"]
    assert len(tracking.curve_runs(runs, metrics)) == 3


# ---------------------------------------------------------------- one more seed
def test_one_more_seed_is_the_same_config_at_the_next_unused_seed_of_its_group():
    runs = [run_of(BASE.replace(seed=seed), f"s{seed}") for seed in (0, 1, 2)]
    runs.append(run_of(BASE.replace(seed=5, lr=1e-2), "other"))  # another group's seeds do not count
    config = groups.one_more_seed(runs, runs[1])
    assert config == BASE.replace(seed=3) and config.group_key() == BASE.group_key()
    gap = [run_of(BASE.replace(seed=0), "a"), run_of(BASE.replace(seed=2), "b", status="failed")]
    assert groups.one_more_seed(gap, gap[0]).seed == 1
    assert groups.next_seed([]) == 0 and groups.next_seed([1, 2]) == 0 and groups.next_seed([0, 1, 3]) == 2


# ---------------------------------------------------------------- what differs
def test_only_the_settings_that_differ_are_shown_beside_the_results():
    first = run_of(BASE, "a", best=0.9)
    second = run_of(BASE.replace(lr=1e-2, seed=4), "b", best=0.92, at_best_val=0.91)
    assert compare.differing_settings([first, second]) == ["lr", "seed"]
    table = compare.differences_table([first, second], {"a": "first", "b": "second"})
    assert list(table.columns) == ["run", "lr", "seed", *compare.RESULT_COLUMNS]
    assert list(table["lr"]) == ["0.003", "0.01"] and list(table["seed"]) == ["0", "4"]
    assert list(table["best acc"]) == [0.9, 0.91] and list(table["chosen on"]) == ["test (optimistic)", "validation"]
    deeper = run_of(BASE.replace(layers=["tt:4x4x4:2", "dense:32"]), "c", best=0.8)
    assert compare.differing_settings([first, deeper]) == ["hidden layer 2"]
    held = run_of(BASE.replace(val_split=0.1, early_stop=2), "d")
    assert compare.differing_settings([first, held]) == ["val_split", "early_stop"]
    assert compare.differing_settings([first, run_of(BASE, "e")]) == []


# ---------------------------------------------------------------- a pinned baseline
def test_a_pinned_baseline_gives_each_run_its_accuracy_difference_and_weight_ratio(tmp_path):
    dense = run_of(BASE.dense_twin(), "dense", best=0.95)
    tt = run_of(BASE, "tt", best=0.90)
    held = run_of(BASE.replace(ranks=4), "held", best=0.99, at_best_val=0.93)  # the validation choice counts
    deltas = compare.baseline_deltas([dense, tt, held], dense)
    assert deltas["dense"] == {"Δ acc": 0.0, "weights ×": 1.0}
    assert deltas["tt"]["Δ acc"] == pytest.approx(0.90 - 0.95)
    assert deltas["tt"]["weights ×"] == pytest.approx(BASE.layer_params() / (64 * 64))
    assert deltas["held"]["Δ acc"] == pytest.approx(0.93 - 0.95)
    table = tracking.hparams_table([dense, tt, held], baseline=dense)
    assert list(table["Δ acc vs baseline"]) == pytest.approx([0.0, -0.05, -0.02])
    assert list(table["weights × baseline"]) == pytest.approx([1.0, BASE.layer_params() / 4096,
                                                               BASE.replace(ranks=4).layer_params() / 4096])
    assert tracking.hparams_table([tt], baseline=None)["Δ acc vs baseline"].isna().all()
    figure = plots.accuracy_vs_params(groups.accuracy_points([tt]), reference=compare.baseline_reference(dense, "dense"))
    assert "-0.0500 vs baseline" in next(trace for trace in figure.data if trace.name == "4x4x4").text[0]
    store = RunStore(tmp_path / "runs.db")
    store.set_setting(compare.BASELINE_SETTING, "dense")
    assert RunStore(tmp_path / "runs.db").setting(compare.BASELINE_SETTING) == "dense"  # survives a reload
    store.set_setting(compare.BASELINE_SETTING, None)
    assert store.setting(compare.BASELINE_SETTING) is None
    with pytest.raises(ValueError, match="unknown"):
        store.set_setting("colour", "blue")


def test_the_runs_table_shows_each_seed_groups_mean_and_count():
    runs = [run_of(BASE.replace(seed=seed), f"s{seed}", best=accuracy) for seed, accuracy in ((0, 0.90), (1, 0.93), (2, 0.96))]
    runs.append(run_of(BASE.replace(seed=3), "s3", status="running"))
    table = tracking.hparams_table(runs)
    assert list(table["seed group"]) == ["0.9300 ± 0.0300 (n=3)"] * 4 and list(table["seeds"]) == [3] * 4


def test_a_validation_split_is_drawn_dotted_and_named_in_the_legend():
    held = [{**event, "val_loss": 0.5 + index, "val_accuracy": 0.8} for index, event in enumerate(events((1, 0.8, 1.0), (2, 0.9, 0.5)))]
    figure = plots.training_curves([{"label": "held", "events": held}])
    loss = next(trace for trace in figure.data if trace.name == "held (val)" and trace.xaxis == "x")
    assert list(loss.y) == [0.5, 1.5] and loss.line.dash == "dot"
    assert "val (dotted)" in {trace.name for trace in figure.data}
    assert "val (dotted)" not in {trace.name for trace in plots.training_curves([{"label": "r", "events": events((1, .8, 1.))}]).data}


def test_a_repeat_of_one_seed_is_not_one_more_sample_of_the_seed_noise():
    runs = [run_of(BASE, "again", best=0.91), run_of(BASE, "first", best=0.91), run_of(BASE.replace(seed=1), "other", best=0.95)]
    (group,) = groups.seed_groups(runs)
    assert [run["id"] for run in group.per_seed] == ["again", "other"] and group.seeds == [0, 1]
    assert (group.accuracy.n, group.accuracy.mean) == (2, pytest.approx(0.93))
    metrics = {run["id"]: events((1, run["best_test_accuracy"], 1.0)) for run in runs}
    series = tracking.curve_runs(runs, metrics, group_seeds=True)
    assert len(series) == 1 and series[0]["label"].endswith("mean of 2 seeds")
    named = [run_of(BASE, name, best=0.9, name=name) for name in ("one", "two")]  # the same run twice: kept apart
    assert [item["label"] for item in tracking.curve_runs(named, {}, group_seeds=True)] == ["one", "two"]
