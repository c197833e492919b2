"""TTConv2d: the kernel against its definition, every strategy against F.conv2d, gradients, TT-SVD, init,
FLOPs against torch's counter, auto against the cost model, clipping, arguments, compilers and files."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ttexplore import TTConv2d, TTMatrix
from ttexplore.costmodel import conv as conv_costs
from ttexplore.nn import conv_forward
from ttexplore.nn.conv_forward import ConvPlan, run_conv_plan
from ttexplore.nn.conv_kernels import columns_sweep
from ttexplore.tt.convshape import conv_param_count
from ttexplore.tt.init import target_std

#: (in_modes, out_modes, ranks, kernel_size, stride, padding): odd channel factorizations, kernel sizes
#: 1, 3 and (3, 5), strides 1 and 2 (and (2, 1)), paddings 0, 1 and (1, 2).
CASES = [
    ((1, 3), (2, 3), 2, 3, 1, 1),
    ((1, 3), (2, 3), None, 1, 2, 0),
    ((2, 3), (5, 1), 3, (3, 5), (2, 1), (1, 2)),
    ((2, 3), (5, 1), [4, 2], 3, 2, 0),
    ((2, 2, 3), (3, 5, 1), 3, (3, 5), 1, (1, 2)),
    ((2, 2, 3), (3, 5, 1), [2, 3, 2], 1, 1, 0),
    ((6,), (5,), None, 3, 2, 1),
]

STRATEGIES = ["auto", "channels", "spatial", "im2col", "dense"]


def random_layer(in_modes, out_modes, ranks, kernel_size, stride, padding, strategy="auto", seed=0) -> TTConv2d:
    """A float64 layer with O(1) core entries and a random bias."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = TTConv2d(in_modes, out_modes, ranks, kernel_size, stride, padding, strategy=strategy,
                         dtype=torch.float64)
    with torch.no_grad():
        for core in layer.cores:
            core.normal_(0.0, 0.7)
        layer.bias.normal_()
    return layer


def reference_kernel(cores: list[torch.Tensor], kernel_size: tuple[int, int]) -> torch.Tensor:
    """``K[s, c, x, y] = G_0[(x, y)] G_1[c_1, s_1] ... G_d[c_d, s_d]``, entry by entry, from the definition."""
    channel_cores = cores[1:]
    in_modes = [core.shape[1] for core in channel_cores]
    out_modes = [core.shape[2] for core in channel_cores]
    kernel = torch.zeros(math.prod(out_modes), math.prod(in_modes), *kernel_size, dtype=cores[0].dtype)
    for s, out_index in enumerate(itertools.product(*(range(m) for m in out_modes))):
        for c, in_index in enumerate(itertools.product(*(range(n) for n in in_modes))):
            for x, y in itertools.product(range(kernel_size[0]), range(kernel_size[1])):
                product = cores[0][:, x * kernel_size[1] + y, 0, :]
                for core, j, i in zip(channel_cores, in_index, out_index):
                    product = product @ core[:, j, i, :]
                kernel[s, c, x, y] = product[0, 0]
    return kernel


# ---------------------------------------------------------------------------- values
@pytest.mark.parametrize("case", CASES[:5])
def test_to_dense_matches_the_definition(case):
    layer = random_layer(*case)
    expected = reference_kernel([core.detach() for core in layer.cores], layer.kernel_size)
    dense = layer.to_dense().detach()
    assert dense.shape == (layer.out_channels, layer.in_channels, *layer.kernel_size)
    torch.testing.assert_close(dense, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_equals_conv2d_by_the_dense_kernel(case, strategy):
    layer = random_layer(*case, strategy=strategy)
    inputs = torch.randn(3, layer.in_channels, 9, 11, dtype=torch.float64)
    expected = F.conv2d(inputs, layer.to_dense(), layer.bias, layer.stride, layer.padding)
    torch.testing.assert_close(layer(inputs), expected, rtol=0, atol=1e-11)
    with torch.no_grad():  # inference, where auto may also keep a stored kernel
        for _ in range(3):
            torch.testing.assert_close(layer(inputs), expected, rtol=0, atol=1e-11)


@pytest.mark.parametrize("strategy", ["channels", "spatial", "im2col"])
@pytest.mark.parametrize("direction", ["ltr", "rtl"])
@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_both_directions_and_any_chunking_give_the_same_convolution(strategy, direction, chunk):
    layer = random_layer((2, 2, 3), (3, 5, 1), [2, 3, 2], 3, 2, (1, 2))
    inputs = torch.randn(5, 12, 8, 7, dtype=torch.float64)
    expected = F.conv2d(inputs, layer.to_dense(), layer.bias, layer.stride, layer.padding)
    output = run_conv_plan(ConvPlan(strategy, direction, chunk, "fixed"), inputs, list(layer.cores), layer.conv_shape,
                           layer.bias)
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-11)


def test_the_column_sweep_refuses_an_unknown_direction():
    layer = random_layer((2, 3), (5, 1), 3, 3, 1, 1)
    with pytest.raises(ValueError, match="direction"):
        columns_sweep(torch.zeros(1, 6, 4, dtype=torch.float64), list(layer.cores)[1:], "sideways", False)


@pytest.mark.parametrize("strategy", ["channels", "spatial", "im2col", "dense"])
def test_gradcheck(strategy):
    layer = random_layer((2, 3), (3, 1), 2, 3, 2, 1)
    shape = layer.conv_shape
    inputs = torch.randn(2, 6, 5, 4, dtype=torch.float64, requires_grad=True)
    plan = conv_forward.plan_conv(shape, 2, 5, 4, True, torch.float64, True, True, strategy)
    plan = ConvPlan(plan.strategy, plan.direction, 1, plan.source)  # chunks of one image: the join is checked too

    def function(x, bias, *cores):
        return run_conv_plan(plan, x, list(cores), shape, bias)

    # fast mode: the Jacobian against random directions (a full one takes seconds on two cores)
    assert torch.autograd.gradcheck(function, (inputs, layer.bias, *layer.cores), fast_mode=True)


def test_an_empty_batch_is_answered_like_nn_conv2d():
    layer = random_layer((2, 3), (5, 1), 3, 3, 2, 1)
    conv = nn.Conv2d(6, 5, 3, 2, 1).double()
    inputs = torch.randn(0, 6, 9, 11, dtype=torch.float64, requires_grad=True)
    output = layer(inputs)
    assert output.shape == conv(inputs).shape == (0, 5, 5, 6)
    output.sum().backward()
    assert all(torch.count_nonzero(core.grad) == 0 for core in layer.cores)
    with torch.no_grad():
        assert layer(inputs.detach()).shape == (0, 5, 5, 6)


def test_one_unbatched_image_like_nn_conv2d():
    layer = random_layer((2, 3), (5, 1), 3, 3, 1, 1)
    image = torch.randn(6, 7, 8, dtype=torch.float64)
    output = layer(image)
    assert output.shape == (5, 7, 8)
    torch.testing.assert_close(output, layer(image.unsqueeze(0))[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- TT-SVD
def test_from_conv_is_exact_at_full_rank_and_keeps_the_layer():
    torch.manual_seed(3)
    conv = nn.Conv2d(6, 5, (3, 5), stride=(2, 1), padding=(1, 2)).double()
    layer = TTConv2d.from_conv(conv, (2, 3), (5, 1))
    assert layer.approximation_error < 1e-12
    assert (layer.stride, layer.padding, layer.kernel_size) == ((2, 1), (1, 2), (3, 5))
    assert layer.cores[0].dtype == torch.float64
    torch.testing.assert_close(layer.to_dense(), conv.weight, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.bias, conv.bias, rtol=0, atol=0)
    inputs = torch.randn(2, 6, 9, 11, dtype=torch.float64)
    torch.testing.assert_close(layer(inputs), conv(inputs), rtol=0, atol=1e-11)


@pytest.mark.parametrize("rel_error", [0.1, 0.3, 0.6])
def test_from_conv_stays_within_rel_error(rel_error):
    torch.manual_seed(4)
    conv = nn.Conv2d(12, 15, 3, padding=1, bias=False).double()
    layer = TTConv2d.from_conv(conv, (2, 2, 3), (3, 5, 1), rel_error=rel_error)
    with torch.no_grad():
        measured = float(torch.linalg.vector_norm(layer.to_dense() - conv.weight) / torch.linalg.vector_norm(conv.weight))
    assert layer.bias is None
    assert measured <= rel_error + 1e-12
    assert layer.approximation_error == pytest.approx(measured, rel=1e-9, abs=1e-12)
    assert layer.param_count() < TTConv2d.from_conv(conv, (2, 2, 3), (3, 5, 1)).param_count()


def test_from_conv_refuses_what_it_cannot_compress():
    with pytest.raises(ValueError, match="groups"):
        TTConv2d.from_conv(nn.Conv2d(6, 6, 3, groups=2), (2, 3), (2, 3))
    with pytest.raises(ValueError, match="in_modes 2x2 multiply to 4"):
        TTConv2d.from_conv(nn.Conv2d(6, 6, 3), (2, 2), (2, 3))
    with pytest.raises(ValueError, match="dilation"):
        TTConv2d.from_conv(nn.Conv2d(6, 6, 3, dilation=2), (2, 3), (2, 3))
    with pytest.raises(ValueError, match="rel_error"):
        TTConv2d.from_conv(nn.Conv2d(6, 6, 3), (2, 3), (2, 3), rel_error=1.5)


def test_tt_matrix_rounds_and_comes_back():
    layer = random_layer((2, 2, 3), (3, 5, 1), [9, 12, 3], 3, 1, 1)
    tt = layer.tt_matrix()
    assert tt.in_modes == (9, 2, 2, 3) and tt.out_modes == (1, 3, 5, 1) and tt.ranks == layer.ranks
    torch.testing.assert_close(tt.to_dense().reshape(15, 3, 3, 12).permute(0, 3, 1, 2), layer.to_dense().detach())
    rounded = tt.round(max_rank=2)
    again = TTConv2d.from_tt(rounded, 3, 1, 1, bias=layer.bias)
    assert again.ranks == (2, 2, 2) and again.approximation_error == rounded.approximation_error
    with torch.no_grad():
        relative = torch.linalg.vector_norm(again.to_dense() - layer.to_dense()) / torch.linalg.vector_norm(layer.to_dense())
    assert float(relative) == pytest.approx(rounded.approximation_error, rel=1e-6)
    with pytest.raises(ValueError, match="needs 25x2x2x3"):
        TTConv2d.from_tt(tt, 5, 1, 2)
    with pytest.raises(ValueError, match="TTMatrix"):
        TTConv2d.from_tt(layer.to_dense(), 3)


# ---------------------------------------------------------------------------- init
@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("init", ["he", "glorot"])
def test_init_gives_the_dense_std_for_every_depth(d, init):
    """The mean square of the rebuilt kernel over seeds estimates its variance, sigma^2; its standard error
    comes from the spread between seeds (the entries of one kernel are correlated through the cores), so
    the estimate must lie within 4 standard errors (a 1-in-15,000 false alarm for a normal mean)."""
    in_modes, out_modes = (2, 3, 2, 2)[:d], (3, 2, 2, 2)[:d]
    seeds = 48
    squares = []
    for seed in range(seeds):
        layer = TTConv2d(in_modes, out_modes, 3, 3, init=init, dtype=torch.float64)
        layer.reset_parameters(torch.Generator().manual_seed(seed))
        squares.append(float(layer.to_dense().detach().pow(2).mean()))
    squares = torch.tensor(squares, dtype=torch.float64)
    sigma = target_std(init, layer.in_channels * 9, layer.out_channels * 9)
    standard_error = float(squares.std()) / math.sqrt(seeds)
    assert abs(float(squares.mean()) - sigma**2) < 4 * standard_error
    assert standard_error < 0.2 * sigma**2  # the test can tell a wrong std (a factor 2 in the variance) apart


# ---------------------------------------------------------------------------- FLOPs and the cost model
@pytest.mark.parametrize("strategy", ["channels", "spatial", "im2col", "dense"])
@pytest.mark.parametrize("case", [((2, 2, 3), (3, 5, 1), [2, 3, 2], (3, 5), 2, (1, 2)), ((4, 8), (8, 4), 4, 3, 1, 1)])
def test_the_cost_models_flops_are_those_torch_counts(strategy, case):
    layer = random_layer(*case, strategy=strategy)
    inputs = torch.randn(5, layer.in_channels, 10, 9, dtype=torch.float64)
    costs = conv_forward.conv_costs_for(layer.conv_shape, 5, 10, 9, True, torch.float64)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(inputs)
    assert counter.get_total_flops() == costs[strategy]["flops"]


def _fake_speeds(**changes) -> conv_costs.ConvSpeeds:
    base = dict(description="fake", dense_conv_flops=1e11, depthwise_bytes=1e10, multiplier_bytes=1e10,
                stream_bytes=1e10, conv_call_s=1e-5, stream_call_s=1e-6, gemm_scale=1.0, chunk_bytes=1 << 22)
    return conv_costs.ConvSpeeds(**{**base, **changes})


@pytest.mark.parametrize("changes, expected", [
    ({"dense_conv_flops": 1e16}, "dense"),
    ({"dense_conv_flops": 1e6, "multiplier_bytes": 1e4, "stream_bytes": 1e6}, "channels"),
    ({"dense_conv_flops": 1e6, "depthwise_bytes": 1e4, "stream_bytes": 1e6}, "spatial"),
])
def test_auto_follows_the_cost_model(changes, expected):
    speeds = _fake_speeds(**changes)
    layer = random_layer((4, 8), (8, 4), 4, 3, 1, 1)
    conv_forward.set_conv_speeds(speeds)
    try:
        costs = conv_costs.conv_strategy_costs((4, 8), (8, 4), (3, 3), layer.ranks, 8, 16, 16, (1, 1), (1, 1), True, 8,
                                               speeds=speeds)
        plan = conv_forward.plan_conv(layer.conv_shape, 8, 16, 16, True, torch.float64)
        assert plan.strategy == conv_costs.best_conv_strategy(costs) == expected
        assert plan.source == "model" and plan.direction == costs[expected].get("direction", "")
    finally:
        conv_forward.set_conv_speeds(None)


def test_a_stored_kernel_serves_inference_until_the_cores_change():
    layer = random_layer((2, 3), (5, 1), 3, 3, 1, 1)
    inputs = torch.randn(4, 6, 8, 8, dtype=torch.float64)
    conv_forward.set_conv_speeds(_fake_speeds(dense_conv_flops=1e16))  # a stored kernel always pays
    try:
        with torch.no_grad():
            layer(inputs)
            assert layer._stored is not None and layer._stored[2] is None  # not rebuilt on the first forward
            layer(inputs)
            first = layer._stored[2]
            assert first is not None
            layer.cores[1].mul_(2.0)  # an in-place update bumps the version: rebuilt on the second forward after
            layer(inputs)
            output = layer(inputs)
        assert layer._stored[2] is not first
        expected = F.conv2d(inputs, layer.to_dense(), layer.bias, 1, 1)
        torch.testing.assert_close(output, expected, rtol=0, atol=1e-11)
        layer(inputs)  # autograd on: the stored kernel is dropped
        assert layer._stored is None
    finally:
        conv_forward.set_conv_speeds(None)


# ---------------------------------------------------------------------------- ranks and arguments
def test_ranks_are_clipped_to_the_useful_ones_with_one_warning():
    with pytest.warns(UserWarning, match="clipped") as caught:
        layer = TTConv2d((2, 3), (5, 1), 100, 3)
    assert len(caught) == 1
    assert layer.ranks == (9, 3) and layer.clipped_ranks == ((1, 100, 9), (2, 100, 3))
    assert TTConv2d((2, 3), (5, 1), None, 1).ranks == (1, 3)  # a 1x1 kernel: r_0 <= 1
    assert layer.param_count() == conv_param_count((2, 3), (5, 1), (3, 3), 100) == sum(c.numel() for c in layer.cores)
    assert layer.param_count(include_bias=True) == layer.param_count() + 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_modes=(2, 3), out_modes=(6,)), "same number"),
    (dict(in_modes=(2,) * 12, out_modes=(1,) * 12), "11 channel modes"),
    (dict(in_modes=(2, 0), out_modes=(2, 3)), "below 1"),
    (dict(in_modes=(2, 2.5), out_modes=(2, 3)), "whole"),
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(kernel_size=64), "kernel_size"),
    (dict(stride=1.5), "stride"),
    (dict(padding=-1), "padding"),
    (dict(padding="same", stride=2), "same"),
    (dict(dilation=2), "not written yet"),
    (dict(padding_mode="reflect"), "not written yet"),
    (dict(init="orthogonal"), "init"),
    (dict(strategy="fastest"), "strategy"),
    (dict(ranks=0), "below 1"),
    (dict(ranks=[2, 2, 2]), "2 internal ranks"),
])
def test_bad_arguments_are_refused_with_the_field_named(kwargs, match):
    arguments = dict(in_modes=(2, 3), out_modes=(5, 1), ranks=2, kernel_size=3)
    with pytest.raises(ValueError, match=match):
        TTConv2d(**{**arguments, **kwargs})


def test_padding_words_and_pairs():
    assert TTConv2d((2, 3), (5, 1), 2, (3, 5), padding="same").padding == (1, 2)
    assert TTConv2d((2, 3), (5, 1), 2, 3, padding="valid").padding == (0, 0)
    assert TTConv2d((2, 3), (5, 1), 2, 3, stride=(2, 1), padding=(1, 2)).stride == (2, 1)


def test_bad_inputs_name_the_expected_shape():
    layer = TTConv2d((2, 3), (5, 1), 2, 3)
    with pytest.raises(ValueError, match=r"\(batch, 6, height, width\)"):
        layer(torch.randn(6, 8))
    with pytest.raises(ValueError, match="6 input channels"):
        layer(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match="smaller than the 3x3 kernel"):
        layer(torch.randn(2, 6, 2, 8))


def test_extra_repr_names_the_layer():
    text = repr(TTConv2d((2, 3), (5, 1), 2, (3, 5), stride=2, padding=1))
    assert "in_modes=2x3, out_modes=5x1, ranks=[2, 2], kernel_size=(3, 5), stride=(2, 2), padding=(1, 1)" in text


# ---------------------------------------------------------------------------- compilers and files
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_torch_compile_traces_without_graph_breaks(strategy):
    torch._dynamo.reset()
    layer = random_layer((2, 3), (5, 1), 3, 3, 1, 1, strategy=strategy)
    inputs = torch.randn(4, 6, 7, 7, dtype=torch.float64)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(inputs), layer(inputs), rtol=0, atol=1e-11)
    x = inputs.clone().requires_grad_()
    compiled(x).sum().backward()
    x_ref = inputs.clone().requires_grad_()
    layer(x_ref).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-11)
    torch._dynamo.reset()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_torch_export_with_a_dynamic_batch(strategy):
    from torch.export import Dim

    layer = random_layer((2, 3), (5, 1), 3, 3, 2, 1, strategy=strategy)
    inputs = torch.randn(4, 6, 7, 7, dtype=torch.float64)
    program = torch.export.export(layer, (inputs,), dynamic_shapes={"inputs": {0: Dim("batch", min=2, max=64)}})
    other = torch.randn(9, 6, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(program.module()(other), layer(other), rtol=0, atol=1e-11)


def test_save_and_load_round_trip(tmp_path):
    layer = random_layer((2, 2, 3), (3, 5, 1), [2, 3, 2], (3, 5), 2, (1, 2), strategy="spatial")
    path = tmp_path / "conv.pt"
    layer.save(path)
    loaded = TTConv2d.load(path)
    assert loaded.export_spec() == layer.export_spec()
    inputs = torch.randn(2, 12, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(loaded(inputs), layer(inputs), rtol=0, atol=0)
    torch.save({"format": "ttexplore.TTConv2d/1", "spec": {**layer.export_spec(), "ranks": [50, 3, 2]},
                "state_dict": layer.state_dict()}, path)
    with pytest.raises(ValueError, match="invalid TTConv2d spec"):
        TTConv2d.load(path)
    torch.save({"format": "ttexplore.TTLinear/1"}, path)
    with pytest.raises(ValueError, match="not a TTConv2d file"):
        TTConv2d.load(path)


def test_the_public_name_and_the_tt_matrix_type():
    import ttexplore

    assert ttexplore.TTConv2d is TTConv2d and "TTConv2d" in ttexplore.__all__
    assert isinstance(random_layer((2, 3), (5, 1), 2, 3, 1, 1).tt_matrix(), TTMatrix)
