"""Inside the TT cores: the per-core norms recorded at every metric event (checked against numpy on the live
model, carried through the store, and continuing across a resume without a gap or a duplicate), and the
spectra of the trained layers kept at the end (checked against numpy SVDs of the dense unfoldings)."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
import torch

from ttexplore.nn.layers import TTLinear
from ttexplore.runs import corestats, fit as fit_module, lifecycle
from ttexplore.runs.config import RunConfig
from ttexplore.runs.data import load_dataset
from ttexplore.runs.store import RunStore

#: A tiny network on the 8x8 digits: two TT layers around a dense one (the dense one has no cores to record).
LAYERS = ["tt:4x4x4->4x2x4:3,5", "dense:24", "tt:4x6->2x4:3"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return load_dataset("digits", str(tmp_path_factory.mktemp("data")))


def tiny(**values) -> RunConfig:
    return RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": LAYERS, "epochs": 2, "train_limit": 256,
                                "batch_size": 64, "evals_per_epoch": 4, "seed": 3, **values})


def numpy_norm(tensor: torch.Tensor) -> float:
    return float(np.sqrt(np.sum(tensor.detach().numpy().astype(np.float64) ** 2)))


def test_recorded_norms_are_those_of_the_cores_and_their_gradients_at_each_event(digits, monkeypatch):
    built = []
    original = fit_module.build_model
    monkeypatch.setattr(fit_module, "build_model", lambda *args, **kwargs: built.append(original(*args, **kwargs)) or built[-1])
    seen = []

    def check(event):
        # at the moment the event is emitted, the model holds exactly the state the event describes
        model = built[-1]
        cores = {0: model.hidden.cores, 2: model.hidden_3.cores}
        expected = [{"layer": index, "weight": [numpy_norm(core) for core in layer_cores],
                     "grad": None if layer_cores[0].grad is None else [numpy_norm(core.grad) for core in layer_cores]}
                    for index, layer_cores in cores.items()]
        seen.append((event, expected))

    result = fit_module.fit(tiny(), digits, callback=check)
    assert result.status == "completed"
    assert len(seen) == 1 + 2 * 4  # the untrained point, then four per epoch
    for event, expected in seen:
        recorded = event["cores"]
        assert [item["layer"] for item in recorded] == [0, 2], "the dense layer has no cores"
        for item, truth in zip(recorded, expected):
            assert np.allclose(item["weight"], truth["weight"], rtol=1e-5)
            if event["step"] == 0:
                assert item["grad"] is None and truth["grad"] is None, "no gradient before the first step"
            else:
                assert np.allclose(item["grad"], truth["grad"], rtol=1e-5)
                assert all(value > 0 for value in item["grad"])
    # the norms move as the cores train
    assert seen[0][0]["cores"][0]["weight"] != seen[-1][0]["cores"][0]["weight"]


def test_a_network_without_tt_layers_records_no_core_norms(digits):
    result = fit_module.fit(tiny(layers=["dense:24"], epochs=1), digits)
    assert all("cores" not in event for event in result.events)


def test_the_store_keeps_each_events_norms_and_a_resumed_run_continues_them_without_gap_or_duplicate(tmp_path, digits):
    store = RunStore(tmp_path / "runs.db")
    config = tiny(train_limit=128)  # two steps per epoch: points at epochs 0, 0.5, 1, 1.5, 2
    whole = store.create_run(config)
    lifecycle.execute(store, whole, dataset=digits)
    cut = store.create_run(config)
    stop = lifecycle.StopFlags.new(store, cut)
    # interrupted in the middle of epoch 2: the events of that half epoch are dropped and redone on resume
    lifecycle.execute(store, cut, stop=stop, dataset=digits,
                      on_event=lambda event: stop.interrupt.set() if event["epoch"] >= 1.5 else None)
    assert store.get_run(cut)["status"] == "interrupted"
    assert max(event["epoch"] for event in store.metrics(cut)) == 1.5
    lifecycle.execute(store, cut, dataset=digits)
    assert store.get_run(cut)["status"] == "completed"
    expected, resumed = store.metrics(whole), store.metrics(cut)
    assert [event["epoch"] for event in resumed] == [event["epoch"] for event in expected]
    assert len({event["epoch"] for event in resumed}) == len(resumed), "no point twice"
    assert [event["cores"] for event in resumed] == [event["cores"] for event in expected], \
        "the resumed run's norms continue exactly as the uninterrupted run's (same threads, same seed)"


def test_an_older_store_gains_the_cores_column_and_keeps_its_events(tmp_path):
    path = tmp_path / "old.db"
    store = RunStore(path)
    run_id = store.create_run(tiny())
    store.add_event(run_id, {"kind": "eval", "epoch": 0.0, "step": 0, "test_accuracy": 0.1})
    with sqlite3.connect(path) as connection:  # as a store written before the column existed
        connection.execute("ALTER TABLE metrics DROP COLUMN cores")
    reopened = RunStore(path)
    assert reopened.metrics(run_id)[0]["cores"] is None
    reopened.add_event(run_id, {"kind": "eval", "epoch": 0.5, "step": 3, "cores": [{"layer": 0, "weight": [1.0], "grad": [2.0]}]})
    assert reopened.metrics(run_id)[1]["cores"] == [{"layer": 0, "weight": [1.0], "grad": [2.0]}]
    assert reopened.metrics_for([run_id])[run_id][1]["cores"][0]["grad"] == [2.0]


def dense_unfolding_spectra(weight: np.ndarray, in_modes, out_modes) -> list[np.ndarray]:
    """numpy SVDs of the TT unfoldings of W (M, N): W as (m_1..m_d, n_1..n_d), modes paired (n_k, m_k)."""
    d = len(in_modes)
    tensor = weight.reshape(*out_modes, *in_modes)
    paired = tensor.transpose([axis for k in range(d) for axis in (d + k, k)])
    spectra = []
    for k in range(1, d):
        rows = int(np.prod([in_modes[j] * out_modes[j] for j in range(k)]))
        spectra.append(np.linalg.svd(paired.reshape(rows, -1), compute_uv=False))
    return spectra


def numpy_ranks_for_error(spectrum: np.ndarray, tolerance: float, boundaries: int) -> int:
    total = math.sqrt(float(np.sum(spectrum ** 2)))
    for rank in range(1, len(spectrum) + 1):
        if math.sqrt(float(np.sum(spectrum[rank:] ** 2))) <= tolerance * total / math.sqrt(boundaries):
            return rank
    return len(spectrum)


def test_the_kept_spectra_are_numpys_svds_of_the_dense_unfoldings_of_the_trained_w(tmp_path, digits):
    store = RunStore(tmp_path / "runs.db")
    config = tiny()
    run_id = store.create_run(config)
    result = lifecycle.execute(store, run_id, dataset=digits)
    record = corestats.read_spectra(store, run_id)
    assert record is not None and record["source"] == "final weights"
    assert json.loads(store.spectra_path_for(run_id).read_text()) == record
    assert [layer["layer"] for layer in record["layers"]] == [0, 2]
    layers = {0: result.model.hidden, 2: result.model.hidden_3}
    for kept in record["layers"]:
        module = layers[kept["layer"]]
        weight = module.to_dense().detach().double().numpy()
        truth = dense_unfolding_spectra(weight, module.in_modes, module.out_modes)
        assert kept["ranks"] == list(module.ranks)
        for k, (values, exact) in enumerate(zip(kept["singular_values"], truth)):
            rank = kept["ranks"][k]
            assert len(values) == rank
            assert np.allclose(values, exact[:rank], rtol=1e-4, atol=1e-6 * exact[0])
            assert np.all(exact[rank:] <= 1e-4 * exact[0]), "the unfolding has no more than r_k nonzero values"
        for tolerance in (0.1, 0.01, 0.001):
            expected = [numpy_ranks_for_error(exact[:len(values)], tolerance, len(truth))
                        for values, exact in zip(kept["singular_values"], truth)]
            assert kept["effective_ranks"][f"{tolerance:g}"] == expected


def test_a_network_without_tt_layers_keeps_no_spectra_and_deleting_a_run_removes_them(tmp_path, digits):
    store = RunStore(tmp_path / "runs.db")
    dense = store.create_run(tiny(layers=["dense:24"], epochs=1))
    lifecycle.execute(store, dense, dataset=digits)
    assert not store.spectra_path_for(dense).exists()
    tt = store.create_run(tiny(epochs=1))
    lifecycle.execute(store, tt, dataset=digits)
    assert store.spectra_path_for(tt).is_file()
    store.delete_runs([tt])
    assert not store.spectra_path_for(tt).exists()


def designed_layer(spectrum, in_modes=(4, 4), out_modes=(4, 4)) -> TTLinear:
    """A two-core TT layer whose one unfolding has exactly the singular values ``spectrum``:
    G_1 = U (orthonormal columns), G_2 = diag(spectrum) V^T (orthonormal rows)."""
    from ttexplore.nn.ttmatrix import TTMatrix

    rank = len(spectrum)
    generator = torch.Generator().manual_seed(len(spectrum))
    left = torch.linalg.qr(torch.randn(in_modes[0] * out_modes[0], rank, generator=generator, dtype=torch.float64))[0]
    right = torch.linalg.qr(torch.randn(in_modes[1] * out_modes[1], rank, generator=generator, dtype=torch.float64))[0]
    first = left.reshape(1, in_modes[0], out_modes[0], rank)
    second = (torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ right.T).reshape(rank, in_modes[1], out_modes[1], 1)
    return TTLinear.from_tt(TTMatrix([first, second]))


@pytest.mark.parametrize(("spectrum", "verdict"), [
    ([1.0, 0.8, 0.6, 0.5], "saturated"),        # still half of the first at the last value kept
    ([1.0, 1e-4, 1e-5, 1e-6], "wasted"),        # one value keeps W within 1e-2
    ([1.0 - index / 32 for index in range(16)], "full"),  # 16 is the maximal useful rank of 4x4 -> 4x4
    ([1.0, 0.3, 0.05], "fits"),                 # decays below 0.1, yet every value is needed at 1e-2
])
def test_saturated_and_wasted_verdicts_on_constructed_cores(spectrum, verdict):
    from ttexplore.presenters import cores

    layer = designed_layer(spectrum)
    record = corestats.layer_spectra([(0, layer)])[0]
    assert np.allclose(record["singular_values"][0], spectrum, rtol=1e-9)
    rows = cores.boundary_verdicts(record)
    assert [row["verdict"] for row in rows] == [verdict]
    words = cores.verdict_markdown(record)
    if verdict in ("saturated", "wasted"):
        assert f"r1 is {verdict}" in words
    else:
        assert "No boundary is saturated or wasted" in words


def test_tt_convolutions_are_followed_like_tt_layers():
    """A CNN's TT convolution (``ttconv``) and 4-D TT convolution (``tt4d``) keep their cores as a ``cores`` list:
    their norms are recorded and their spectra are numpy's SVDs of the unfoldings of the kernel, laid out as the
    TT-conv matrix ``(C_out, (kh kw, C_in))`` and as the one-row ``(C_out, C_in, kh, kw)`` tensor; the conv, pool
    and dense layers have no cores to record."""
    from ttexplore.nn.tt4d import TT4dConv2d
    from ttexplore.nn.ttconv import TTConv2d
    from ttexplore.runs.models import build_model

    torch.manual_seed(0)
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "seed": 1,
                                  "layers": ["conv:8:3", "ttconv:2x4->2x2x4:3:3", "pool:2", "tt4d:8:2,3,2:3", "dense:16"]})
    model = build_model(config)
    layers = corestats.tt_layer_modules(model, config)
    assert [(index, type(module)) for index, module in layers] == [(1, TTConv2d), (3, TT4dConv2d)]
    norms = corestats.core_norms(layers)
    for record, (_, module) in zip(norms, layers):
        assert record["weight"] == pytest.approx([numpy_norm(core) for core in module.cores], rel=1e-6)
        assert record["grad"] is None  # no backward yet
    conv, tt4d = (module for _, module in layers)
    kernel = conv.to_dense().detach().double().numpy()  # (C_out, C_in, kh, kw)
    c_out, c_in, kh, kw = kernel.shape
    matrices = {1: (kernel.transpose(0, 2, 3, 1).reshape(c_out, kh * kw * c_in), (kh * kw, *conv.in_modes), (1, *conv.out_modes))}
    kernel = tt4d.to_dense().detach().double().numpy()
    matrices[3] = (kernel.reshape(1, -1), kernel.shape, (1,) * 4)
    for kept in corestats.layer_spectra(layers):
        weight, in_modes, out_modes = matrices[kept["layer"]]
        assert kept["in_modes"] == list(in_modes) and kept["out_modes"] == list(out_modes)
        truth = dense_unfolding_spectra(weight, in_modes, out_modes)
        for values, exact, rank in zip(kept["singular_values"], truth, kept["ranks"]):
            assert len(values) == rank
            assert np.allclose(values, exact[:rank], rtol=1e-4, atol=1e-6 * exact[0])
