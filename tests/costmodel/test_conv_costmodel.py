"""The TT convolution's cost model (pure Python): operation counts by hand, chunks, the stored kernel, speeds files;
and the conv shape arithmetic it stands on."""

from __future__ import annotations

import dataclasses

import pytest

from ttexplore.costmodel import conv as conv_costs
from ttexplore.tt.convshape import (check_conv_args, conv_core_shapes, conv_output_size, conv_param_count,
                                    dense_conv_flops, dense_conv_param_count, plan_conv_ranks)


def test_check_conv_args_reads_ints_pairs_and_words():
    args = check_conv_args("2x3", [5, 1], 3, (2, 1), "valid")
    assert (args.in_modes, args.out_modes, args.kernel_size, args.stride, args.padding) == (
        (2, 3), (5, 1), (3, 3), (2, 1), (0, 0))
    assert check_conv_args((4,), (4,), (3, 5), 1, "same").padding == (1, 2)
    assert check_conv_args((4,), (4,), 3, 1, (1, 2)).padding == (1, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        check_conv_args((4,), (4,), True)
    with pytest.raises(ValueError, match="stride"):
        check_conv_args((4,), (4,), 3, 0)
    with pytest.raises(ValueError, match="padding"):
        check_conv_args((4,), (4,), 3, 1, 2.5)


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (32, 3, 1, 1, 32), (32, 3, 2, 1, 16), (7, 5, 2, 0, 2), (9, 3, 2, 2, 6), (4, 5, 1, 0, 0),
])
def test_output_side(size, kernel, stride, padding, expected):
    # (size + 2 padding - kernel) // stride + 1, as nn.Conv2d documents (0: the kernel does not fit)
    assert conv_output_size(size, size, (kernel, kernel), (stride, stride), (padding, padding)) == (expected, expected)


def test_core_shapes_counts_and_rank_limits():
    shapes = conv_core_shapes((4, 8, 8), (4, 8, 8), (3, 3), 4)
    assert shapes == [(1, 9, 1, 4), (4, 4, 4, 4), (4, 8, 8, 4), (4, 8, 8, 1)]
    assert conv_param_count((4, 8, 8), (4, 8, 8), (3, 3), 4) == 36 + 256 + 1024 + 256
    assert conv_param_count((4, 8, 8), (4, 8, 8), (3, 3), 4, bias=True) == 36 + 256 + 1024 + 256 + 256
    assert dense_conv_param_count(256, 256, (3, 3), bias=True) == 256 * 256 * 9 + 256
    assert dense_conv_flops(256, 256, (3, 3), (32, 32), 16) == 2 * 16 * 32 * 32 * 256 * 256 * 9
    # r_0 <= min(kh kw, C_in C_out); r_1 <= the second unfolding's smaller side
    plan = plan_conv_ranks((2, 3), (5, 1), (1, 1), None)
    assert plan.ranks == (1, 3) and plan.max_useful == (1, 3)


def _layer(in_modes=(2, 3), out_modes=(5, 1), kernel=(3, 3), stride=(1, 1), padding=(1, 1), ranks=(3, 2)):
    return conv_costs.ConvLayerShape(in_modes, out_modes, kernel, stride, padding, ranks)


def test_the_channels_first_operations_by_hand():
    # one channel core (r_0, 6, 4, 1): the sweep is one (r_0 4, 6) @ (6, B L) product, then the depthwise step
    layer = _layer((6,), (4,), (3, 3), (1, 1), (1, 1), (3,))
    ops, largest = conv_costs.conv_strategy_ops("channels", "rtl", layer, 2, 5, 7, bias=False)
    assert ops[0] == ("gemm", 3 * 4, 6, 2 * 35, "core", "input")
    assert ops[1] == ("spatial_conv", "depthwise", 2 * (2 * 3 * 4) * 35 * 9, 2 * 3 * 4 * 35, 2 * 3 * 4 * 35)
    assert ops[2] == ("stream", "sum", 2 * 3 * 4 * 35, 2 * 4 * 35)
    assert largest == 2 * 3 * 4 * 35


def test_the_spatial_first_operations_by_hand():
    layer = _layer((6,), (4,), (3, 3), (2, 2), (0, 0), (3,))
    ops, _ = conv_costs.conv_strategy_ops("spatial", "ltr", layer, 1, 7, 7, bias=True)
    out_pixels = 3 * 3
    assert ops[0] == ("spatial_conv", "multiplier", 2 * 3 * 6 * out_pixels * 9, 6 * 49, 3 * 6 * out_pixels)
    assert ops[1] == ("stream", "permute", 3 * 6 * out_pixels, 3 * 6 * out_pixels)
    assert ops[2] == ("gemm", 4, 3 * 6, out_pixels, "core", "state")  # (m_1, r_0 n_1) @ (r_0 n_1, L')
    assert ops[3] == ("stream", "bias", 4 * out_pixels, 4 * out_pixels)


def test_every_strategy_is_priced_and_chunks_respect_the_budget():
    layer = _layer((4, 8, 8), (4, 8, 8), ranks=(4, 4, 4))
    speeds = dataclasses.replace(conv_costs.default_conv_speeds(), chunk_bytes=8 << 20)
    costs = conv_costs.conv_strategy_costs(layer.in_modes, layer.out_modes, layer.kernel_size, layer.ranks, 16, 32, 32,
                                           layer.stride, layer.padding, True, 4, speeds=speeds)
    assert set(costs) == set(conv_costs.CONCRETE_CONV_STRATEGIES)
    for name in conv_costs.SWEEP_STRATEGIES:
        entry = costs[name]
        _, per_image = conv_costs.conv_strategy_ops(name, entry["direction"], layer, 1, 32, 32, True)
        assert entry["chunk"] == max(1, min(16, (8 << 20) // (per_image * 4)))
        assert entry["seconds"] == entry["forward_seconds"] > 0
    assert costs["dense"]["flops"] > dense_conv_flops(256, 256, (3, 3), (32, 32), 16)  # plus rebuilding the kernel
    trained = conv_costs.conv_strategy_costs(layer.in_modes, layer.out_modes, layer.kernel_size, layer.ranks, 16, 32, 32,
                                             layer.stride, layer.padding, True, 4, training=True, speeds=speeds)
    assert all(trained[name]["seconds"] > costs[name]["seconds"] for name in costs)


def test_the_stored_kernel_is_one_dense_convolution():
    stored = conv_costs.stored_kernel_costs(256, 256, (3, 3), 16, 32, 32)
    assert stored["flops"] == dense_conv_flops(256, 256, (3, 3), (32, 32), 16)
    assert stored["weight_bytes"] == 256 * 256 * 9 * 4 and stored["seconds"] > 0


def test_speeds_files_round_trip(tmp_path):
    speeds = conv_costs.default_conv_speeds()
    path = tmp_path / "conv.json"
    path.write_text(conv_costs.conv_speeds_json(speeds))
    assert conv_costs.load_conv_speeds(path) == speeds
    path.write_text('{"description": "x", "warp_factor": 9}')
    with pytest.raises(ValueError, match="warp_factor"):
        conv_costs.load_conv_speeds(path)
