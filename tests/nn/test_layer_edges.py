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
