"""TT-rounding during training: the function stays within the rounding's bound, the optimizer state of the
new cores starts afresh (and the others' is kept), a schedule resumes bit for bit across an interruption
before or after a rounding, model files and checkpoints keep the rounded ranks, and runs start from a
trained TT run's rounded cores (Round and continue, compressing a TT run)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ttexplore.nn.layers import TTLinear
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.fit import fit
from ttexplore.runs.lifecycle import StopFlags, check_resumable, execute, load_checkpoint
from ttexplore.runs.models import build_model, layer_ranks, load_model, save_model
from ttexplore.runs.rounding import carry_optimizer_state, round_network, rounded_layers
from ttexplore.runs.schedule import RoundStep, rounding_changes
from ttexplore.runs.store import RunStore
from ttexplore.runs.warmstart import continue_config

SMALL = dict(dataset="digits", pad_to=None, in_modes="4x4x4", out_modes="4x4x4", ranks=8, epochs=4, batch_size=32,
             train_limit=320, evals_per_epoch=2, round_to="4@2")


def small(**changes) -> RunConfig:
    return RunConfig.from_dict({**SMALL, **changes})


def dense64(layer: TTLinear) -> torch.Tensor:
    """W in float64 from the cores, by an einsum over every index (independent of the library's kernels)."""
    cores = [core.detach().double() for core in layer.cores]
    tensor = cores[0][0]  # (n1, m1, r1)
    for core in cores[1:]:  # (n..., m..., r) x (r, n, m, r') -> (n..., m..., n, m, r')
        tensor = torch.tensordot(tensor, core, dims=([tensor.dim() - 1], [0]))
    tensor = tensor[..., 0]  # (n1, m1, n2, m2, ..., nd, md)
    d = len(cores)
    tensor = tensor.permute(*[2 * k + 1 for k in range(d)], *[2 * k for k in range(d)])  # (m1..md, n1..nd)
    return tensor.reshape(math.prod(layer.out_modes), math.prod(layer.in_modes))


# ---------------------------------------------------------------- the function
def test_rounding_keeps_the_network_within_the_bound_on_a_batch():
    """For the TT layer, ||x (W - W')^T||_F <= ||x||_F ||W - W'||_2 <= ||x||_F err ||W||_F; the ReLU is
    1-Lipschitz and the head multiplies by at most ||head.W||_2: the logits move no more than that."""
    torch.manual_seed(0)
    config = small(in_modes="4x4x4", ranks=8, round_to=None)
    model = build_model(config, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():  # a spread spectrum (a fresh draw has one too), and a bias that matters
        for core in model.hidden.cores:
            core.add_(0.3 * torch.randn_like(core))
        model.hidden.bias.normal_()
    images = torch.randn(50, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():  # only values are compared
        before = model(images)
        weight = dense64(model.hidden)
        features = model.flatten(images)
        rounding = round_network(model, config, RoundStep(epoch=1, rank=2))
        after = model(images)
        rounded = dense64(model.hidden)
    assert [layer.ranks_after for layer in rounding.layers] == [(2, 2)]
    error = float(torch.linalg.matrix_norm(weight - rounded)) / float(torch.linalg.matrix_norm(weight))
    assert rounding.layers[0].rel_error == pytest.approx(error, rel=1e-6)  # the error it reports is the error it made
    assert 0.05 < error < 1
    head = float(torch.linalg.matrix_norm(model.head.weight.detach(), ord=2))
    change = float(torch.linalg.matrix_norm(after - before))
    spectral = float(torch.linalg.matrix_norm(weight - rounded, ord=2))
    assert change <= head * float(torch.linalg.matrix_norm(features)) * spectral * (1 + 1e-9)
    assert change <= head * float(torch.linalg.matrix_norm(features)) * error * float(torch.linalg.matrix_norm(weight)) * (1 + 1e-9)
    assert change > 0


def test_rounded_layer_is_the_tt_matrix_rounded_with_its_bias_and_new_parameters():
    layer = TTLinear((4, 4, 4), (2, 4, 4), ranks=6, bias=True, init="he")
    with torch.no_grad():
        layer.bias.normal_()
    smaller = layer.rounded(max_rank=3)
    expected = layer.tt_matrix().round(max_rank=3)
    assert smaller.ranks == expected.ranks == (3, 3)
    assert all(torch.equal(core, other) for core, other in zip(smaller.cores, expected.cores))
    assert torch.equal(smaller.bias, layer.bias) and smaller.bias is not layer.bias
    assert smaller.init == "he" and smaller.approximation_error == expected.approximation_error
    assert not {id(parameter) for parameter in smaller.parameters()} & {id(parameter) for parameter in layer.parameters()}


def test_a_rank_that_binds_no_boundary_leaves_the_layer_and_its_cores_alone():
    config = small(ranks=4, round_to=None)
    model = build_model(config)
    cores = list(model.hidden.cores)
    (rounding,) = rounded_layers(model, config, max_rank=8)
    assert not rounding.changed and rounding.module is None and rounding.rel_error == 0.0
    assert list(model.hidden.cores) == cores


# ---------------------------------------------------------------- the optimizer
def test_adam_state_is_fresh_for_the_new_cores_and_kept_for_the_rest():
    config = small(round_to=None)
    model = build_model(config, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    head_state = optimizer.state[model.head.weight]
    round_network(model, config, RoundStep(epoch=1, rank=2))
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    assert carry_optimizer_state(optimizer, fresh) == 2  # the head's weight and bias
    assert fresh.state[model.head.weight] is head_state
    assert all(parameter not in fresh.state for parameter in model.hidden.parameters())
    optimizer = fresh
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
    assert float(optimizer.state[model.head.weight]["step"]) == 4
    assert all(float(optimizer.state[core]["step"]) == 1 for core in model.hidden.cores)


def test_in_a_run_the_new_cores_count_their_steps_from_the_rounding():
    config = small(epochs=3, round_to="2@1")
    states = []
    result = fit(config, on_epoch_end=states.append)
    assert result.status == "completed"
    steps = 10  # 320 images, batches of 32
    after = states[-1]  # epoch 3: two epochs since the rounding after epoch 1
    parameters = [name for name, _ in build_model(config, layer_ranks=after.layer_ranks).named_parameters()]
    by_name = dict(zip(parameters, (after.optimizer_state["state"][index] for index in range(len(parameters)))))
    assert float(by_name["head.weight"]["step"]) == 3 * steps
    assert all(float(by_name[f"hidden.cores.{k}"]["step"]) == 2 * steps for k in range(3))
    assert after.layer_ranks == {"hidden": [2, 2]}


# ---------------------------------------------------------------- resume across a rounding
class StopAfterEpoch:
    """A fit wrapper that interrupts the run once ``epochs`` epochs are checkpointed."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.stop = StopFlags.new()

    def __call__(self, config, dataset=None, on_epoch_end=None, **kwargs):
        def checkpoint_then_maybe_stop(state):
            on_epoch_end(state)
            if state.epochs_done >= self.epochs:
                self.stop.interrupt.set()

        return fit(config, dataset, on_epoch_end=checkpoint_then_maybe_stop, **kwargs)


@pytest.mark.parametrize("stop_after", [1, 2, 3], ids=["before the rounding", "at the rounding epoch", "after it"])
def test_a_schedule_resumes_bit_for_bit_across_an_interruption(tmp_path, stop_after):
    torch.set_num_threads(1)
    config = small(epochs=4, round_to="4@2,2@3")
    uninterrupted = fit(config)
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(config, status="running")
    stopper = StopAfterEpoch(stop_after)
    execute(store, run_id, stop=stopper.stop, fit_function=stopper, config=config)
    assert store.get_run(run_id)["status"] == "interrupted"
    state = load_checkpoint(store.checkpoint_path_for(run_id), config)
    assert state.layer_ranks == ({} if stop_after < 2 else {"hidden": [4, 4]} if stop_after == 2 else {"hidden": [2, 2]})
    check_resumable(store, run_id)
    assert store.requeue(run_id)
    execute(store, run_id)
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["layer_params"] == uninterrupted.model.hidden.param_count()
    events = [(event["kind"], event["epoch"], event["train_loss"], event["test_accuracy"]) for event in store.metrics(run_id)]
    expected = [(event["kind"], event["epoch"], event["train_loss"], event["test_accuracy"]) for event in uninterrupted.events]
    assert events == expected  # the roundings included, once each
    assert run["best_test_accuracy"] == uninterrupted.best_test_accuracy
    model, _ = load_model(run["weights_path"])
    assert model.hidden.ranks == (2, 2)
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert [change["ranks_after"] for change in rounding_changes(store.metrics(run_id))] == [[4, 4], [2, 2]]


def test_a_model_file_after_a_rounding_loads_at_its_ranks(tmp_path):
    config = small(round_to=None)
    model = build_model(config)
    round_network(model, config, RoundStep(epoch=1, rel_error=0.5))
    assert layer_ranks(model, config) == {"hidden": list(model.hidden.ranks)}
    path = save_model(model, config, tmp_path / "model.pt")
    loaded, _ = load_model(path)
    images = torch.randn(4, 1, 8, 8)
    assert loaded.hidden.ranks == model.hidden.ranks and torch.equal(loaded(images), model(images))
    payload = torch.load(path, weights_only=True)
    payload["layer_ranks"] = {"head": [2, 2]}
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a hidden layer with TT cores"):
        load_model(tmp_path / "bad.pt")


# ---------------------------------------------------------------- runs from rounded cores
@pytest.fixture
def trained(tmp_path):
    """A completed TT run (rank 8) in a store."""
    store = RunStore(tmp_path / "runs.db")
    config = small(round_to=None, epochs=2)
    run_id = store.create_run(config, status="running")
    execute(store, run_id, config=config)
    return store, run_id


def test_round_and_continue_starts_from_the_rounded_cores(trained):
    store, run_id = trained
    child = continue_config(store, run_id, rank=3, epochs=1)
    assert child.layers[0].ranks == 3 and child.round_to is None and child.epochs == 1
    assert child.init_from.method == "tt-round" and child.init_from.run == run_id and child.init_from.rank == 3
    source, _ = load_model(store.get_run(run_id)["weights_path"])
    expected = source.hidden.rounded(max_rank=3)
    first = fit(child.replace(epochs=0))  # its first weights, evaluated
    assert first.extra["init_errors"] == [pytest.approx(expected.approximation_error)]
    assert torch.allclose(first.model.hidden.to_dense(), expected.to_dense(), atol=1e-6)
    assert torch.equal(first.model.head.weight, source.head.weight)
    by_error = continue_config(store, run_id, rel_error=0.5)
    assert by_error.init_from.rel_error == 0.5 and by_error.epochs == 2
    assert tuple(by_error.layers[0].ranks) == source.hidden.rounded(rel_error=0.5).ranks


@pytest.mark.parametrize("kwargs, field, words", [
    ({"rank": 8}, "rank", "lowers no rank"), ({"rank": 0}, "rank", "1 or more"), ({}, "rank", "one of the two"),
    ({"rank": 2, "rel_error": 0.1}, "rank", "one of the two"), ({"rel_error": 1.5}, "rel_error", "between 0 and 1"),
])
def test_round_and_continue_refuses_what_cannot_round(trained, kwargs, field, words):
    store, run_id = trained
    with pytest.raises(ConfigError, match=words) as caught:
        continue_config(store, run_id, **kwargs)
    assert caught.value.field == field


def test_round_and_continue_needs_a_tt_run_with_weights(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    dense = RunConfig.from_dict({**SMALL, "layer": "dense", "hidden": 32, "round_to": None, "in_modes": None,
                                 "out_modes": None, "ranks": None, "epochs": 1})
    run_id = store.create_run(dense, status="running")
    execute(store, run_id, config=dense)
    with pytest.raises(ConfigError, match="no TT layer"):
        continue_config(store, run_id, rank=2)
    queued = store.create_run(small(round_to=None))
    with pytest.raises(ConfigError, match="no weights file"):
        continue_config(store, queued, rank=2)
