"""Compress end to end on digits: a trained dense run, TT-SVD at two ranks, fine-tuning, from scratch."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ttexplore.cli import main
from ttexplore.experiments import compress
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.lifecycle import execute
from ttexplore.runs.store import RunStore

DENSE = {"dataset": "digits", "pad_to": None, "layer": "dense", "in_modes": None, "out_modes": None, "epochs": 2,
         "batch_size": 32, "evals_per_epoch": 1, "train_limit": 320}


@pytest.fixture(scope="module")
def trained_dense_home(tmp_path_factory):
    """A home with one trained dense run (2 epochs on 320 digits), trained once for this module's tests."""
    home = tmp_path_factory.mktemp("compress-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTEXPLORE_HOME", str(home))  # its dataset cache too goes there, never to ~/.ttexplore
        store = RunStore()
        run_id = store.create_run(RunConfig.from_dict(DENSE), status="running")
        execute(store, run_id)
    return home, run_id


@pytest.fixture
def dense_run(trained_dense_home, monkeypatch):
    """The module's trained dense run, this test's ``TTEXPLORE_HOME`` pointing at its home; only the
    end-to-end test adds runs there (the others read it, or fail before recording anything)."""
    home, run_id = trained_dense_home
    monkeypatch.setenv("TTEXPLORE_HOME", str(home))
    return RunStore(), run_id


def test_compress_command_end_to_end(dense_run, tmp_path, capsys):
    store, run_id = dense_run
    out = tmp_path / "compress.json"
    args = ["compress", "--run", run_id, "--in-modes", "4x4x4", "--out-modes", "4x4x4", "--ranks", "1,16,64",
            "--finetune-epochs", "1", "--train-scratch", "--json", str(out), "--quiet"]
    assert main(args) == 0
    report = json.loads(out.read_text())
    dense_accuracy = store.get_run(run_id)["final_test_accuracy"]
    assert report["dense_test_accuracy"] == dense_accuracy and report["dense_params"] == 64 * 64
    rows = report["rows"]
    assert [row["rank"] for row in rows] == [1, 16]  # 64 is the same layer as 16 (the maximal useful ranks)
    for row in rows:
        assert {"rank", "params", "compression", "rel_error", "test_accuracy", "finetuned_test_accuracy",
                "scratch_test_accuracy"} <= set(row)
        assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["finetuned_test_accuracy"] <= 1
        assert row["scratch_test_accuracy"] is not None and row["scratch_epochs"] == 1
    low, full = rows
    assert low["params"] == 4 * 4 * 1 * 3 and low["rel_error"] > 0.5
    assert full["rel_error"] < 1e-6 and full["test_accuracy"] == dense_accuracy  # exact: the dense net itself
    assert full["compression"] == pytest.approx(full["params"] / 4096)
    # every network is a recorded run: TT-SVD (0 epochs), fine-tuned, from scratch, per rank
    tagged = [run for run in store.list_runs() if "compress" in run["tags"]]
    assert len(tagged) == 6 and all(run["status"] == "completed" for run in tagged)
    start = RunConfig.from_dict(store.get_run(full["finetuned_run_id"])["config"]).init_from
    assert start.run == run_id and start.method == "tt-svd"
    # a second launch reuses them
    assert main(args) == 0
    assert json.loads(out.read_text())["recorded_runs"] == [] and len(store.list_runs()) == 7
    assert "TT-SVD" in capsys.readouterr().out  # the table (stdout when --json is a file)


def test_compress_a_users_weights_file_by_relative_error(tmp_path):
    generator = torch.Generator().manual_seed(0)
    layer = nn.Linear(64, 64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(64, 64, generator=generator) * 0.1)
    torch.save({"fc.weight": layer.weight.data, "fc.bias": layer.bias.data}, tmp_path / "linear.pt")
    source = compress.source_from_file(tmp_path / "linear.pt", "digits", pad_to=None)
    assert not source.has_head and source.base.layer_widths == [64, 64, 10]
    targets = compress.plan_compression(source, "4x4x4", "4x4x4", rel_errors=[0.5], finetune_epochs=1,
                                        batch_size=32, evals_per_epoch=1, train_limit=320)
    assert len(targets) == 1 and targets[0].rel_error <= 0.5 and targets[0].rank is None
    store = RunStore()
    recorded = compress.run_plan(store, targets)
    rows = compress.compress_rows(store, targets)
    assert len(recorded) == 2 and rows[0].finetuned_test_accuracy is not None
    assert rows[0].test_accuracy is not None and rows[0].scratch_test_accuracy is None  # none in the store


def test_spectra_and_needed_ranks_of_a_trained_layer(dense_run):
    store, run_id = dense_run
    source = compress.source_from_run(store, run_id)
    spectra = compress.unfolding_spectra(source.weight, (4, 4, 4), (4, 4, 4))
    assert [len(spectrum) for spectrum in spectra] == [16, 16]
    from ttexplore.tt.ttmath import ranks_for_error

    assert ranks_for_error(spectra, 1e-9) == (16, 16) and ranks_for_error(spectra, 0.99) < (16, 16)


@pytest.mark.parametrize("args, flag", [
    (["--run", "nope"], "--run"),
    (["--in-modes", "4x4x8"], "--in-modes"),
    (["--ranks", "x"], "--ranks"),
    (["--rel-error", "2"], "--rel-error"),
])
def test_a_bad_compress_argument_is_one_line_naming_it(dense_run, args, flag, capsys):
    _, run_id = dense_run
    base = ["compress", "--run", run_id, "--ranks", "1", "--quiet"] if "--run" not in args else ["compress", "--quiet"]
    code = main(base + args)
    error = capsys.readouterr().err.strip()
    assert code == 2 and flag in error and len(error.splitlines()) == 1


def test_a_source_with_several_hidden_layers_is_refused(tmp_path):
    store = RunStore()
    config = RunConfig.from_dict({**DENSE, "hidden_layers": ["dense:32", "dense:16"], "epochs": 1})
    run_id = store.create_run(config, status="running")
    execute(store, run_id)
    with pytest.raises(ConfigError, match="one hidden layer"):
        compress.source_from_run(store, run_id)


# ---------------------------------------------------------------- a TT run: its cores rounded
TT = {**DENSE, "layer": "tt", "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": 8, "epochs": 3, "round_to": "4@2"}


@pytest.mark.slow  # seven trainings
def test_compress_a_tt_run_rounds_its_trained_cores(tmp_path):
    from ttexplore.runs.fit import evaluate
    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.models import load_model

    store = RunStore()
    config = RunConfig.from_dict(TT)  # a scheduled run: its layer ends at rank 4 (its config says 8)
    run_id = store.create_run(config, status="running")
    execute(store, run_id, config=config)
    source = compress.source_from_run(store, run_id)
    assert source.method == "tt-round" and source.weight is None and source.tt.ranks == (4, 4)
    assert source.base.round_to is None and (source.in_features, source.out_features) == (64, 64)
    spectra = compress.source_spectra(source, (4, 4, 4), (4, 4, 4))
    trained = source.tt
    expected = [values.tolist() for values in trained.singular_values()]
    assert spectra == expected and len(spectra) == 2
    dense = trained.to_dense().double().reshape(4, 4, 4, 4, 4, 4).permute(3, 0, 4, 1, 5, 2).reshape(16, 256)
    assert spectra[0][:4] == pytest.approx(torch.linalg.svdvals(dense)[:4].tolist(), rel=1e-5)  # the first unfolding's
    assert compress.default_ranks(source) == [1, 2]
    targets = compress.plan_compression(source, (4, 4, 4), (4, 4, 4), ranks=[1, 2], rel_errors=[0.5], finetune_epochs=1)
    for target in targets:
        rounded = trained.round(max_rank=target.rank, rel_error=target.rel_error_target)
        assert target.ranks == rounded.ranks and target.rel_error == pytest.approx(rounded.approximation_error)
        assert target.compressed.init_from.method == "tt-round" and target.compressed.epochs == 0
        assert target.scratch.init_from is None
    compress.run_plan(store, targets)
    rows = compress.compress_rows(store, targets)
    data = load_dataset("digits")
    model, _ = load_model(store.get_run(run_id)["weights_path"])
    model.hidden = model.hidden.rounded(max_rank=1)  # the network as rounded, evaluated here
    _, accuracy = evaluate(model, data.test_images, data.test_labels)
    assert rows[0].test_accuracy == pytest.approx(accuracy, abs=1e-9)
    assert all(row.finetuned_test_accuracy is not None for row in rows)
    with pytest.raises(ConfigError, match="its own modes") as caught:
        compress.plan_compression(source, (8, 8), (8, 8), ranks=[1])
    assert caught.value.field == "in_modes"
    with pytest.raises(ConfigError, match="not below the run's ranks") as caught:
        compress.plan_compression(source, (4, 4, 4), (4, 4, 4), ranks=[4])
    assert caught.value.field == "ranks"


def test_combine_seeds_gives_each_rank_the_mean_std_and_range_of_each_path():
    def row(rank, error, svd, tuned, scratch):
        return {"rank": rank, "ranks": [rank], "params": 10 * rank, "dense_params": 10, "compression": rank / 100,
                "rel_error": error, "test_accuracy": svd,
                "finetuned_test_accuracy": tuned, "scratch_test_accuracy": scratch}

    seeds = [[row(1, 0.9, 0.10, 0.80, 0.90), row(4, 0.5, 0.5, 0.90, None)],
             [row(1, 0.8, 0.20, 0.84, 0.92), row(4, 0.5, 0.6, 0.92, None)],
             [row(1, 0.7, 0.30, 0.88, 0.94), row(4, 0.5, 0.7, 0.94, 0.95)]]
    low, high = compress.combine_seeds(seeds)
    assert (low["rank"], low["seeds"], high["rank"]) == (1, 3, 4)
    assert low["test_accuracy"] == pytest.approx(0.2) and low["test_accuracy_std"] == pytest.approx(0.1)  # (.1,.2,.3)
    assert low["finetuned_test_accuracy_std"] == pytest.approx(0.04) and low["rel_error"] == pytest.approx(0.8)
    assert (low["test_accuracy_low"], low["test_accuracy_high"], low["test_accuracy_band"]) == (
        pytest.approx(0.1), pytest.approx(0.3), "std")
    # a path only one seed has: its value, no std, a band of width 0
    assert (high["scratch_test_accuracy"], high["scratch_test_accuracy_std"], high["scratch_test_accuracy_n"]) == (0.95, None, 1)
    from ttexplore.presenters import compress as views

    table = views.compress_markdown([low, high], 0.95, dense_std=0.01)
    assert "| 1 | 1 | 10 | 1.0e-02 | " in table and "0.800 ± 0.100 | 0.2000 ± 0.1000 | 0.8400 ± 0.0400 | 0.9200 ± 0.0200 |" in table
    assert "| dense | - | 10 | 1 | 0 | 0.9500 ± 0.0100 | | |" in table
    figure = views.compress_figure([low, high], "rank")
    band = next(trace for trace in figure.data if trace.name == "TT-SVD (band)")
    assert list(band.y) == pytest.approx([0.3, 0.7, 0.6 - 0.1, 0.1])  # highs of ranks 1, 4, then lows of 4, 1


def test_sources_compared_together_must_be_the_seeds_of_one_experiment():
    base = RunConfig.from_dict(DENSE)
    compress.check_seed_sources([base, base.replace(seed=1), base.replace(seed=2)])
    with pytest.raises(ConfigError, match="more than its seed"):
        compress.check_seed_sources([base, base.replace(seed=1, lr=0.01)])
    with pytest.raises(ConfigError, match="same seed"):
        compress.check_seed_sources([base, base.replace(label="again")])


@pytest.mark.slow
def test_compress_over_the_seeds_of_a_dense_run(tmp_path):
    store = RunStore()
    run_ids = []
    for seed in (0, 1):
        run_ids.append(store.create_run(RunConfig.from_dict({**DENSE, "seed": seed}), status="running"))
        execute(store, run_ids[-1])
    out = tmp_path / "compress.json"
    args = ["compress", "--run", run_ids[0], "--run", run_ids[1], "--in-modes", "4x4x4", "--out-modes", "4x4x4",
            "--ranks", "2", "--finetune-epochs", "1", "--train-scratch", "--json", str(out), "--quiet"]
    assert main(args) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    per_seed = [seed["rows"][0] for seed in report["seeds"]]
    assert [seed["seed"] for seed in report["seeds"]] == [0, 1] and row["seeds"] == 2
    for key in ("test_accuracy", "finetuned_test_accuracy", "scratch_test_accuracy"):
        values = [each[key] for each in per_seed]
        assert row[key] == pytest.approx(sum(values) / 2) and row[f"{key}_low"] == min(values)
    # each seed got its own from-scratch net, of its own seed
    scratch_seeds = {store.get_run(each["scratch_run_id"])["config"]["seed"] for each in per_seed}
    assert scratch_seeds == {0, 1}
    assert report["dense_test_accuracy"] == pytest.approx(
        sum(store.get_run(run_id)["final_test_accuracy"] for run_id in run_ids) / 2)


def test_a_from_scratch_net_of_another_length_or_seed_is_not_the_comparison_asked_for(tmp_path):
    torch.manual_seed(0)
    layer = nn.Linear(64, 64)
    torch.save({"fc.weight": layer.weight.data}, tmp_path / "linear.pt")
    source = compress.source_from_file(tmp_path / "linear.pt", "digits", pad_to=None)
    targets = compress.plan_compression(source, "4x4x4", "4x4x4", ranks=[2], finetune_epochs=0, scratch_epochs=3)
    store = RunStore()

    def stored(config):  # a completed run, as a sweep or an earlier compression left it (no training needed here)
        run_id = store.create_run(config, status="running")
        store.finish(run_id, "completed")
        return run_id

    wanted = lambda: [what for what, _, _ in compress.missing_runs(store, targets, scratch=True)]  # noqa: E731
    assert wanted() == ["compressed", "scratch"]
    stored(targets[0].scratch.replace(epochs=20))  # the same net trained longer
    stored(targets[0].scratch.replace(seed=5))  # or at another seed
    assert wanted() == ["compressed", "scratch"]
    exact = stored(targets[0].scratch)
    assert wanted() == ["compressed"]
    assert compress.find_scratch(store, targets[0].scratch, 3)["id"] == exact
