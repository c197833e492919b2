"""TTLinear at the edges: an empty batch behaves like nn.Linear; from_linear refuses targets it can not mean."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ttexplore.nn import forward
from ttexplore.nn.layers import MatrixRankLinear, TTLinear


@pytest.mark.parametrize("strategy", forward.STRATEGIES)
@pytest.mark.parametrize("bias", [True, False])
def test_an_empty_batch_gives_zero_rows_and_zero_gradients_like_nn_linear(strategy, bias):
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), ranks=4, bias=bias, strategy=strategy)
    reference = nn.Linear(1024, 1024, bias=bias)
    inputs = torch.zeros(0, 1024, requires_grad=True)
    output, expected = layer(inputs), reference(inputs)
    assert output.shape == expected.shape == (0, 1024) and output.dtype == expected.dtype
    output.sum().backward()
    assert inputs.grad.shape == (0, 1024)
    assert all(core.grad is not None and core.grad.shape == core.shape and not core.grad.any() for core in layer.cores)
    if bias:
        assert layer.bias.grad.shape == (1024,) and not layer.bias.grad.any()


def test_empty_batches_in_other_shapes_and_without_grad():
    layer = TTLinear((4, 7), (5, 5), ranks=2)
    assert layer(torch.zeros(3, 0, 28)).shape == (3, 0, 25)
    with torch.no_grad():
        assert layer(torch.zeros(0, 28, dtype=torch.float32)).shape == (0, 25)
    double = TTLinear((4, 7), (5, 5), ranks=2, dtype=torch.float64)
    assert double(torch.zeros(0, 28, dtype=torch.float64)).dtype == torch.float64
    assert MatrixRankLinear(28, 25, 3)(torch.zeros(0, 28)).shape == (0, 25)


def test_an_empty_batch_in_a_training_step():
    layer = TTLinear((4, 4), (4, 4), ranks=2)
    optimizer = torch.optim.Adam(layer.parameters())
    before = [core.detach().clone() for core in layer.cores]
    layer(torch.zeros(0, 16)).sum().backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, layer.cores))  # zero gradients: Adam moves nothing


LINEAR = nn.Linear(16, 16)


@pytest.mark.parametrize("rel_error", [-0.1, math.nan, math.inf, 1.0, 1.5, True, "0.1"])
def test_from_linear_refuses_a_meaningless_error_target(rel_error):
    with pytest.raises(ValueError, match=r"rel_error .* must be"):
        TTLinear.from_linear(LINEAR, (4, 4), (4, 4), rel_error=rel_error)


@pytest.mark.parametrize("ranks", [0, -2, [0], [True], 2.5])
def test_from_linear_refuses_rank_caps_below_one(ranks):
    with pytest.raises(ValueError, match="at least 1"):
        TTLinear.from_linear(LINEAR, (4, 4), (4, 4), ranks=ranks)


def test_from_linear_still_compresses_within_the_target():
    layer = TTLinear.from_linear(LINEAR, (4, 4), (4, 4), rel_error=0.0)
    assert layer.approximation_error < 1e-5
    assert TTLinear.from_linear(LINEAR, (4, 4), (4, 4), ranks=2, rel_error=0.5).approximation_error <= 1


# ---------------------------------------------------------------------------- the house limits in the constructors
@pytest.mark.parametrize("arguments,named", [
    (((2,) * 18, (2,) * 18, 2), "in_modes has 18 modes, more than the 12"),
    (((4, 8), (4, 8), 2.5), "ranks 2.5 is not a whole number"),
    (((4.7, 8), (4, 8), 2), r"in_modes \(4.7, 8\): mode 4.7 is not a whole number"),
    (((4, 8), (5, 8.5), 2), r"out_modes \(5, 8.5\): mode 8.5 is not a whole number"),
    (((True, 8), (4, 8), 2), "in_modes .* mode True is a yes/no value"),
    (((4, 8), (4, 8), True), "ranks must be an int, a list of ints, or None, not a bool"),
    (((4, 8, 8), (4, 8, 8), [2, True]), "ranks .* rank True is a yes/no value"),
    (((4, 8, 8), (4, 8, 8), [2, 1.5]), "ranks .* rank 1.5 is not a whole number"),
    (((2**41,), (2,), None), "in_modes multiply to .* more than the 2\\^40"),
    (((4, 8, 8), (4, 8, 8), [2, 2, 2]), "ranks .* has 3 entries but a 3-core layer has 2 internal ranks"),
])
def test_tt_layer_refuses_what_the_cli_refuses(arguments, named):
    with pytest.raises(ValueError, match=named):
        TTLinear(*arguments)


def test_whole_floats_are_whole_numbers():
    layer = TTLinear((4.0, 8), (4, 8.0), 2.0)
    assert layer.in_modes == (4, 8) and layer.out_modes == (4, 8) and layer.ranks == (2,)
    assert all(isinstance(value, int) for value in layer.in_modes + layer.out_modes + layer.ranks)


@pytest.mark.parametrize("arguments,named", [
    ((10, 10, 2.5), "rank 2.5 is not a whole number"),
    ((True, 10, 2), "in_features True is a yes/no value"),
    ((10, 10.5, 2), "out_features 10.5 is not a whole number"),
    ((10, 10, 0), "rank 0 is below 1"),
    ((2**41, 10, 2), "in_features .* is more than 2\\^40"),
])
def test_matrix_rank_layer_refuses_what_the_cli_refuses(arguments, named):
    with pytest.raises(ValueError, match=named):
        MatrixRankLinear(*arguments)


@pytest.mark.parametrize("layer", [TTLinear((4, 8), (4, 8), 2), MatrixRankLinear(32, 32, 2)], ids=["tt", "matrix-rank"])
def test_a_0d_input_gets_the_wrong_features_message(layer):
    with pytest.raises(ValueError) as wrong_width:
        layer(torch.zeros(3, 31))
    with pytest.raises(ValueError) as scalar:
        layer(torch.tensor(1.0))
    assert str(scalar.value) == str(wrong_width.value).replace("(3, 31)", "()")


def test_a_12_mode_layer_plans_its_first_forward_in_bounded_work():
    layer = TTLinear((2,) * 12, (2,) * 12, ranks=2)
    with torch.no_grad():
        assert layer(torch.randn(3, 4096)).shape == (3, 4096)
    costs = forward.strategy_costs(layer.in_modes, layer.out_modes, layer.ranks, 3)
    # the blocking search priced O(d^3) candidates (about 2,000 over its 6 searches: 4 directions, and the
    # batched one also in chunks of 1 and 2 rows), not 2^11 = 2,048 blockings per search, each a list of
    # O(d) operations
    assert costs["blocked"]["candidates"] <= 2 * 12**3
