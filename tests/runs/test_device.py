"""The device option end to end: RunConfig.device, --device, the device module, training on a device."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ttexplore.cli import main
from ttexplore.nn.device import DeviceUnavailable, available_devices, device_problem, resolve_device
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.fit import fit

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU; this machine has none")
without_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the message for a machine without CUDA; this one has a GPU")

QUICK = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=2, epochs=1, batch_size=32,
             train_limit=256, evals_per_epoch=1)


# ---------------------------------------------------------------- the config field
def test_device_defaults_to_auto_and_old_configs_load_with_their_keys():
    config = RunConfig.from_dict(QUICK)
    assert config.device == "auto"
    old = {key: value for key, value in config.to_dict().items() if key != "device"}
    assert RunConfig.from_dict(old) == config
    # as a run stored before the field was written (the one-layer form of its day)
    old = {"dataset": "digits", "pad_to": None, "layer": "tt", "in_modes": [4, 4, 4], "out_modes": [4, 4, 4], "ranks": 2,
           "hidden": None, "matrix_rank": 4, "epochs": 1, "batch_size": 32, "lr": 3e-3, "optimizer": "adam",
           "momentum": 0.9, "weight_decay": 0.0, "seed": 0, "init": "glorot", "strategy": "auto", "evals_per_epoch": 1,
           "train_limit": 256, "label": ""}
    assert RunConfig.from_dict(old) == config
    # key() hashes what changes the result; the device does not (beyond rounding), so old keys hold
    old_key = hashlib.sha256(json.dumps({k: v for k, v in old.items() if k != "label"}, sort_keys=True).encode())
    assert config.key() == old_key.hexdigest()[:16]
    for device in ("cpu", "cuda", "cuda:1", "mps"):
        other = config.replace(device=device)
        assert other.device == device and other.key() == config.key()
        assert RunConfig.from_dict(json.loads(other.to_json())) == other


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", "", 3])
def test_an_unknown_device_name_is_refused_naming_the_field(device):
    with pytest.raises(ConfigError, match="device .* is unknown: use one of auto, cpu, cuda, cuda:N, mps") as error:
        RunConfig.from_dict({**QUICK, "device": device})
    assert error.value.field == "device"


# ---------------------------------------------------------------- the device module
def test_auto_resolves_to_cuda_when_there_is_one_else_the_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", 0) if HAS_CUDA else torch.device("cpu"))
    choices = available_devices()
    assert [choice.name for choice in choices[:2]] == ["auto", "cpu"]
    assert choices[0].label.startswith("auto → ")
    assert all(choice.label.startswith(choice.name) for choice in choices[1:])
    if not HAS_CUDA:
        assert "no CUDA GPU found" in choices[0].label


@without_cuda
def test_an_absent_device_says_what_to_use():
    assert device_problem("cuda", "--device ") == "no CUDA device on this machine: use --device cpu or auto"
    with pytest.raises(DeviceUnavailable, match="no CUDA device on this machine: use device cpu or auto"):
        resolve_device("cuda:0")
    if not torch.backends.mps.is_available():
        assert device_problem("mps") == "no Apple MPS device on this machine: use device cpu or auto"


@needs_cuda
def test_a_cuda_index_past_the_last_gpu_names_the_ones_there_are():
    count = torch.cuda.device_count()
    problem = device_problem(f"cuda:{count}", "--device ")
    assert problem is not None and f"this machine has {count} CUDA device" in problem and f"cuda:{count - 1}" in problem


# ---------------------------------------------------------------- the command line
@without_cuda
def test_train_with_an_absent_device_is_one_line_before_any_data(capsys):
    assert main(["train", "--dataset", "digits", "--device", "cuda"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "ttexplore train: error: --device cuda: no CUDA device on this machine: use --device cpu or auto"


def test_train_with_an_unknown_device_name_names_the_flag(capsys):
    assert main(["train", "--dataset", "digits", "--device", "gpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--device" in error and "cuda:N" in error


def test_train_on_the_cpu_reports_where_it_trained(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert main(["train", "--dataset", "digits", "--in-modes", "4x4x4", "--out-modes", "4x4x4", "--epochs", "1",
                 "--train-limit", "128", "--device", "cpu", "--json", str(out), "--quiet"]) == 0
    summary = json.loads(out.read_text())
    assert summary["device"] == "cpu" and summary["config"]["device"] == "cpu"


# ---------------------------------------------------------------- training
def test_fit_on_auto_trains_where_auto_resolves():
    result = fit(RunConfig.from_dict(QUICK))
    assert result.status == "completed" and result.extra["device"] == str(resolve_device("auto"))
    assert all(parameter.device == resolve_device("auto") for parameter in result.model.parameters())


@without_cuda
def test_fit_on_an_absent_device_fails_with_the_fix():
    result = fit(RunConfig.from_dict({**QUICK, "device": "cuda"}))
    assert result.status == "failed" and result.error == ("device cuda: no CUDA device on this machine: "
                                                          "use device cpu or auto")


@needs_cuda
def test_fit_on_cuda_matches_the_cpu_run_and_checkpoints_on_the_cpu():
    states = []
    on_gpu = fit(RunConfig.from_dict({**QUICK, "device": "cuda"}), on_epoch_end=states.append)
    on_cpu = fit(RunConfig.from_dict({**QUICK, "device": "cpu"}))
    assert on_gpu.status == "completed" and on_gpu.extra["device"] == "cuda:0"
    assert all(parameter.device.type == "cuda" for parameter in on_gpu.model.parameters())
    # the same seed draws the same weights and batches on both; only rounding differs
    for gpu_event, cpu_event in zip(on_gpu.events, on_cpu.events):
        assert gpu_event["test_loss"] == pytest.approx(cpu_event["test_loss"], rel=1e-3)
    tensors = [value for value in states[-1].model_state.values()]
    assert tensors and all(tensor.device.type == "cpu" for tensor in tensors)
