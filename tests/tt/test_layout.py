"""The permuted-copy layout the kernels and the cost model share."""

from __future__ import annotations

from ttexplore.tt.layout import WIDE_COPY_BYTES, WIDE_COPY_MAX_BYTES, CopyPlan, permuted_copy_plan


def test_size_one_axes_drop_and_adjacent_axes_merge():
    assert permuted_copy_plan((6, 5, 1), (1, 0, 2), 4) == CopyPlan((6, 5), (1, 0), False)
    # axes 1 and 2 stay adjacent: one (6, 20) -> (20, 6) transpose
    assert permuted_copy_plan((6, 4, 5), (1, 2, 0), 4) == CopyPlan((6, 20), (1, 0), False)


def test_an_unmoved_memory_order_needs_no_copy():
    assert permuted_copy_plan((3, 4), (0, 1), 4) is None
    assert permuted_copy_plan((3, 1, 4), (1, 0, 2), 4) is None


def test_an_unmoved_inner_block_of_16_to_128_bytes_moves_as_wide_words():
    plan = permuted_copy_plan((100, 8, 4), (1, 0, 2), 4)  # 16-byte inner blocks
    assert plan.wide and plan.shape == (100, 8, 4 * 4 // WIDE_COPY_BYTES)
    assert permuted_copy_plan((100, 8, 2), (1, 0, 2), 8).wide  # two doubles
    assert not permuted_copy_plan((100, 8, 1), (1, 0, 2), 16).wide  # one element: nothing to gain
    too_wide = WIDE_COPY_MAX_BYTES // 4 * 2
    assert not permuted_copy_plan((100, 8, too_wide), (1, 0, 2), 4).wide
    assert not permuted_copy_plan((100, 8, 6), (1, 0, 2), 4).wide  # 24 bytes: not whole words
