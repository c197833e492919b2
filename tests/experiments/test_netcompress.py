"""Compress a trained dense CNN: TT-SVD of each convolution after the first (as a TT convolution) and of its FC
layer, exact at full rank; the singular values of each kernel's unfoldings against an independent SVD; the
command end to end."""

from __future__ import annotations

import json

import pytest
import torch

from ttexplore.cli import main
from ttexplore.experiments import compress, netcompress
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.lifecycle import execute
from ttexplore.runs.store import RunStore

DENSE_CNN = {"dataset": "digits", "pad_to": None, "layers": ["conv:4:3", "pool:2", "conv:8:3", "pool:2", "dense:16"],
             "epochs": 1, "batch_size": 32, "evals_per_epoch": 1, "train_limit": 256}


@pytest.fixture(scope="module")
def trained_cnn_home(tmp_path_factory):
    """A home with one trained dense CNN run (1 epoch on 256 digits), trained once for this module."""
    home = tmp_path_factory.mktemp("cnn-compress-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTEXPLORE_HOME", str(home))
        store = RunStore()
        run_id = store.create_run(RunConfig.from_dict(DENSE_CNN), status="running")
        execute(store, run_id)
    return home, run_id


@pytest.fixture
def cnn_run(trained_cnn_home, monkeypatch):
    home, run_id = trained_cnn_home
    monkeypatch.setenv("TTEXPLORE_HOME", str(home))
    return RunStore(), run_id


def test_the_proposed_tt_network_and_its_spectra(cnn_run):
    store, run_id = cnn_run
    source = netcompress.network_source_from_run(store, run_id)
    assert [None if weight is None else tuple(weight.shape) for weight in source.weights] == [
        (4, 1, 3, 3), None, (8, 4, 3, 3), None, (16, 32)]
    target = netcompress.target_network(source)
    assert [layer.text() for layer in target] == ["conv:4:3", "pool:2", "ttconv:2x2x1->2x2x2:4:3", "pool:2",
                                                  "tt:2x2x2x4->2x2x2x2:4"]
    spectra = netcompress.network_spectra(source, target)
    assert [layer.index for layer in spectra] == [3, 5] and spectra[0].in_modes == (9, 2, 2, 1)
    kernel = source.weights[2].double()
    # unfolding 1 of the TT convolution: the kernel position (x, y) against every channel index
    independent = torch.linalg.svdvals(kernel.permute(2, 3, 0, 1).reshape(9, -1))
    torch.testing.assert_close(torch.tensor(spectra[0].spectra[0], dtype=torch.float64), independent)
    assert spectra[0].boundaries[0].startswith("r_0") and len(spectra[0].spectra) == 3
    weight = source.weights[4].double()  # the FC layer: unfolding 1 pairs in-mode 2 with out-mode 2
    first = torch.linalg.svdvals(weight.reshape(2, 8, 2, 16).permute(2, 0, 3, 1).reshape(4, -1))
    torch.testing.assert_close(torch.tensor(spectra[1].spectra[0], dtype=torch.float64), first)
    json.dumps([layer.to_dict() for layer in spectra])


def test_the_tt_network_given_must_fit_the_source(cnn_run):
    store, run_id = cnn_run
    source = netcompress.network_source_from_run(store, run_id)
    with pytest.raises(ConfigError, match="has 1 layers but run .* has 5: give one per layer, e.g. conv:4:3; pool:2; ttconv"):
        netcompress.target_network(source, ["conv:4:3"])
    with pytest.raises(ConfigError, match="gives"):
        netcompress.target_network(source, ["conv:4:3", "pool:2", "ttconv:4->2x8:2:5:s2", "pool:2", "dense:16"])
    with pytest.raises(ConfigError, match="compresses no layer"):
        netcompress.plan_network_compression(source, source.base.layers, [2])


def test_compressing_a_dense_cnn_is_exact_at_full_rank(cnn_run):
    store, run_id = cnn_run
    source = netcompress.network_source_from_run(store, run_id)
    target = netcompress.target_network(source)
    targets = netcompress.plan_network_compression(source, target, [1, 1000], finetune_epochs=0)
    low, full = targets
    assert full.rel_error < 1e-6 and max(full.layer_errors) < 1e-6 and low.rel_error > 0.1
    assert full.compressed.layers[2].ranks_used(full.compressed.layer_shapes[2]) == full.ranks
    recorded = compress.run_plan(store, targets)
    rows = compress.compress_rows(store, targets)
    dense_accuracy = store.get_run(run_id)["final_test_accuracy"]
    assert len(recorded) == 2 and rows[1].test_accuracy == dense_accuracy  # the dense net itself, in TT format
    assert rows[0].net_params == low.compressed.net_params() < rows[1].net_params
    assert rows[1].dense_net_params == source.base.net_params()


@pytest.mark.slow
def test_the_compress_command_on_a_cnn_run(cnn_run, tmp_path):
    store, run_id = cnn_run
    out = tmp_path / "report.json"
    assert main(["compress", "--run", run_id, "--ranks", "2", "--finetune-epochs", "1", "--train-scratch",
                 "--json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["network"] and report["layers"][2].startswith("ttconv:")
    row = report["rows"][0]
    assert row["finetuned_test_accuracy"] is not None and row["scratch_test_accuracy"] is not None
    assert len(row["layer_errors"]) == 2 and [layer["index"] for layer in report["spectra"]] == [3, 5]
    assert main(["compress", "--run", run_id, "--in-modes", "4x4"]) == 2
