"""Forward strategies of the TT layer: agreement, FLOP and memory accounting, caching."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ttexplore.nn import forward as tt_forward
from ttexplore import costmodel
from ttexplore.tt import ttmath
from ttexplore.nn.layers import TTLinear
from ttexplore.costmodel.ops import BLOCKED_DIRECTIONS, blocked_ops
from ttexplore.nn.kernels import merge_cores, permute_copy, tt_matmul_batched, tt_matmul_blocked, tt_matmul_rtl, tt_to_dense

CONCRETE = ("ltr", "rtl", "blocked", "einsum", "dense")
ALL_STRATEGIES = CONCRETE + ("auto",)

# d = 1..6, uneven modes (some of size 1), per-core ranks below the maximal useful ones
LAYERS = [
    ((5,), (3,), ()),
    ((2, 3), (4, 1), (3,)),
    ((2, 3, 4), (3, 2, 2), (2, 5)),
    ((4, 2, 3, 2), (2, 3, 2, 4), (3, 4, 2)),
    ((2, 2, 3, 2, 2), (3, 2, 1, 2, 2), (2, 3, 3, 2)),
    ((2, 2, 2, 2, 2, 2), (1, 2, 3, 1, 2, 2), (2, 3, 2, 3, 2)),
]


@pytest.fixture(autouse=True)
def _fresh_caches():
    tt_forward.set_autotune(False)
    tt_forward.clear_caches()
    yield
    tt_forward.set_autotune(False)
    tt_forward.clear_caches()


def reference_dense(cores):
    """``W`` (M, N) from the cores by plain tensordots, independent of ttexplore.nn.kernels."""
    d = len(cores)
    # full: (n_1, m_1, ..., n_k, m_k, r_k)
    full = cores[0][0]
    for core in cores[1:]:
        full = torch.tensordot(full, core, dims=([full.dim() - 1], [0]))
    full = full[..., 0]
    order = [2 * k + 1 for k in range(d)] + [2 * k for k in range(d)]
    out_features = 1
    for core in cores:
        out_features *= core.shape[2]
    return full.permute(order).reshape(out_features, -1)


def make_layers(in_modes, out_modes, ranks):
    torch.manual_seed(0)
    reference = TTLinear(in_modes, out_modes, list(ranks), bias=True, dtype=torch.float64)
    with torch.no_grad():
        reference.bias.normal_()
    layers = {}
    for strategy in ALL_STRATEGIES:
        layer = TTLinear(in_modes, out_modes, list(ranks), bias=True, strategy=strategy, dtype=torch.float64)
        layer.load_state_dict(reference.state_dict())
        layers[strategy] = layer
    return layers


@pytest.mark.parametrize("in_modes,out_modes,ranks", LAYERS, ids=[f"d{len(layer[0])}" for layer in LAYERS])
@pytest.mark.parametrize("lead", [(1,), (4,), (2, 3)], ids=["batch1", "batch4", "leading2x3"])
def test_strategies_agree_forward_and_backward(in_modes, out_modes, ranks, lead):
    layers = make_layers(in_modes, out_modes, ranks)
    in_features = ttmath.prod(in_modes)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(*lead, in_features, dtype=torch.float64, generator=generator)
    grad_output = torch.randn(*lead, ttmath.prod(out_modes), dtype=torch.float64, generator=generator)

    cores = [core.detach().clone().requires_grad_() for core in layers["auto"].cores]
    bias = layers["auto"].bias.detach().clone().requires_grad_()
    x_ref = inputs.clone().requires_grad_()
    expected = F.linear(x_ref, reference_dense(cores), bias)
    expected.backward(grad_output)

    # the layer's own to_dense is the same matrix
    assert torch.allclose(layers["auto"].to_dense(), reference_dense(cores).detach(), atol=1e-12, rtol=0)

    for strategy, layer in layers.items():
        x = inputs.clone().requires_grad_()
        output = layer(x)
        assert output.shape == (*lead, ttmath.prod(out_modes))
        assert torch.allclose(output, expected, atol=1e-10, rtol=0), strategy
        output.backward(grad_output)
        assert torch.allclose(x.grad, x_ref.grad, atol=1e-10, rtol=0), strategy
        assert torch.allclose(layer.bias.grad, bias.grad, atol=1e-10, rtol=0), strategy
        for core, core_ref in zip(layer.cores, cores):
            assert torch.allclose(core.grad, core_ref.grad, atol=1e-10, rtol=0), strategy
        # without autograd (the inference plan may differ) the result is the same
        with torch.no_grad():
            assert torch.allclose(layer(inputs), expected, atol=1e-10, rtol=0), strategy


@pytest.mark.parametrize("in_modes,out_modes,ranks", LAYERS[1:5], ids=[f"d{len(l[0])}" for l in LAYERS[1:5]])
def test_every_blocking_agrees(in_modes, out_modes, ranks):
    torch.manual_seed(2)
    layer = TTLinear(in_modes, out_modes, list(ranks), bias=False, dtype=torch.float64)
    cores = list(layer.cores)
    inputs = torch.randn(3, ttmath.prod(in_modes), dtype=torch.float64)
    expected = inputs @ reference_dense([c.detach() for c in cores]).t()
    grad_output = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(inputs @ reference_dense(cores).t(), cores, grad_output)
    for blocks in costmodel.block_compositions(len(cores)):
        for direction in BLOCKED_DIRECTIONS:
            output = tt_matmul_blocked(inputs, cores, blocks, direction)
            assert torch.allclose(output, expected, atol=1e-10, rtol=0), (blocks, direction)
            grads = torch.autograd.grad(output, cores, grad_output)
            assert all(torch.allclose(got, want, atol=1e-10, rtol=0) for got, want in zip(grads, expected_grads))


@pytest.mark.parametrize("in_modes,out_modes,ranks", LAYERS, ids=[f"d{len(l[0])}" for l in LAYERS])
@pytest.mark.parametrize("direction", ["rtl-bmm", "ltr-bmm"])
@pytest.mark.parametrize("batch", [1, 3])
def test_batched_sweeps_agree_and_count_their_flops(in_modes, out_modes, ranks, direction, batch):
    torch.manual_seed(4)
    layer = TTLinear(in_modes, out_modes, list(ranks), bias=False, dtype=torch.float64)
    cores = list(layer.cores)
    inputs = torch.randn(batch, ttmath.prod(in_modes), dtype=torch.float64, requires_grad=True)
    expected = inputs @ reference_dense([c.detach() for c in cores]).t()
    output = tt_matmul_batched(inputs, cores, None, direction)
    assert output.is_contiguous() and torch.allclose(output, expected, atol=1e-10, rtol=0)
    ops, _ = blocked_ops([tuple(core.shape) for core in cores], batch, (1,) * len(cores), direction, 8)
    priced = costmodel.estimate.evaluate_ops(ops, 8, True, costmodel.default_machine(1))
    assert counted_flops(lambda: tt_matmul_batched(inputs, cores, None, direction)) == priced["flops"]
    grad_output = torch.randn_like(expected)
    total = counted_flops(lambda: tt_matmul_batched(inputs, cores, None, direction).backward(grad_output))
    assert total == priced["flops"] + priced["backward_flops"]


@pytest.mark.parametrize("in_modes,out_modes,ranks", LAYERS[2:5], ids=[f"d{len(l[0])}" for l in LAYERS[2:5]])
def test_every_rtl_orientation_agrees(in_modes, out_modes, ranks):
    torch.manual_seed(7)
    layer = TTLinear(in_modes, out_modes, list(ranks), bias=False, dtype=torch.float64)
    cores = list(layer.cores)
    inputs = torch.randn(3, ttmath.prod(in_modes), dtype=torch.float64, requires_grad=True)
    expected = inputs @ reference_dense(cores).t()
    grad_output = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, [inputs, *cores], grad_output)
    for orientations in itertools.product(("rows", "cols"), repeat=len(cores)):
        output = tt_matmul_rtl(inputs, cores, None, orientations)
        assert torch.allclose(output, expected, atol=1e-10, rtol=0), orientations
        grads = torch.autograd.grad(output, [inputs, *cores], grad_output)
        for got, want in zip(grads, expected_grads):
            assert torch.allclose(got, want, atol=1e-10, rtol=0), orientations


def test_strategies_gradcheck():
    torch.manual_seed(3)
    in_modes, out_modes, ranks = (2, 3, 2), (2, 2, 3), (2, 3)
    layer = TTLinear(in_modes, out_modes, list(ranks), dtype=torch.float64)
    cores = [core.detach().clone().requires_grad_() for core in layer.cores]
    bias = torch.randn(12, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    for strategy in CONCRETE:

        def function(x, b, *cs, strategy=strategy):
            return tt_forward.tt_linear(x, list(cs), in_modes, out_modes, ranks, strategy, bias=b)

        assert torch.autograd.gradcheck(function, (inputs, bias, *cores)), strategy


def test_permute_copy_is_bit_exact_and_differentiable():
    values = torch.randn(6 * 8 * 4 + 1)
    values[::5] = float("nan")
    values[1::5] = 1e-42  # subnormal
    values[2::5] = -0.0
    # an unaligned view (offset of one float) takes the plain path, an aligned one the wide path
    for tensor in (values[1:], values[:-1]):
        shaped = tensor.reshape(6, 8, 4)
        expected = shaped.permute(1, 0, 2).contiguous().reshape(-1)
        got = permute_copy(tensor, (6, 8, 4), (1, 0, 2))
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32))
    for shape, perm in [((3, 4, 2), (2, 0, 1)), ((2, 3, 4, 2), (0, 2, 1, 3)), ((5, 1, 3), (1, 2, 0))]:
        source = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        assert torch.equal(permute_copy(source, shape, perm), source.permute(perm).reshape(-1))
        assert torch.autograd.gradcheck(lambda t, shape=shape, perm=perm: permute_copy(t, shape, perm), (source,))
        assert torch.autograd.gradgradcheck(lambda t, shape=shape, perm=perm: permute_copy(t, shape, perm), (source,))


def test_merge_cores_matches_reference():
    torch.manual_seed(4)
    layer = TTLinear((2, 3, 4), (3, 2, 2), [2, 5], dtype=torch.float64)
    cores = [core.detach() for core in layer.cores]
    merged = merge_cores(cores)
    assert merged.shape == (1, 24, 12, 1)
    assert torch.allclose(merged.reshape(24, 12).t(), reference_dense(cores), atol=1e-12, rtol=0)
    assert torch.allclose(tt_to_dense(cores), reference_dense(cores), atol=1e-12, rtol=0)
    # a block in the middle keeps its boundary ranks
    middle = merge_cores(cores[1:])
    assert middle.shape == (2, 12, 4, 1)


# ---------------------------------------------------------------------------- FLOPs and memory
FLOP_LAYERS = [((4, 8, 8, 4), (4, 8, 8, 4), 4, 8), ((2, 3, 4), (3, 2, 2), [2, 5], 5), ((4, 7, 4, 7), (5, 5, 5, 5), 3, 1)]


def counted_flops(function):
    counter = FlopCounterMode(display=False)
    with counter:
        function()
    return counter.get_total_flops()


@pytest.mark.parametrize("in_modes,out_modes,ranks,batch", FLOP_LAYERS)
def test_flop_functions_match_flop_counter(in_modes, out_modes, ranks, batch):
    torch.manual_seed(5)
    layer = TTLinear(in_modes, out_modes, ranks, bias=True)
    internal = layer.ranks
    inputs = torch.randn(batch, layer.in_features)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, training=True, input_grad=True)
    assert costs["ltr"]["flops"] == ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "ltr")
    assert costs["rtl"]["flops"] == ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "rtl")
    assert costs["dense"]["flops"] == ttmath.tt_rebuild_flops(in_modes, out_modes, ranks, batch)
    cores = list(layer.cores)
    for strategy in CONCRETE:
        plan = tt_forward.plan_forward(in_modes, out_modes, internal, batch, torch.float32, True, True, strategy)
        if strategy == "blocked":
            assert plan.blocks == costs["blocked"]["blocks"]
        with torch.no_grad():
            forward = counted_flops(lambda: plan.run(inputs, cores, layer.bias))
        assert forward == costs[strategy]["flops"], strategy
        x = inputs.clone().requires_grad_()
        total = counted_flops(lambda: plan.run(x, cores, layer.bias).sum().backward())
        assert total == costs[strategy]["flops"] + costs[strategy]["backward_flops"], strategy


@pytest.mark.parametrize("strategy", ["ltr", "rtl", "blocked", "dense"])
def test_saved_bytes_match_autograd(strategy):
    in_modes, out_modes, ranks, batch = (4, 8, 8, 4), (4, 8, 8, 4), 4, 16
    torch.manual_seed(6)
    layer = TTLinear(in_modes, out_modes, ranks, bias=False)
    costs = costmodel.strategy_costs(in_modes, out_modes, ranks, batch, training=True, input_grad=True)
    plan = tt_forward.plan_forward(in_modes, out_modes, layer.ranks, batch, torch.float32, True, True, strategy)
    inputs = torch.randn(batch, layer.in_features, requires_grad=True)
    own_storage = {inputs.untyped_storage().data_ptr()} | {c.untyped_storage().data_ptr() for c in layer.cores}
    saved = {}  # the memory autograd keeps: each storage once (an expanded core is one core, not a batch of them)

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own_storage:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        plan.run(inputs, list(layer.cores), None)
    parameter_bytes = sum(c.numel() * c.element_size() for c in layer.cores)
    # the model also counts reshaped views of the cores that autograd saves; they are tiny
    assert sum(saved.values()) <= costs[strategy]["saved_bytes"] <= sum(saved.values()) + 2 * parameter_bytes
    # the forward's own peak: at least its largest step's result
    assert costs[strategy]["peak_bytes"] >= batch * layer.out_features * 4


# ---------------------------------------------------------------------------- choosing and caching
def test_auto_returns_a_valid_strategy_and_caches(monkeypatch):
    calls = []
    real = costmodel.strategy_costs

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(costmodel, "strategy_costs", counting)
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), 4)
    inputs = torch.randn(16, 1024)
    with torch.no_grad():
        first = layer(inputs)
        planned = len(calls)  # the plan, and whether a stored W would pay
        second = layer(inputs)
        layer(inputs)
    # the second forward may multiply by a stored W instead (other float32 rounding)
    assert torch.allclose(first, second, atol=1e-5, rtol=1e-5)
    assert planned >= 1 and len(calls) == planned
    plan = tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 16, torch.float32)
    assert plan.strategy in CONCRETE and plan.source in ("model", "timing")
    assert plan is tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 16, torch.float32)
    assert len(calls) == planned
    # a training forward is planned separately (its cost includes the backward), by the model alone
    layer(inputs).sum().backward()
    assert len(calls) == planned + 1
    assert tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 16, torch.float32, True, False).source == "model"


def test_einsum_plan_is_cached(monkeypatch):
    import opt_einsum

    planned = []
    real = opt_einsum.contract_expression

    def counting(*args, **kwargs):
        planned.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(opt_einsum, "contract_expression", counting)
    layer = TTLinear((2, 3, 4), (3, 2, 2), [2, 5], strategy="einsum")
    inputs = torch.randn(4, 24)
    first = layer(inputs)
    second = layer(inputs)
    assert torch.equal(first, second)
    assert len(planned) == 1
    layer(torch.randn(5, 24))  # another batch size is another plan
    assert len(planned) == 2


def test_autotune_times_once_per_bucket(monkeypatch):
    timed = []
    real = tt_forward._plan_runner

    def counting(plan, *args):
        timed.append(plan.strategy)
        return real(plan, *args)

    monkeypatch.setattr(tt_forward, "_plan_runner", counting)
    tt_forward.set_autotune(True)
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), 2, dtype=torch.float64)
    inputs = torch.randn(5, 1024, dtype=torch.float64)
    with torch.no_grad():
        output = layer(inputs)
    assert timed and set(timed) <= set(CONCRETE)
    count = len(timed)
    with torch.no_grad():
        layer(torch.randn(7, 1024, dtype=torch.float64))  # same bucket (8)
    assert len(timed) == count
    plan = tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 6, torch.float64)
    assert plan.source == "timing" and plan.strategy in CONCRETE
    expected = F.linear(inputs, reference_dense([c.detach() for c in layer.cores]), layer.bias)
    assert torch.allclose(output, expected, atol=1e-10, rtol=0)


def test_forward_primes_the_allocator_once(monkeypatch):
    calls = []
    monkeypatch.setattr(tt_forward, "_allocator_primed", False)
    real = tt_forward.prime_allocator
    monkeypatch.setattr(tt_forward, "prime_allocator", lambda: calls.append(1) or real())
    layer = TTLinear((2, 3), (3, 2), 2)
    layer(torch.randn(2, 6))
    layer(torch.randn(2, 6))
    assert calls == [1] and tt_forward._allocator_primed


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy 'fast' is unknown"):
        TTLinear((2, 2), (2, 2), 1, strategy="fast")


# ---------------------------------------------------------------------------- the stored W at inference
def _counting_rebuilds(monkeypatch):
    """Count the layer's rebuilds of W (``tt_to_dense`` as layers.py calls it)."""
    from ttexplore.nn import layers

    rebuilds = []
    real = layers.tt_to_dense
    monkeypatch.setattr(layers, "tt_to_dense", lambda cores: rebuilds.append(1) or real(cores))
    return rebuilds


def _stored_layer(monkeypatch, pays=True):
    """A float64 layer whose inference forwards are told a stored W pays (or not)."""
    monkeypatch.setattr(tt_forward, "stored_weight_pays", lambda *args: pays)
    torch.manual_seed(8)
    layer = TTLinear((2, 3, 4), (3, 2, 2), [2, 5], dtype=torch.float64)
    with torch.no_grad():
        layer.bias.normal_()
    return layer


def _expected(layer, inputs):
    return F.linear(inputs, reference_dense([core.detach() for core in layer.cores]), layer.bias.detach())


def test_stored_weight_is_rebuilt_once_and_reused(monkeypatch):
    rebuilds = _counting_rebuilds(monkeypatch)
    layer = _stored_layer(monkeypatch)
    inputs = torch.randn(3, 24, dtype=torch.float64)
    with torch.no_grad():
        outputs = [layer(inputs) for _ in range(4)]
    # the first forward after a change runs the TT plan; the second rebuilds W; later ones reuse it
    assert rebuilds == [1]
    for output in outputs:
        assert torch.allclose(output, _expected(layer, inputs), atol=1e-12, rtol=0)
    assert layer._stored[2] is not None
    # leading axes, and torch.inference_mode, use it as well
    with torch.inference_mode():
        batched = layer(inputs.reshape(3, 1, 24))
    assert batched.shape == (3, 1, 12) and rebuilds == [1]
    assert torch.allclose(batched.reshape(3, 12), _expected(layer, inputs), atol=1e-12, rtol=0)


@pytest.mark.parametrize("change", ["in_place", "optimizer_step", "load_state_dict", "assign_state_dict", "to_dtype"])
def test_stored_weight_follows_every_change_of_the_cores(monkeypatch, change):
    rebuilds = _counting_rebuilds(monkeypatch)
    layer = _stored_layer(monkeypatch)
    inputs = torch.randn(3, 24, dtype=torch.float64)
    with torch.no_grad():
        layer(inputs), layer(inputs)
    assert rebuilds == [1]
    if change == "in_place":
        with torch.no_grad():
            layer.cores[1].mul_(-2.0)
    elif change == "optimizer_step":
        optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)
        layer(inputs).pow(2).sum().backward()
        assert layer._stored is None  # a grad-enabled forward drops it
        optimizer.step()
    elif change in ("load_state_dict", "assign_state_dict"):
        state = {key: value.clone() + 1.0 for key, value in layer.state_dict().items()}
        layer.load_state_dict(state, assign=change == "assign_state_dict")
    else:
        layer.float()
        inputs = inputs.float()
    with torch.no_grad():
        first, second, third = layer(inputs), layer(inputs), layer(inputs)
    assert rebuilds == [1, 1]
    atol = 1e-5 if change == "to_dtype" else 1e-12
    for output in (first, second, third):
        assert torch.allclose(output.double(), _expected(layer, inputs).double(), atol=atol, rtol=0), change


def test_stored_weight_is_not_used_for_other_parameters(monkeypatch):
    # torch.func.functional_call swaps the cores for the call: the stored W of the layer's own must not serve
    layer = _stored_layer(monkeypatch)
    inputs = torch.randn(3, 24, dtype=torch.float64)
    other = {name: value.detach() * 2 for name, value in layer.named_parameters()}
    twin = _stored_layer(monkeypatch)
    twin.load_state_dict(other)
    with torch.no_grad():
        layer(inputs), layer(inputs)
        for _ in range(2):
            swapped = torch.func.functional_call(layer, other, (inputs,))
            assert torch.allclose(swapped, _expected(twin, inputs), atol=1e-12, rtol=0)
        assert torch.allclose(layer(inputs), _expected(layer, inputs), atol=1e-12, rtol=0)


def test_stored_weight_is_never_used_with_grad(monkeypatch):
    rebuilds = _counting_rebuilds(monkeypatch)
    layer = _stored_layer(monkeypatch)
    inputs = torch.randn(3, 24, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        layer(inputs), layer(inputs)
    output = layer(inputs)
    assert output.grad_fn is not None and rebuilds == [1] and layer._stored is None
    grad_output = torch.randn_like(output)
    output.backward(grad_output)
    cores = [core.detach().clone().requires_grad_() for core in layer.cores]
    x_ref = inputs.detach().clone().requires_grad_()
    F.linear(x_ref, reference_dense(cores), layer.bias.detach()).backward(grad_output)
    assert torch.allclose(inputs.grad, x_ref.grad, atol=1e-10, rtol=0)
    for core, core_ref in zip(layer.cores, cores):
        assert torch.allclose(core.grad, core_ref.grad, atol=1e-10, rtol=0)


def test_stored_weight_only_when_it_pays_and_only_for_auto(monkeypatch):
    rebuilds = _counting_rebuilds(monkeypatch)
    layer = _stored_layer(monkeypatch, pays=False)
    inputs = torch.randn(3, 24, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(3):
            assert torch.allclose(layer(inputs), _expected(layer, inputs), atol=1e-12, rtol=0)
    assert rebuilds == []
    monkeypatch.setattr(tt_forward, "stored_weight_pays", lambda *args: True)
    layer.strategy = "rtl"  # a named strategy does what it says
    with torch.no_grad():
        for _ in range(3):
            layer(inputs)
    assert rebuilds == []


def test_stored_weight_decision_follows_the_cost_model_and_the_budget(monkeypatch):
    verdict = tt_forward._modelled_stored_weight_verdict
    # at batch 128 these TT plans do a fraction of the dense FLOPs: no stored W; nor for a 4096 x 4096
    # r=8 layer at batch 1 (a few hundred us of TT against a 64 MB GEMV); at any thread count
    for threads in (1, 2):
        assert verdict((4, 8, 8, 4), (4, 8, 8, 4), (1, 1, 1), 128, torch.float32, "cpu", threads) is False
        assert verdict((8,) * 4, (8,) * 4, (8, 8, 8), 1, torch.float32, "cpu", threads) is False
    # the verdict is the ratio of the two estimates: clear either way, a near tie (None) in between
    shape = ((4, 7, 4, 7), (5, 5, 5, 5), (4, 4, 4), 1, torch.float32, "cpu", 1)
    best = costmodel.strategy_costs(*shape[:4], machine=costmodel.default_machine(1))
    best_seconds = min(cost["seconds"] for cost in best.values())
    for ratio, expected in ((0.5, True), (1.0, None), (2.0, False)):
        monkeypatch.setattr(costmodel, "stored_weight_costs", lambda *args, ratio=ratio, **kwargs: {
            "seconds": ratio * best_seconds})
        verdict.cache_clear()
        assert verdict(*shape) is expected, ratio
    monkeypatch.undo()
    verdict.cache_clear()
    timed = []
    monkeypatch.setattr(tt_forward, "_timed_stored_weight_pays", lambda *key: timed.append(key) or True)
    # over the memory budget: never, whatever the speed (25088 x 4096: 411 MB)
    assert not tt_forward.stored_weight_pays((2, 7, 8, 8, 7, 4), (4,) * 6, (4,) * 5, 1)
    try:
        tt_forward.set_stored_weight_budget(0)
        assert not tt_forward.stored_weight_pays((4, 7, 4, 7), (5, 5, 5, 5), (4, 4, 4), 1)
    finally:
        tt_forward.set_stored_weight_budget(tt_forward.STORED_WEIGHT_BUDGET_BYTES)
    assert not timed
    def near_tie(*key):
        return None

    near_tie.cache_clear = lambda: None  # clear_caches() calls it
    monkeypatch.setattr(tt_forward, "_modelled_stored_weight_verdict", near_tie)
    assert tt_forward.stored_weight_pays((4, 7, 4, 7), (5, 5, 5, 5), (4, 4, 4), 1) and len(timed) == 1
    # the timing is keyed by the thread count it ran at
    assert timed[0][-1] == torch.get_num_threads()


def test_stored_weight_timing_picks_the_faster_one():
    # a 16 x 16 GEMV against a 4-core TT forward: real timings, either answer is valid, and it is cached
    threads = torch.get_num_threads()
    answer = tt_forward._timed_stored_weight_pays((2,) * 4, (2,) * 4, (2, 2, 2), 1, torch.float32, torch.device("cpu"),
                                                  threads)
    assert answer in (True, False)
    assert tt_forward._autotune_cache[("stored", (2,) * 4, (2,) * 4, (2, 2, 2), 1, torch.float32, "cpu", threads)] is answer


def test_inference_near_ties_are_timed_once_training_plans_are_the_models(monkeypatch):
    timed = []
    real = tt_forward._fastest_plan
    monkeypatch.setattr(tt_forward, "_fastest_plan", lambda candidates, *rest: timed.append(candidates) or real(
        candidates, *rest))
    shape = ((4, 8, 8, 4), (4, 8, 8, 4), (4, 4, 4))
    plans = {batch: tt_forward.plan_forward(*shape, batch) for batch in (1, 128, 100)}
    for candidates in timed:
        assert 2 <= len(candidates) <= len(CONCRETE)
    assert len(timed) <= 2  # 128 and 100 share a batch bucket
    for plan in plans.values():
        assert plan.source in ("model", "timing")
    training = tt_forward.plan_forward(*shape, 128, torch.float32, True, True)
    assert training.source == "model" and len(timed) <= 2


# ---------------------------------------------------------------------------- devices
def test_plans_are_keyed_by_device_and_dtype(monkeypatch):
    timed = []
    monkeypatch.setattr(tt_forward, "_autotune_plan", lambda *key: timed.append(key) or "timed plan")
    shape = ((4, 8, 8, 4), (4, 8, 8, 4), (2, 2, 2), 16)
    training = (True, True)  # training plans are the cost model's alone on the CPU
    cpu32 = tt_forward.plan_forward(*shape, torch.float32, *training)
    cpu64 = tt_forward.plan_forward(*shape, torch.float64, *training)
    assert cpu32 is not cpu64 and {cpu32.source, cpu64.source} == {"model"} and not timed
    assert cpu32 is tt_forward.plan_forward(*shape, torch.float32, *training, device="cpu")
    # no model of a CUDA machine: auto times its candidates there (never the CPU's tables)
    assert tt_forward.plan_forward(*shape, torch.float32, *training, device="cuda:0") == "timed plan"
    assert timed[-1][-2:] == (torch.device("cuda:0"), torch.get_num_threads())
    # a named strategy is the same everywhere
    assert tt_forward.plan_forward(*shape, torch.float32, *training, strategy="rtl", device="cuda").strategy == "rtl"
    # with a model fitted on that device, auto asks it
    tt_forward.set_device_machine("cuda", costmodel.default_machine())
    try:
        plan = tt_forward.plan_forward(*shape, torch.float32, *training, device="cuda")
        assert plan.source == "model" and len(timed) == 1
    finally:
        tt_forward.set_device_machine("cuda", None)
    assert tt_forward.plan_forward(*shape, torch.float32, *training, device="cuda") == "timed plan"


def test_off_the_cpu_auto_times_on_that_device_and_skips_cpu_workarounds(monkeypatch):
    # the meta device stands in for a GPU: not the CPU, no data
    primed = []
    monkeypatch.setattr(tt_forward, "_allocator_primed", False)
    monkeypatch.setattr(tt_forward, "prime_allocator", lambda: primed.append(1))
    timed_on = []
    real = tt_forward._plan_runner
    monkeypatch.setattr(tt_forward, "_plan_runner", lambda plan, x, cores, training: timed_on.append(x.device) or real(
        plan, x, cores, training))
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), 2, device="meta")
    output = layer(torch.empty(5, 1024, device="meta", requires_grad=True))
    output.sum().backward()
    with torch.no_grad():
        assert layer(torch.empty(5, 1024, device="meta")).shape == (5, 1024)
    assert output.shape == (5, 1024) and layer.cores[0].grad is not None
    assert timed_on and set(timed_on) == {torch.device("meta")}
    assert not primed and not tt_forward._allocator_primed
    plan = tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 5, torch.float32, device="meta")
    assert plan.source == "timing"


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")


@needs_cuda
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_strategies_agree_on_cuda(strategy):
    torch.manual_seed(9)
    layer = TTLinear((4, 2, 3, 2), (2, 3, 2, 4), [3, 4, 2], strategy=strategy, dtype=torch.float64, device="cuda")
    inputs = torch.randn(6, 48, dtype=torch.float64, device="cuda", requires_grad=True)
    cores = [core.detach().clone().requires_grad_() for core in layer.cores]
    x_ref = inputs.detach().clone().requires_grad_()
    expected = F.linear(x_ref, reference_dense(cores), layer.bias.detach())
    output = layer(inputs)
    assert output.device.type == "cuda"
    assert torch.allclose(output, expected, atol=1e-10, rtol=0)
    output.sum().backward()
    expected.sum().backward()
    assert torch.allclose(inputs.grad, x_ref.grad, atol=1e-10, rtol=0)
    with torch.no_grad():
        for _ in range(3):
            assert torch.allclose(layer(inputs), expected, atol=1e-10, rtol=0)


@needs_cuda
def test_auto_times_its_candidates_on_cuda():
    plan = tt_forward.plan_forward((4, 8, 8, 4), (4, 8, 8, 4), (4, 4, 4), 32, torch.float32, device="cuda")
    assert plan.source == "timing" and plan.strategy in CONCRETE


# ---------------------------------------------------------------------------- compilers
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_torch_compile_traces_without_graph_breaks(strategy):
    torch._dynamo.reset()
    layer = make_layers((4, 2, 3, 2), (2, 3, 2, 4), (3, 4, 2))[strategy]
    inputs = torch.randn(5, 48, dtype=torch.float64)
    expected = layer(inputs)
    # fullgraph=True raises at the first graph break; the eager backend skips code generation
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert torch.allclose(compiled(inputs), expected, atol=1e-10, rtol=0)
    x = inputs.clone().requires_grad_()
    compiled(x).sum().backward()
    x_ref = inputs.clone().requires_grad_()
    layer(x_ref).sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-10, rtol=0)
    explanation = torch._dynamo.explain(layer)(inputs)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    # other batch sizes make the graph dynamic in the batch: still one graph, no break
    from torch._dynamo.utils import counters

    counters.clear()
    dynamic = torch.compile(layer, backend="eager")
    with torch.no_grad():
        for batch in (3, 9, 17):
            other = torch.randn(batch, 48, dtype=torch.float64)
            assert torch.allclose(dynamic(other), layer(other), atol=1e-10, rtol=0)
    assert not counters["graph_break"]
    torch._dynamo.reset()


def test_torch_compile_through_aot_autograd():
    torch._dynamo.reset()
    layer = make_layers((4, 2, 3, 2), (2, 3, 2, 4), (3, 4, 2))["auto"]
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(5, 48, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    output, expected = compiled(x), layer(x_ref)
    assert torch.allclose(output, expected, atol=1e-10, rtol=0)
    output.sum().backward()
    expected.sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-10, rtol=0)
    torch._dynamo.reset()


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_torch_export_keeps_working(strategy):
    from torch.export import Dim

    layer = make_layers((4, 2, 3, 2), (2, 3, 2, 4), (3, 4, 2))[strategy]
    inputs = torch.randn(5, 48, dtype=torch.float64)
    program = torch.export.export(layer, (inputs,))
    assert torch.allclose(program.module()(inputs), layer(inputs), atol=1e-10, rtol=0)
    # nothing of the CPU allocator priming or of the stored W gets into the graph
    assert "empty" not in program.graph_module.code
    dynamic = torch.export.export(layer, (inputs,), dynamic_shapes={"inputs": {0: Dim("batch", min=2, max=1024)}})
    other = torch.randn(17, 48, dtype=torch.float64)
    assert torch.allclose(dynamic.module()(other), layer(other), atol=1e-10, rtol=0)


# ---------------------------------------------------------------------------- thread counts
def test_plans_follow_the_thread_count(monkeypatch):
    asked = []
    real = costmodel.default_machine

    def machine_for(threads=None):
        asked.append(threads)
        return real(threads)

    monkeypatch.setattr(costmodel, "default_machine", machine_for)
    shape = ((4, 8, 8, 4), (4, 8, 8, 4), (2, 2, 2), 16, torch.float32, True, True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = tt_forward.plan_forward(*shape)
        torch.set_num_threads(2)
        two = tt_forward.plan_forward(*shape)
        assert asked[-1] == 2 and 1 in asked  # each priced with its own thread count's tables
        torch.set_num_threads(1)
        count = len(asked)
        assert tt_forward.plan_forward(*shape) is one and len(asked) == count  # cached per thread count
        assert tt_forward.decisions_generation() != (tt_forward.decisions_generation()[0], 2)
    finally:
        torch.set_num_threads(threads)
    assert one.source == two.source == "model"


def test_a_layer_asks_again_for_its_stored_weight_when_the_thread_count_changes(monkeypatch):
    # a stored W pays at 2 threads only (as for a GEMV that the second core speeds up)
    monkeypatch.setattr(tt_forward, "stored_weight_pays", lambda *key: torch.get_num_threads() == 2)
    layer = TTLinear((4, 8), (4, 8), 2)
    inputs = torch.randn(1, 32)
    rebuilt = []
    real = TTLinear._inference_weight

    def watched(self, x):
        weight = real(self, x)
        rebuilt.append(weight is not None)
        return weight

    monkeypatch.setattr(TTLinear, "_inference_weight", watched)
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(2)
            layer(inputs), layer(inputs)  # the second forward rebuilds W and uses it
            torch.set_num_threads(1)
            expected = layer(inputs)
            torch.set_num_threads(2)
            again = layer(inputs)
    finally:
        torch.set_num_threads(threads)
    assert rebuilt == [False, True, False, True]
    assert torch.allclose(expected, again, atol=1e-6)


def test_a_worker_thread_that_sets_its_threads_gets_plans_for_them(monkeypatch):
    # as the app's workers do with TTEXPLORE_TORCH_THREADS: torch's thread count is per OS thread
    import threading

    asked = []
    real = costmodel.default_machine
    monkeypatch.setattr(costmodel, "default_machine", lambda threads=None: asked.append(threads) or real(threads))
    shape = ((4, 7, 4, 7), (5, 5, 5, 5), (4, 4, 4), 32, torch.float32, True, True)

    def worker():
        torch.set_num_threads(1)
        tt_forward.plan_forward(*shape)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert asked and set(asked) == {1}


def test_estimates_from_another_thread_counts_table_are_trusted_less(monkeypatch):
    one = dataclasses.replace(costmodel.default_machine(1), threads=1)
    assert tt_forward.tie_band(one, 1) == tt_forward.NEAR_TIE_BAND
    assert tt_forward.tie_band(one, 2) == tt_forward.UNCALIBRATED_TIE_BAND > tt_forward.NEAR_TIE_BAND
    # a stored W estimated 2x slower than the TT plan: clearly not at the table's own thread count,
    # a near tie (so timed) at a thread count the table was not measured at
    monkeypatch.setattr(tt_forward, "_machine", lambda device_type, threads: one)
    shape = ((4, 7, 4, 7), (5, 5, 5, 5), (4, 4, 4), 1, torch.float32, "cpu")
    best_seconds = min(cost["seconds"] for cost in costmodel.strategy_costs(*shape[:4], machine=one).values())
    monkeypatch.setattr(costmodel, "stored_weight_costs", lambda *args, **kwargs: {"seconds": 2 * best_seconds})
    tt_forward.clear_caches()
    assert tt_forward._modelled_stored_weight_verdict(*shape, 1) is False
    assert tt_forward._modelled_stored_weight_verdict(*shape, 2) is None


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_a_chunked_batched_sweep_agrees_and_counts_its_flops(chunk):
    torch.manual_seed(8)
    in_modes, out_modes, ranks = LAYERS[4]
    layer = TTLinear(in_modes, out_modes, list(ranks), bias=True, dtype=torch.float64)
    cores = list(layer.cores)
    inputs = torch.randn(5, ttmath.prod(in_modes), dtype=torch.float64, requires_grad=True)
    expected = inputs @ reference_dense(cores).t() + layer.bias
    grad_output = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, [inputs, *cores, layer.bias], grad_output)
    blocks = (2, 1, 2)
    output = tt_matmul_blocked(inputs, cores, blocks, "rtl-bmm", layer.bias, chunk=chunk)
    assert torch.allclose(output, expected.detach(), atol=1e-10, rtol=0)
    grads = torch.autograd.grad(output, [inputs, *cores, layer.bias], grad_output)
    assert all(torch.allclose(got, want, atol=1e-10, rtol=0) for got, want in zip(grads, expected_grads))
    ops, _ = blocked_ops([tuple(core.shape) for core in cores], 5, blocks, "rtl-bmm", 8, chunk=chunk)
    priced = costmodel.estimate.evaluate_ops(ops, 8, True, costmodel.default_machine(1))
    with torch.no_grad():
        assert counted_flops(lambda: tt_matmul_blocked(inputs, cores, blocks, "rtl-bmm", None, chunk=chunk)) == \
            priced["flops"]
