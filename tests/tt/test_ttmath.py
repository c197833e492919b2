"""Pure-Python accounting: counts, ranks, FLOPs (checked against torch's FlopCounterMode)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ttexplore.tt import ttmath


def test_seed_counts_for_4x8x8x4():
    # team 28's reported layer weights for 4x8x8x4 -> 4x8x8x4 at max rank 1..4
    counts = [ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), rank) for rank in (1, 2, 3, 4)]
    assert counts == [160, 576, 1248, 2176]


def test_param_count_by_hand_uneven():
    # cores 1x2x3x2, 2x5x1x4, 4x3x2x1
    assert ttmath.param_count((2, 5, 3), (3, 1, 2), [2, 4]) == 1 * 2 * 3 * 2 + 2 * 5 * 1 * 4 + 4 * 3 * 2 * 1
    assert ttmath.param_count((2, 5, 3), (3, 1, 2), [2, 4], bias=True) == 76 + 6


def test_max_useful_ranks_and_clipping():
    assert ttmath.max_useful_ranks((4, 8, 8, 4), (4, 8, 8, 4)) == [16, 1024, 16]
    plan = ttmath.plan_ranks((4, 8, 8, 4), (4, 8, 8, 4), 20)
    assert plan.ranks == (16, 20, 16)
    assert plan.clipped == ((1, 20, 16), (3, 20, 16))
    assert "r_1: 20 -> 16" in plan.describe_clipping()
    assert ttmath.plan_ranks((2, 2), (2, 2), None).ranks == (4,)
    assert ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), 10_000) == ttmath.param_count((4, 8, 8, 4), (4, 8, 8, 4), None)


def test_full_rank_count_is_at_least_dense_count():
    # at maximal ranks the TT format is exact, so it can not have fewer weights than needed
    for modes in [(2, 3), (4, 4, 4), (2, 2, 2, 2)]:
        dense = ttmath.dense_param_count(ttmath.prod(modes), ttmath.prod(modes))
        assert ttmath.param_count(modes, modes, None) >= dense


@pytest.mark.parametrize(
    "ranks, message",
    [([1, 2], "has 2 entries"), (0, "below 1"), ([2, 0, 2], "below 1"), (True, "not a bool")],
)
def test_bad_ranks_messages(ranks, message):
    with pytest.raises(ValueError, match=message):
        ttmath.plan_ranks((4, 8, 8, 4), (4, 8, 8, 4), ranks)


def test_mismatched_modes_message():
    with pytest.raises(ValueError, match="same number of modes"):
        ttmath.check_modes((4, 8), (2, 2, 2))


def test_compression_both_ways():
    rate = ttmath.compression((4, 8, 8, 4), (4, 8, 8, 4), 1)
    assert rate == pytest.approx(160 / 1024**2)
    assert ttmath.compression_factor((4, 8, 8, 4), (4, 8, 8, 4), 1) == pytest.approx(1024**2 / 160)
    assert ttmath.matrix_rank_param_count(1024, 1024, 4) == 4 * 2048


def test_counting_modules_do_not_import_torch():
    code = (
        "import sys; import ttexplore, ttexplore.tt.ttmath, ttexplore.tt.shapes, ttexplore.runs.config; "
        "ttexplore.param_count((4,8,8,4),(4,8,8,4),2); "
        "print('torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


@pytest.mark.parametrize(
    "in_modes, out_modes, ranks, batch",
    [((4, 8, 8, 4), (4, 8, 8, 4), 3, 5), ((2, 7, 3), (5, 2, 4), [2, 3], 3), ((6,), (5,), None, 2), ((2, 3, 2, 2, 3), (3, 2, 1, 2, 2), 2, 1)],
)
def test_flops_match_flop_counter(in_modes, out_modes, ranks, batch):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ttexplore.nn.layers import TTLinear
    from ttexplore.nn.kernels import tt_matmul_ltr, tt_matmul_rtl, tt_to_dense

    layer = TTLinear(in_modes, out_modes, ranks, bias=False)
    cores = list(layer.cores)
    inputs = torch.randn(batch, layer.in_features)

    def counted(fn):
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    assert counted(lambda: tt_matmul_ltr(inputs, cores)) == ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "ltr")
    assert counted(lambda: tt_matmul_rtl(inputs, cores)) == ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "rtl")
    assert counted(lambda: tt_to_dense(cores)) == ttmath.reconstruction_flops(in_modes, out_modes, ranks)
    dense = ttmath.dense_flops(layer.in_features, layer.out_features, batch)
    assert counted(lambda: inputs @ tt_to_dense(cores).t()) == ttmath.tt_rebuild_flops(in_modes, out_modes, ranks, batch)
    assert dense == 2 * batch * layer.in_features * layer.out_features
