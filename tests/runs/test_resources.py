"""The memory guard: estimates, the budget, and refusals before anything is allocated."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ttexplore.tt import memory
from ttexplore.runs import resources
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import DenseLayerSpec
from ttexplore.runs.resources import (
    ENV_LIMIT,
    MemoryEstimate,
    ResourceError,
    available_memory,
    check_bytes,
    check_run_memory,
    estimate_run_memory,
    memory_budget,
    parse_size,
)

GIB = 1 << 30
BUDGET = 8 * GIB


def huge(layer: str, **values) -> RunConfig:
    """An 8x8 -> 100000x100000 layer on the 8x8 digits (64 -> 10**10)."""
    return RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layer": layer, "in_modes": "8x8",
                                "out_modes": "100000x100000", **values})


def test_the_module_is_pure_python():
    code = ("import sys\nfrom ttexplore.runs.config import RunConfig\nfrom ttexplore.runs import resources\n"
            "resources.estimate_run_memory(RunConfig())\nresources.memory_budget()\nassert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_papers_dense_layer_is_priced_at_its_parameter_bytes():
    config = RunConfig.from_dict({"dataset": "mnist5k", "layer": "dense"})  # 1024 -> 1024 after padding
    estimate = estimate_run_memory(config)
    true_bytes = (1024 * 1024 + 1024) * 4
    assert estimate.hidden_weights == true_bytes
    assert estimate.gradients >= true_bytes and estimate.optimizer_state == 2 * estimate.gradients  # Adam: two moments
    # weights, gradients, two moments, Adam's scratch, the data and the batches: a few times the weights, not 100x
    assert 4 * true_bytes < estimate.total < 20 * true_bytes
    assert estimate.total == estimate.static + max(estimate.step, estimate.optimizer_scratch, estimate.evaluation)
    assert sum(estimate.parts().values()) >= estimate.total


def test_optimizer_state_follows_the_optimizer():
    dense = (DenseLayerSpec(1024),)
    adam = estimate_run_memory(RunConfig(layers=dense))
    sgd = estimate_run_memory(RunConfig(layers=dense, optimizer="sgd"))
    plain = estimate_run_memory(RunConfig(layers=dense, optimizer="sgd", momentum=0.0))
    assert adam.optimizer_state == 2 * sgd.optimizer_state and plain.optimizer_state == 0
    assert sgd.optimizer_scratch == 0 < adam.optimizer_scratch


def test_activations_grow_with_the_batch_and_use_the_cost_model_for_tt():
    from ttexplore import costmodel

    small, large = (estimate_run_memory(RunConfig(batch_size=size)) for size in (64, 4096))
    assert large.activations > 8 * small.activations and large.input_batch == 64 * small.input_batch
    assert small.hidden_weights == (2176 + 1024) * 4  # the paper's TT layer, cores and bias
    costs = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, 64, 4, training=True, input_grad=False)
    chosen = costs[costmodel.best_strategy(costs)]
    around_the_layer = 4 * 64 * (4 * 1024 + 3 * 10)  # hidden and ReLU outputs, their gradients, logits
    assert small.activations == chosen["saved_bytes"] + chosen["peak_bytes"] + around_the_layer


@pytest.mark.parametrize("layer, values", [("dense", {}), ("matrix_rank", {"matrix_rank": 64})])
def test_huge_dense_and_matrix_rank_layers_are_refused(layer, values):
    config = huge(layer, **values)
    with pytest.raises(ResourceError) as error:
        check_run_memory(config, BUDGET)
    message = str(error.value)
    assert error.value.field == "memory" and isinstance(error.value, ConfigError)
    assert "8.0 GiB" in message and "TiB" in message and ENV_LIMIT in message
    assert "out_modes" in message or "narrower hidden layer" in message  # the fix: a narrower hidden layer


def test_the_tt_form_of_the_huge_layer_has_small_weights_but_a_huge_hidden_width():
    tt, dense = estimate_run_memory(huge("tt")), estimate_run_memory(huge("dense"))
    cores = (8 * 100_000 * 4 + 4 * 8 * 100_000) * 4
    assert tt.hidden_weights == cores + 10**10 * 4  # the cores, plus the bias of 10**10 outputs
    assert dense.hidden_weights == (64 * 10**10 + 10**10) * 4  # 2.6 TB
    with pytest.raises(ResourceError, match="10,000,000,000 units wide"):
        check_run_memory(huge("tt"), BUDGET)  # 10**10 hidden units are too wide to train, whatever the layer


def test_a_small_tt_net_passes():
    assert check_run_memory(RunConfig(), BUDGET).total < 256 << 20
    assert check_run_memory(RunConfig.for_dataset("digits", in_modes="4x4x4", out_modes="4x4x4"), BUDGET).total < 64 << 20


def test_a_big_batch_is_told_to_shrink():
    config = RunConfig.from_dict({"dataset": "mnist5k", "in_modes": "32x32", "out_modes": "64x64", "ranks": "max",
                                  "batch_size": 65536})
    with pytest.raises(ResourceError, match="lower batch_size \\(now 65536\\)"):
        check_run_memory(config, GIB)


@pytest.mark.parametrize("text, size", [("8G", 8 * GIB), ("512M", 512 << 20), ("1.5GiB", 3 * GIB // 2), ("8 gb", 8 * GIB),
                                        ("2t", 2 << 40), ("4000000000", 4_000_000_000), (" 64MiB ", 64 << 20)])
def test_sizes_are_read_in_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["abc", "8X", "-1G", "1e9", "8 Gi", "", "0", "100", "1.5.2G"])
def test_a_bad_limit_is_a_clear_error(text, monkeypatch):
    monkeypatch.setenv(ENV_LIMIT, text)
    if not text.strip():
        assert memory_budget() > 0  # empty means unset
        return
    with pytest.raises(ResourceError) as error:
        memory_budget()
    assert ENV_LIMIT in str(error.value) and error.value.field == "memory"


def test_the_limit_overrides_and_the_default_is_half_of_what_is_available(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_LIMIT, "3G")
    assert memory_budget() == 3 * GIB
    monkeypatch.delenv(ENV_LIMIT)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   16000000 kB\n")
    assert available_memory(meminfo) in (16_000_000 * 1024, min(16_000_000 * 1024, memory._cgroup_room() or 1 << 62))
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * GIB)
    assert memory_budget() == 5 * GIB
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert memory_budget() == memory.FALLBACK_BUDGET


def test_without_proc_meminfo_a_portable_source_answers(tmp_path):
    assert (available_memory(tmp_path / "missing") or 0) > 0


def test_check_bytes_names_what_would_be_allocated():
    check_bytes(1 << 20, "weights in model.pt", BUDGET)
    with pytest.raises(ResourceError, match="weights in model.pt needs 16.0 GiB"):
        check_bytes(16 * GIB, "weights in model.pt", BUDGET)


def test_estimate_is_a_frozen_breakdown():
    estimate = estimate_run_memory(RunConfig())
    assert isinstance(estimate, MemoryEstimate) and set(estimate.parts()) >= {
        "hidden_weights", "gradients", "optimizer_state", "head", "activations", "input_batch", "evaluation", "dataset"}
    assert "about" in estimate.describe()
