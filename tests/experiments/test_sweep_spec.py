"""ttexplore.experiments.sweep.spec: shapes and their labels, number lists, grid expansion, the cost estimate."""

from __future__ import annotations

import pytest

from ttexplore.tt.ttshape import layer_text
from ttexplore.experiments import sweep
from ttexplore.runs.config import ConfigError


def test_parse_shapes_and_labels():
    shapes = sweep.parse_shapes("4x8x8x4, 2^10; 8x8x8x6->10^4\n32x16x6:100x10x10, 4x8x8x4")
    assert [shape.label for shape in shapes] == ["4x8x8x4", "2^10", "8x8x8x6->10x10x10x10", "32x16x6->100x10x10"]
    assert shapes[1].in_modes == (2,) * 10 and shapes[2].out_modes == (10, 10, 10, 10)
    assert sweep.SweepShape((4,) * 5, (4,) * 5).label == layer_text((4,) * 5, (4,) * 5) == "4^5"  # the house text form
    assert sweep.parse_int_list("1-3,5,2", "ranks") == (1, 2, 3, 5)
    for bad, field in (("4x8->2x2x2", "shapes"), ("4xa", "shapes"), ("", "shapes")):
        with pytest.raises(ConfigError) as error:
            sweep.parse_shapes(bad)
        assert error.value.field == field
    with pytest.raises(ConfigError, match="ranks"):
        sweep.parse_int_list("one", "ranks")


def test_expand_counts_baselines_and_dedup():
    spec = sweep.make_spec("grid", "mnist5k", "4x8x8x4, 32x32, 2^10, 4x8x8x4", ranks="1,2,2", seeds="0,1")
    grid = sweep.expand(spec)
    # 3 distinct shapes x 2 ranks x 2 seeds, + (1 dense + 2 matrix ranks) x 2 seeds
    assert grid.counts() == {"tt": 12, "dense": 2, "matrix_rank": 4}
    assert len({cell.key for cell in grid.cells}) == len(grid.cells)
    dense = [cell for cell in grid.cells if cell.config.layers[0].name == "dense"]
    assert {cell.config.layer_params() for cell in dense} == {1024 * 1024}
    matrix = [cell for cell in grid.cells if cell.config.layers[0].name == "matrix_rank"]
    assert sorted({(cell.rank, cell.config.layer_params()) for cell in matrix}) == [(1, 2048), (2, 4096)]
    assert all(cell.config.pad_to == 32 and cell.config.evals_per_epoch == 1 for cell in grid.cells)
    assert sweep.expand(sweep.make_spec("grid", "mnist5k", "32x32", ranks="1", baselines=False)).counts() == {"tt": 1}


def test_ranks_above_the_useful_ones_give_one_cell():
    # 2x32 -> 2x32 has one internal rank, at most min(2*2, 32*32) = 4: ranks 4, 5 and 9 build the same layer
    grid = sweep.expand(sweep.make_spec("clip", "digits", "2x32", ranks="3,4,5,9", baselines=False))
    assert [cell.rank for cell in grid.cells] == [3, 4]
    assert any("trains as rank 4" in note for note in grid.notes)


def test_a_shape_that_does_not_fit_names_the_shape_and_dataset():
    with pytest.raises(ConfigError) as error:
        sweep.expand(sweep.make_spec("bad", "digits", "4x8x8x4", ranks="1"))
    assert error.value.field == "shapes" and "digits" in str(error.value) and "4x8x8x4" in str(error.value)


def test_estimated_cost_counts_flops_and_a_per_core_overhead():
    grid = sweep.expand(sweep.make_spec("cost", "mnist5k", "4x8x8x4, 2^10", ranks="1,4"))
    cost = {(cell.shape, cell.rank): sweep.estimated_cost(cell.config) for cell in grid.cells}
    assert cost[("4x8x8x4", 4)] > cost[("4x8x8x4", 1)] and cost[("2^10", 4)] > cost[("2^10", 1)]
    assert cost[("dense", None)] > cost[("4x8x8x4", 4)] > cost[("matrix rank", 4)]
    assert cost[("2^10", 1)] > cost[("4x8x8x4", 4)]  # ten small GEMMs cost more than their FLOPs say
    halved = grid.cells[0].config.replace(epochs=grid.cells[0].config.epochs // 2)
    assert sweep.estimated_cost(halved) == sweep.estimated_cost(grid.cells[0].config) / 2


def test_matrix_rank_baselines_are_clipped_like_tt_ranks():
    grid = sweep.expand(sweep.make_spec("clip", "digits", "8x8", "100000", pad_to=None, epochs=1))
    matrix = [cell for cell in grid.cells if cell.config.layers[0].name == "matrix_rank"]
    assert [(cell.rank, cell.config.layers[0].rank, cell.config.layer_params()) for cell in matrix] == [(64, 64, 64 * 128)]
    assert any("matrix-rank baseline 64x64: rank 100000" in note for note in grid.notes)
