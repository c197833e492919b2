"""TT4dConv2d (the naive TT of the 4-D kernel, Garipov et al.'s baseline) and TT-rounding of both TT convolutions:
the kernel against its definition, the forward against F.conv2d of the rebuilt kernel in float64, gradients,
TT-SVD exact at full rank, init std, clipping, and rounded() for rank schedules."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ttexplore import TTConv2d
from ttexplore.nn.tt4d import TT4dConv2d
from ttexplore.tt.init import target_std


def random_tt4d(in_channels=3, out_channels=5, ranks=(2, 3, 2), kernel_size=3, stride=1, padding=1, seed=0):
    torch.manual_seed(seed)
    layer = TT4dConv2d(in_channels, out_channels, ranks, kernel_size, stride, padding, dtype=torch.float64)
    with torch.no_grad():
        for core in layer.cores:
            core.normal_(0.0, 0.7)
        layer.bias.normal_()
    return layer


def test_the_kernel_is_the_product_of_its_four_cores():
    layer = random_tt4d(3, 4, (2, 3, 2), (3, 2))
    first, second, third, fourth = (core.detach() for core in layer.cores)
    expected = torch.zeros(4, 3, 3, 2, dtype=torch.float64)
    for s, c, x, y in itertools.product(range(4), range(3), range(3), range(2)):
        # K(s, c, x, y) = G_1[s] G_2[c] G_3[x] G_4[y], a product of (1 x r_1)(r_1 x r_2)(r_2 x r_3)(r_3 x 1) matrices
        expected[s, c, x, y] = (first[:, s, :] @ second[:, c, :] @ third[:, x, :] @ fourth[:, y, :]).item()
    torch.testing.assert_close(layer.to_dense(), expected)


@pytest.mark.parametrize("kernel_size, stride, padding", [(3, 1, 1), (3, 2, 0), ((3, 5), (2, 1), (1, 2)), (1, 1, 0)])
def test_the_forward_is_conv2d_by_the_rebuilt_kernel(kernel_size, stride, padding):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r_3 above kw = 1 is clipped
        layer = random_tt4d(3, 5, (2, 3, 2), kernel_size, stride, padding)
    images = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    expected = F.conv2d(images, layer.to_dense().detach(), layer.bias.detach(), stride, padding)
    torch.testing.assert_close(layer(images), expected)
    assert layer(images[0]).shape == expected.shape[1:]
    assert tuple(expected.shape[-2:]) == layer.output_size(9, 8)


def test_gradcheck():
    layer = random_tt4d(2, 3, (2, 2, 2), 3, 1, 1)
    images = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in layer.named_parameters()]
    values = [parameter.detach().clone().requires_grad_() for _, parameter in layer.named_parameters()]

    def run(inputs, *parameters):
        return torch.func.functional_call(layer, dict(zip(names, parameters)), (inputs,))

    assert torch.autograd.gradcheck(run, (images, *values))


def test_from_conv_is_exact_at_full_rank_and_within_the_error_asked():
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1).double()
    exact = TT4dConv2d.from_conv(conv)
    assert exact.ranks == (6, 9, 3) and exact.approximation_error < 1e-12
    images = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(exact(images), conv(images))
    assert (exact.stride, exact.padding) == ((2, 2), (1, 1))
    rough = TT4dConv2d.from_conv(conv, rel_error=0.3)
    kernel_error = ((rough.to_dense() - conv.weight).norm() / conv.weight.norm()).detach()
    assert rough.approximation_error <= 0.3 + 1e-12 and abs(float(kernel_error) - rough.approximation_error) < 1e-9
    with pytest.raises(ValueError, match="plain convolution"):
        TT4dConv2d.from_conv(nn.Conv2d(4, 6, 3, groups=2))


@pytest.mark.parametrize("init", ["he", "glorot"])
def test_init_gives_the_dense_kernels_std(init):
    generator = torch.Generator().manual_seed(0)
    layer = TT4dConv2d(64, 64, (4, 4, 3), 3, init=init)
    samples = []
    for _ in range(20):
        layer.reset_parameters(generator)
        samples.append(layer.to_dense().detach().flatten())
    std = float(torch.cat(samples).std())
    assert abs(std / target_std(init, 64 * 9, 64 * 9) - 1) < 0.1


def test_ranks_are_clipped_with_one_warning_and_counted():
    with pytest.warns(UserWarning, match="clipped") as caught:
        layer = TT4dConv2d(8, 16, 100, 3)
    assert len(caught) == 1 and layer.ranks == (16, 9, 3)
    assert layer.clipped_ranks == ((1, 100, 16), (2, 100, 9), (3, 100, 3))
    assert layer.param_count() == 16 * 16 + 16 * 8 * 9 + 9 * 3 * 3 + 3 * 3
    assert layer.param_count(include_bias=True) == layer.param_count() + 16
    with pytest.raises(ValueError, match="kernel_size"):
        TT4dConv2d(8, 16, 2, 0)
    with pytest.raises(ValueError, match="expects images"):
        layer(torch.rand(2, 5, 4, 4))


def test_rounded_is_tt_svd_of_the_kernel_at_lower_ranks():
    layer = random_tt4d(4, 6, (6, 9, 3), 3)
    smaller = layer.rounded(max_rank=2)
    assert smaller.ranks == (2, 2, 2) and smaller.stride == layer.stride and smaller.padding == layer.padding
    truncated = TT4dConv2d.from_conv(_as_conv(layer), ranks=2)
    torch.testing.assert_close(smaller.to_dense(), truncated.to_dense())
    error = ((smaller.to_dense() - layer.to_dense()).norm() / layer.to_dense().norm()).detach()
    assert abs(float(error) - smaller.approximation_error) < 1e-9
    torch.testing.assert_close(smaller.bias, layer.bias)
    assert smaller.cores[0] is not layer.cores[0]


def _as_conv(layer: TT4dConv2d) -> nn.Conv2d:
    conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding).double()
    with torch.no_grad():
        conv.weight.copy_(layer.to_dense())
        conv.bias.copy_(layer.bias)
    return conv


def test_ttconv_rounded_keeps_the_layer_and_lowers_its_ranks():
    torch.manual_seed(2)
    conv = nn.Conv2d(8, 16, 3, padding=1).double()
    full = TTConv2d.from_conv(conv, (2, 4), (4, 4))
    smaller = full.rounded(max_rank=3)
    assert smaller.ranks == (3, 3) and smaller.kernel_size == full.kernel_size and smaller.padding == full.padding
    direct = TTConv2d.from_conv(conv, (2, 4), (4, 4), ranks=3)
    torch.testing.assert_close(smaller.to_dense(), direct.to_dense())  # rounding an exact TT is TT-SVD at those ranks
    error = ((smaller.to_dense() - conv.weight).norm() / conv.weight.norm()).detach()
    assert abs(float(error) - smaller.approximation_error) < 1e-9
    images = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(smaller(images), F.conv2d(images, smaller.to_dense(), conv.bias, 1, 1))
    assert full.rounded(rel_error=1e-12).ranks == full.ranks
