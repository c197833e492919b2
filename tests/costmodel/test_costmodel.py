"""The cost model alone (no torch): its machine file, its operation lists, the strategies it picks."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttexplore import costmodel
from ttexplore.costmodel import machine as machine_module
from ttexplore.costmodel.ops import BLOCKED_DIRECTIONS, block_shapes, blocked_ops, chunk_sizes, copy_geometry, copy_op
from ttexplore.tt import ttmath

PACKAGE = Path(costmodel.__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- purity
def test_cost_model_and_layout_import_without_torch():
    code = (
        "import sys\n"
        "from ttexplore import costmodel\n"
        "import ttexplore.tt.layout\n"
        "costs = costmodel.strategy_costs((2, 7, 8, 8, 7, 4), (4,) * 6, 4, 100)\n"
        "assert set(costs) == {'ltr', 'rtl', 'blocked', 'einsum', 'dense'}, costs\n"
        "print('torch' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_the_shipped_machines_and_the_pick_by_thread_count(monkeypatch):
    machines = machine_module.shipped_machines()
    assert machine_module.shipped_machines() is machines  # read once
    assert [machine.threads for machine in machines] == sorted({machine.threads for machine in machines})
    assert machines[0].threads == 1
    for machine in machines:
        assert machine.gemm_grid == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
        assert len(machine.bmm_rates) == len(machine.bmm_grid) and all(
            len(plane) == len(row) == len(machine.bmm_grid) for plane in machine.bmm_rates for row in plane)
        assert [key for key, _ in machine.copy_tables][:2] == ["passes/small/plain", "passes/small/wide"]
        assert f"{machine.threads} threads" in machine.description
    # the table of that thread count, else of the most threads below it, else of the fewest
    fake = tuple(dataclasses.replace(machines[0], threads=threads) for threads in (2, 4, 8))
    monkeypatch.setattr(machine_module, "shipped_machines", lambda: fake)
    machine_module.default_machine.cache_clear()
    try:
        assert [machine_module.default_machine(threads).threads for threads in (1, 2, 3, 4, 7, 8, 64)] == [
            2, 2, 2, 4, 4, 8, 8]
        assert machine_module.default_machine(None).threads == max(
            [2] + [threads for threads in (2, 4, 8) if threads <= (os.cpu_count() or 1)])
    finally:
        machine_module.default_machine.cache_clear()


def test_machine_json_round_trips_and_loads_from_a_file(tmp_path):
    machine = dataclasses.replace(costmodel.DEFAULT_MACHINE, description="elsewhere", gemm_scale=1.0 / 3)
    text = costmodel.machine_json(machine)
    assert json.loads(text)["copy_tables"]["streams/large/wide"][0][0] == dict(machine.copy_tables)[
        "streams/large/wide"][0][0]
    assert json.loads(text)["bmm_rates"][1][2][3] == machine.bmm_rates[1][2][3]
    path = tmp_path / "machine.json"
    path.write_text(text)
    loaded = costmodel.load_machine(path)
    assert loaded == machine and loaded.gemm_scale == 1.0 / 3
    fast = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, 16, machine=loaded)
    default = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, 16)
    assert fast["ltr"]["forward_seconds"] < default["ltr"]["forward_seconds"]


def test_the_shipped_files_are_what_machine_json_writes():
    folder = Path(machine_module.__file__).parent / machine_module.MACHINES_FOLDER
    shipped = {path.name: path.read_text() for path in folder.glob("threads-*.json")}
    assert sorted(shipped) == sorted(f"threads-{machine.threads}.json" for machine in machine_module.shipped_machines())
    for machine in machine_module.shipped_machines():
        assert costmodel.machine_json(machine) == shipped[f"threads-{machine.threads}.json"]


def test_a_bad_machine_file_names_the_problem():
    data = json.loads(costmodel.machine_json(costmodel.DEFAULT_MACHINE))
    with pytest.raises(ValueError, match="gemm_speed"):
        machine_module.machine_from_dict({**data, "gemm_speed": 1})
    del data["gemm_grid"]
    with pytest.raises(ValueError, match="gemm_grid"):
        machine_module.machine_from_dict(data)


def test_interpolation_is_exact_on_the_grid_and_clamped_beyond():
    machine = costmodel.DEFAULT_MACHINE
    small = machine.gemm_small_bytes
    # rows-major GEMM (m largest): table gemm_rows indexed by (k, n)
    assert machine.gemm_rate(4096, 4, 16, small) == machine.gemm_rows[2][4]
    assert machine.gemm_rate(4096, 1024, 1024, small) == machine.gemm_rows[-1][-1]
    between = machine.gemm_rate(4096, 4, 24, small)
    assert min(machine.gemm_rows[2][4:6]) <= between <= max(machine.gemm_rows[2][4:6])
    assert machine.gemm_rate(4096, 4, 16, machine.gemm_large_bytes) == machine.gemm_rows_large[2][4]


# ---------------------------------------------------------------------------- operation lists
def test_block_compositions():
    assert costmodel.block_compositions(1) == [(1,)]
    assert sorted(costmodel.block_compositions(3)) == sorted([(3,), (1, 2), (2, 1), (1, 1, 1)])
    assert len(costmodel.block_compositions(6)) == 32


def test_block_shapes_merge_modes_and_keep_boundary_ranks():
    shapes = [(1, 2, 3, 4), (4, 5, 6, 7), (7, 2, 2, 1)]
    assert block_shapes(shapes, (2, 1)) == [(1, 10, 18, 7), (7, 2, 2, 1)]


def test_copy_op_classifies_how_the_copy_walks_memory():
    assert copy_op((8, 1), (1, 0), 4) == []  # nothing moves
    # (rows, m) -> (m, rows) of 4-byte elements, 8 passes over 1000 rows
    assert copy_op((1000, 8), (1, 0), 4) == [("copy", 8000, 4, False, "state", "passes", 8)]
    # an unmoved inner block of 4 floats moves as 16-byte words, unless torch does the copy
    assert copy_op((1000, 8, 4), (1, 0, 2), 4, source="core") == [("copy", 32000, 16, True, "core", "passes", 8)]
    assert copy_op((1000, 8, 4), (1, 0, 2), 4, wide_allowed=False)[0][3] is False
    assert copy_geometry((4, 64), (1, 0)) == ("streams", 4)
    assert copy_geometry((2, 3, 4), (2, 0, 1)) == ("nd", 2)


def test_dense_strategy_memory_counts_the_weight():
    costs = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, batch=2, dtype_bytes=8)
    weight_bytes = 1024 * 1024 * 8
    assert costs["dense"]["peak_bytes"] >= 2 * weight_bytes  # the merge's permuted copy
    assert costs["rtl"]["peak_bytes"] < weight_bytes


def test_batched_gemm_rates_interpolate_and_fall_back_to_one_gemm():
    machine = costmodel.default_machine(1)
    grid = machine.bmm_grid
    assert machine.bmm_rate(grid[2], grid[3], grid[1]) == machine.bmm_rates[2][3][1]
    assert machine.bmm_rate(10**6, 10**6, 10**6) == machine.bmm_rates[-1][-1][-1]
    between = machine.bmm_rate(grid[2], grid[3], 2 * grid[1])
    assert min(machine.bmm_rates[2][3][1:3]) <= between <= max(machine.bmm_rates[2][3][1:3])
    unmeasured = dataclasses.replace(machine, bmm_grid=(), bmm_rates=())
    assert unmeasured.bmm_rate(4, 4, 4) == 0.0
    ops = [("bgemm", 64, 16, 32, 8, "core", "state")]
    # priced as one GEMM of the combined size where no batched table was measured
    costs = costmodel.estimate.evaluate_ops(ops, 4, False, unmeasured)
    assert costs["flops"] == 2 * 64 * 16 * 32 * 8 and costs["forward_seconds"] > 0


# ---------------------------------------------------------------------------- the choice
PAPER = ((2, 7, 8, 8, 7, 4), (4,) * 6, 4)
SQUARE = ((4, 8, 8, 4), (4, 8, 8, 4))

#: The benchmark's layers and the forward tests' uneven ones, with the batches they run at.
SEARCH_CASES = [
    (PAPER, 1), (PAPER, 100), ((*SQUARE, 1), 1), ((*SQUARE, 2), 128), ((*SQUARE, 4), 1), ((*SQUARE, 8), 128),
    (((4, 7, 4, 7), (5, 5, 5, 5), 4), 1), (((4, 7, 4, 7), (5, 5, 5, 5), 4), 128), (((8,) * 4, (8,) * 4, 8), 128),
    (((2, 3, 4), (3, 2, 2), (2, 5)), 3), (((4, 2, 3, 2), (2, 3, 2, 4), (3, 4, 2)), 3),
    (((2, 2, 3, 2, 2), (3, 2, 1, 2, 2), (2, 3, 3, 2)), 3), (((2,) * 7, (2,) * 7, 2), 5),
]


def _enumerated_blocking(in_modes, out_modes, ranks, batch, training, machine):
    """The blocked strategy's choice by pricing every blocking in every direction (the reference)."""
    internal = ttmath.plan_ranks(in_modes, out_modes, ranks).ranks
    full = ttmath.full_ranks(internal)
    shapes = [(full[k], n, m, full[k + 1]) for k, (n, m) in enumerate(zip(in_modes, out_modes))]
    d = len(shapes)
    costs = {}
    for blocks in costmodel.block_compositions(d):
        if len(blocks) == 1:
            continue
        for direction in BLOCKED_DIRECTIONS:
            choose = lambda rows, cols: "cols" if _seconds(cols, training, machine) < (  # noqa: E731
                costmodel.COLS_ORIENTATION_MARGIN * _seconds(rows, training, machine)) else "rows"
            for chunk in chunk_sizes(batch) if direction == "rtl-bmm" else [batch]:
                ops, _ = blocked_ops(shapes, batch, blocks, direction, 4, choose=choose, chunk=chunk)
                costs[(blocks, direction, chunk % batch)] = _seconds([("forward_call",), *ops], training, machine)
    singles = {key: value for key, value in costs.items() if len(key[0]) == d}
    merged = {key: value for key, value in costs.items() if len(key[0]) < d}
    best_single = min(singles, key=singles.get)
    best_merged = min(merged, key=merged.get)
    return best_merged if merged[best_merged] <= costmodel.MERGE_MARGIN * singles[best_single] else best_single


def _seconds(ops, training, machine):
    result = costmodel.estimate.evaluate_ops(ops, 4, True, machine)
    return result["forward_seconds"] + (result["backward_seconds"] if training else 0.0)


@pytest.mark.parametrize("layer,batch", SEARCH_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_blocking_search_finds_what_pricing_every_blocking_finds(layer, batch, threads):
    machine = costmodel.default_machine(threads)
    if threads == 2:  # another machine: GEMMs twice as fast, copies as measured (another balance of the parts)
        machine = dataclasses.replace(machine, gemm_scale=machine.gemm_scale / 2)
    for training in (False, True):
        blocked = costmodel.strategy_costs(*layer, batch, training=training, machine=machine)["blocked"]
        found = (blocked["blocks"], blocked["direction"], blocked["chunk"])
        assert found == _enumerated_blocking(*layer, batch, training, machine)


def test_the_plan_search_is_polynomial_in_the_number_of_modes():
    counts = {}
    for d in (3, 6, 12):
        costs = costmodel.strategy_costs((2,) * d, (2,) * d, 2, 4)
        counts[d] = costs["blocked"]["candidates"]
        # O(d^3) for the copying right-to-left search, O(d^2) for each other direction and chunk size (3 of
        # them at batch 4); pricing every blocking would be 2^(d-1) per search (2,048 at d = 12)
        assert counts[d] <= 4 * d**3
    assert counts[12] <= 2**3 * 2 * counts[6]  # doubling d multiplies the work by at most about 2^3, not 2^6
    with pytest.raises(ValueError, match="more than the 12"):
        costmodel.strategy_costs((2,) * 13, (2,) * 13, 2, 4)


def test_the_choice_follows_the_machine():
    # a machine whose batched GEMMs are 100x faster than measured: the batched sweep wins where it was not
    machine = costmodel.default_machine(1)
    fast_bmm = dataclasses.replace(machine, bmm_rates=tuple(tuple(tuple(100 * rate for rate in row) for row in plane)
                                                             for plane in machine.bmm_rates))
    costs = costmodel.strategy_costs((8,) * 4, (8,) * 4, 8, 128, machine=fast_bmm)
    assert costs["blocked"]["direction"].endswith("-bmm")
    assert costs["blocked"]["seconds"] < costmodel.strategy_costs((8,) * 4, (8,) * 4, 8, 128, machine=machine)[
        "blocked"]["seconds"]


def test_a_stored_weight_is_priced_by_the_measured_f_linear_speeds():
    machine = costmodel.default_machine(1)
    batch, elements = machine.linear_batches[0], machine.linear_weights[3]
    side = int(round(elements**0.5))
    seconds = costmodel.stored_weight_costs(side, side, batch, machine=machine)["seconds"]
    assert seconds == pytest.approx(2 * batch * side * side / machine.linear_rates[0][3])
    # without that table: one GEMM of the GEMM tables
    unmeasured = dataclasses.replace(machine, linear_batches=(), linear_weights=(), linear_rates=())
    gemm = costmodel.estimate.evaluate_ops([("gemm", batch, side, side, "input", "core")], 4, False, unmeasured)
    assert costmodel.stored_weight_costs(side, side, batch, machine=unmeasured)["seconds"] == gemm["forward_seconds"]
