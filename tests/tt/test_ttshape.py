"""ttexplore.tt.ttshape: one value for a TT shape and its one text form."""

from __future__ import annotations

import pytest

from ttexplore.tt.shapes import parse_modes
from ttexplore.tt.ttmath import param_count
from ttexplore.tt.ttshape import TTShape, layer_text, modes_text, ranks_text


@pytest.mark.parametrize("modes, text", [
    ((4, 8, 8, 4), "4x8x8x4"),
    ((2,) * 10, "2^10"),
    ((4, 4, 4, 4, 4), "4^5"),
    ((4, 4, 4, 4), "4x4x4x4"),  # fewer than five equal modes stay spelled out
    ((1024,), "1024"),
])
def test_modes_text_reads_back_through_parse_modes(modes, text):
    assert modes_text(modes) == text
    assert parse_modes(text) == modes


def test_layer_and_ranks_text():
    assert layer_text((4, 8, 8, 4), (4, 8, 8, 4)) == "4x8x8x4"
    assert layer_text((4, 7, 4, 7), (5, 5, 8, 4)) == "4x7x4x7->5x5x8x4"
    assert ranks_text(4) == "r=4" and ranks_text((3, 3, 3)) == "r=3"
    assert ranks_text((2, 4, 2)) == "r=2,4,2" and ranks_text(None) == "r=max" and ranks_text(()) == ""


def test_shape_clips_ranks_and_counts_like_ttmath():
    shape = TTShape.of((4, 8, 8, 4), (4, 8, 8, 4), 100)
    assert shape.ranks == (16, 100, 16)  # r_1 and r_3 are clipped to 4*4 = 16
    assert shape.param_count() == param_count((4, 8, 8, 4), (4, 8, 8, 4), 100)
    assert str(shape) == "4x8x8x4 r=16,100,16"
    assert str(TTShape.of((4, 8, 8, 4), (4, 8, 8, 4), 4)) == "4x8x8x4 r=4"
    assert (shape.in_features, shape.out_features, shape.d, shape.max_rank) == (1024, 1024, 4, 100)


def test_one_core_layer_has_no_rank_text():
    shape = TTShape.of((1024,), (1024,), 8)
    assert shape.ranks == () and str(shape) == "1024" and shape.max_rank == 1


def test_bad_shapes_name_the_field():
    with pytest.raises(ValueError, match="out_modes"):
        TTShape.of((4, 8), (4, 8, 2), 2)
    with pytest.raises(ValueError, match="ranks"):
        TTShape.of((4, 8), (4, 8), (2, 2))
