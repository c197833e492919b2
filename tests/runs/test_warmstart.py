"""TT-SVD of trained layers and runs that start from them (RunConfig.init_from)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttexplore.nn.kernels import tt_to_dense
from ttexplore.tt.ttmath import ranks_for_error, truncation_errors
from ttexplore.experiments.compress import unfolding_spectra
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.fit import fit
from ttexplore.runs.models import build_model, save_model
from ttexplore.runs.warmstart import WarmStartError, apply_init_from, file_sha256, read_source, tt_svd_cores

DIGITS = dict(dataset="digits", pad_to=None, batch_size=32, train_limit=256, evals_per_epoch=1)


def random_tt(in_modes, out_modes, ranks, seed=0):
    generator = torch.Generator().manual_seed(seed)
    full = (1, *ranks, 1)
    return [torch.randn(full[k], n, m, full[k + 1], generator=generator, dtype=torch.float64)
            for k, (n, m) in enumerate(zip(in_modes, out_modes))]


@pytest.mark.parametrize("in_modes, out_modes", [((4, 8, 8, 4), (4, 8, 8, 4)), ((2, 3, 4), (5, 2, 3)), ((6, 5), (4, 7))])
def test_tt_svd_is_exact_at_full_rank(in_modes, out_modes):
    weight = torch.randn(torch.Size([int(torch.tensor(out_modes).prod()), int(torch.tensor(in_modes).prod())]),
                         dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cores, error = tt_svd_cores(weight, in_modes, out_modes)
    assert error < 1e-12
    torch.testing.assert_close(tt_to_dense(cores), weight, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ranks", [(2, 3, 2), (1, 5, 3), (4, 4, 4)])
def test_tt_svd_finds_the_tt_ranks_of_a_matrix_that_has_them(ranks):
    in_modes, out_modes = (2, 3, 4, 2), (3, 2, 2, 4)
    weight = tt_to_dense(random_tt(in_modes, out_modes, ranks))
    cores, error = tt_svd_cores(weight, in_modes, out_modes, rel_error=1e-10)
    assert tuple(core.shape[-1] for core in cores[:-1]) == ranks and error < 1e-10
    torch.testing.assert_close(tt_to_dense(cores), weight, rtol=1e-9, atol=1e-9)
    # each unfolding's spectrum drops to zero right after its TT rank
    spectra = unfolding_spectra(weight, in_modes, out_modes)
    for spectrum, rank in zip(spectra, ranks):
        assert spectrum[rank - 1] > 1e-8 * spectrum[0] and (len(spectrum) == rank or spectrum[rank] < 1e-10 * spectrum[0])
    assert ranks_for_error(spectra, 1e-8) == ranks
    # capped below its ranks, the error is what the dropped singular values say (each cut alone)
    _, capped_error = tt_svd_cores(weight, in_modes, out_modes, ranks=(1, 1, 1))
    assert 0.1 < capped_error <= 1.0


def test_tail_errors_are_the_relative_norm_of_what_a_cut_drops():
    assert truncation_errors([4.0, 3.0]) == pytest.approx([1.0, 0.6, 0.0])


def dense_digits_model(tmp_path, epochs=1):
    config = RunConfig.from_dict({**DIGITS, "layer": "dense", "in_modes": None, "out_modes": None, "epochs": epochs})
    result = fit(config)
    return save_model(result.model, config, tmp_path / "dense.pt"), result


def start_config(path, ranks, epochs=0, **changes):
    return RunConfig.from_dict({**DIGITS, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": ranks, "epochs": epochs,
                                "init_from": {"path": str(path), "sha256": file_sha256(path)}, **changes})


def test_tt_svd_at_full_rank_gives_the_dense_networks_outputs(tmp_path):
    path, trained = dense_digits_model(tmp_path)
    config = start_config(path, "max")
    model = build_model(config, torch.Generator().manual_seed(5))
    errors = apply_init_from(model, config)
    assert errors[0] < 1e-6
    images = torch.rand(7, 1, 8, 8)
    torch.testing.assert_close(model(images), trained.model(images), rtol=1e-4, atol=1e-4)
    # a 0-epoch run evaluates the start: its one "epoch" event is the dense network's accuracy
    result = fit(config)
    assert result.status == "completed" and [event["kind"] for event in result.events] == ["epoch"]
    assert result.final_test_accuracy == trained.final_test_accuracy
    assert result.extra["init_errors"][0] < 1e-6


def test_a_low_rank_start_fine_tunes_and_resumes_from_its_checkpoint(tmp_path):
    path, _ = dense_digits_model(tmp_path)
    config = start_config(path, 2, epochs=2)
    result = fit(config)
    assert result.status == "completed" and 0.0 < result.extra["init_errors"][0] < 1.0
    first = fit(config.replace(epochs=0)).final_test_accuracy
    assert result.events[0]["test_accuracy"] == first  # the step-0 point is the TT-SVD network


def test_a_changed_or_missing_weights_file_stops_the_run_with_the_fix(tmp_path):
    path, _ = dense_digits_model(tmp_path)
    config = start_config(path, 2)
    torch.save({"weight": torch.zeros(3, 3)}, path)
    result = fit(config)
    assert result.status == "failed" and "changed since" in result.error
    path.unlink()
    assert "are gone" in fit(config).error


def test_a_state_dict_or_a_bare_tensor_gives_the_hidden_weight_and_head(tmp_path):
    linear, head = nn.Linear(64, 64), nn.Linear(64, 10)
    torch.save({"fc1.weight": linear.weight.data, "fc1.bias": linear.bias.data, "out.weight": head.weight.data,
                "out.bias": head.bias.data}, tmp_path / "sd.pt")
    source = read_source(tmp_path / "sd.pt", in_features=64, classes=10)
    assert source.layers[0].key == "fc1.weight" and torch.equal(source.layers[0].bias, linear.bias.data)
    assert torch.equal(source.head_weight, head.weight.data)
    torch.save(linear.weight.data, tmp_path / "tensor.pt")
    bare = read_source(tmp_path / "tensor.pt", in_features=64, classes=10)
    assert bare.head_weight is None and "random draw" in bare.notes[0]
    torch.save({"a.weight": torch.zeros(64, 64), "b.weight": torch.zeros(32, 64)}, tmp_path / "two.pt")
    with pytest.raises(WarmStartError, match="give the one to use as weight_key") as caught:
        read_source(tmp_path / "two.pt", in_features=64, classes=10)
    assert caught.value.field == "weight_key" and "--" not in str(caught.value)  # neither the CLI's flag nor a label
    assert read_source(tmp_path / "two.pt", "b.weight", 64, 10).layers[0].shape == (32, 64)
    with pytest.raises(WarmStartError, match="no 2-D weight has 100 columns"):
        read_source(tmp_path / "two.pt", in_features=100)


def test_weights_are_read_weights_only(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    torch.save({"weight": Payload()}, tmp_path / "code.pt")
    with pytest.raises(WarmStartError, match="holds objects other than tensors and plain values, so it was not read"):
        read_source(tmp_path / "code.pt")


def test_init_from_is_validated_and_allows_zero_epochs(tmp_path):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"init_from": {"path": "x.pt", "sha256": "abc"}})
    assert caught.value.field == "init_from.sha256"
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"epochs": 0})
    assert caught.value.field == "epochs" and "init_from" in str(caught.value)
    config = RunConfig.from_dict({"epochs": 0, "init_from": {"path": "x.pt", "sha256": "0" * 64, "run": "r1"}})
    assert config.to_dict()["init_from"] == {"path": "x.pt", "sha256": "0" * 64, "run": "r1", "method": "tt-svd"}
    assert config.key() != config.replace(init_from=None, epochs=1).replace(epochs=0 + 1).key()
