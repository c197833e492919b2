"""TTLinear.load refuses every bad file with one clear error naming it, before anything is allocated."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from ttexplore.nn import layers
from ttexplore.nn.layers import TTLinear
from ttexplore.nn.weightfile import WeightsFileError
from ttexplore.runs.resources import ResourceError


class RunsCode:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def saved(tmp_path):
    layer = TTLinear((4, 4), (2, 8), ranks=3)
    path = tmp_path / "layer.pt"
    layer.save(path)
    return layer, path


@pytest.fixture
def no_build(monkeypatch):
    """Fail if a TTLinear is constructed (the checks must refuse the file first)."""

    def forbidden(self, *args, **kwargs):
        raise AssertionError("a TTLinear was built before the file was checked")

    monkeypatch.setattr(layers.TTLinear, "__init__", forbidden)


def write_layer_file(path, spec, state, fmt="ttexplore.TTLinear/1"):
    torch.save({"format": fmt, "spec": spec, "state_dict": state}, path)
    return path


def good_spec(**changes):
    return {"in_modes": [4, 4], "out_modes": [2, 8], "ranks": [3], "bias": True, "init": "glorot", "strategy": "auto", **changes}


def test_a_saved_layer_still_loads(saved):
    layer, path = saved
    loaded = TTLinear.load(path)
    assert torch.equal(loaded.to_dense(), layer.to_dense()) and loaded.ranks == (3,)


def test_an_empty_file(tmp_path, no_build):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(WeightsFileError, match=f"{path} is empty"):
        TTLinear.load(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, -10, 100])
def test_a_truncated_file(saved, tmp_path, keep, no_build):
    _, path = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep])
    with pytest.raises(WeightsFileError, match=f"{cut} could not be read as a torch weights file .*truncated or damaged"):
        TTLinear.load(cut)


@pytest.mark.parametrize("content", [b"hello world\n", b"\x80\x04K\x01.", b"PK\x03\x04not really a zip"])
def test_files_that_are_not_torch_archives(tmp_path, content, no_build):
    path = tmp_path / "other.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=str(path)):
        TTLinear.load(path)


def test_an_old_style_torch_file_is_named_not_a_zip_archive(tmp_path, no_build):
    path = tmp_path / "legacy.pt"
    with open(path, "wb") as handle:
        torch.save({"a": torch.zeros(3)}, handle, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsFileError, match="not a torch zip archive"):
        TTLinear.load(path)


def test_a_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path, no_build):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:  # what torch.save writes, with a malicious data.pkl
        archive.writestr("evil/data.pkl", pickle.dumps({"format": "ttexplore.TTLinear/1", "spec": RunsCode(marker)}, protocol=2))
        archive.writestr("evil/byteorder", "little")
        archive.writestr("evil/version", "3\n")
    with pytest.raises(WeightsFileError, match="holds objects other than tensors.*never code"):
        TTLinear.load(path)
    assert not marker.exists()


def test_a_torch_file_that_is_not_from_ttexplore(tmp_path, no_build):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(4, 4)}, path)
    with pytest.raises(WeightsFileError, match="not a TTLinear or model file"):
        TTLinear.load(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsFileError, match="holds a list"):
        TTLinear.load(path)


def test_a_crafted_huge_spec_with_tiny_tensors_is_refused_without_allocating(tmp_path, no_build):
    spec = good_spec(in_modes=[200000, 200000], out_modes=[200000, 200000], ranks=[1], bias=False)  # 2 x 160 GB cores
    state = {"cores.0": torch.zeros(1, 2, 2, 1), "cores.1": torch.zeros(1, 2, 2, 1)}
    path = write_layer_file(tmp_path / "huge.pt", spec, state)
    with pytest.raises(WeightsFileError, match=r"cores.0 has shape \(1, 2, 2, 1\), but the TT layer spec in the file implies \(1, 200000, 200000, 1\)"):
        TTLinear.load(path)


def test_a_consistent_layer_over_the_budget_is_a_resource_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "1M")
    path = tmp_path / "layer.pt"
    TTLinear((512, 512), (4, 256), ranks=1).save(path)  # 2048 + 131072 core weights and 1024 bias: 0.5 MiB
    TTLinear.load(path)
    TTLinear((1024, 1024), (1, 256), ranks=1).save(path)  # 1024 + 262144 core weights and 256 bias: just over 1 MiB
    with pytest.raises(ResourceError, match=f"the TT layer in {path} needs 1.0 MiB of memory, more than the budget of 1.0 MiB"):
        TTLinear.load(path)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("not a dict", "no TT spec"),
        (good_spec(extra=1), "keys"),
        (good_spec(in_modes="abc"), "in_modes 'abc' is not a shape"),
        (good_spec(in_modes=[2] * 64, out_modes=[2] * 64, ranks=[1] * 63), "64 modes"),
        (good_spec(in_modes=[4.5, 4]), "4.5 is not a whole number"),
        (good_spec(out_modes=[10**20, 1]), "more than the 2\\^40"),
        (good_spec(ranks=[3, 3]), "internal ranks"),
        (good_spec(ranks=[0]), "below 1"),
        (good_spec(ranks=[True]), "not a whole number"),
        (good_spec(bias="yes"), "bias"),
        (good_spec(init="zeros"), "init 'zeros'"),
        (good_spec(strategy=["auto"]), "strategy"),
        (good_spec(strategy="fastest"), "strategy 'fastest' is unknown"),
    ],
)
def test_a_bad_spec_is_named(tmp_path, spec, message, no_build):
    path = write_layer_file(tmp_path / "spec.pt", spec, {"cores.0": torch.zeros(1, 4, 2, 3)})
    with pytest.raises(WeightsFileError, match=message) as error:
        TTLinear.load(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "state, message",
    [
        ("weights", "no state dict"),
        ({"cores.0": torch.zeros(1, 4, 2, 3)}, "missing cores.1, bias"),
        ({"cores.0": torch.zeros(1, 4, 2, 3), "cores.1": torch.zeros(3, 4, 8, 1), "bias": torch.zeros(16), "x": torch.zeros(1)},
         "unexpected 'x'"),
        ({"cores.0": torch.zeros(1, 4, 2, 3, dtype=torch.int64), "cores.1": torch.zeros(3, 4, 8, 1), "bias": torch.zeros(16)},
         "torch.int64 values"),
        ({"cores.0": [[0.0]], "cores.1": torch.zeros(3, 4, 8, 1), "bias": torch.zeros(16)}, "cores.0 is a list"),
        ({"cores.0": torch.zeros(1, 4, 2, 3), "cores.1": torch.zeros(3, 4, 8, 1), "bias": torch.zeros(17)}, "bias has shape"),
    ],
)
def test_bad_tensors_are_named(tmp_path, state, message, no_build):
    path = write_layer_file(tmp_path / "state.pt", good_spec(), state)
    with pytest.raises(WeightsFileError, match=message):
        TTLinear.load(path)


def test_a_missing_file_is_the_usual_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        TTLinear.load(tmp_path / "nope.pt")


def test_torchs_own_words_never_reach_the_message(tmp_path):
    """A pickled object, a bare pickle and text are refused in ttexplore's words: no ANSI codes, no mmap text."""
    import pickle

    from ttexplore.nn.weightfile import read_tensors

    class Code:
        def __reduce__(self):
            return (print, ("this would run",))

    cases = {"code.pt": None, "pickle.pt": pickle.dumps({"w": [1.0]}), "text.pt": b"hello\n"}
    torch.save({"weight": Code()}, tmp_path / "code.pt")
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(WeightsFileError) as caught:
            read_tensors(tmp_path / name, "do this")
        message = str(caught.value)
        assert message.endswith("do this") and "\x1b" not in message and "mmap" not in message, message
        assert "\n" not in message
