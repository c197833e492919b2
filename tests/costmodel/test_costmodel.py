"""The cost model alone (no torch): its machine file, its operation lists, the strategies it picks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ttexplore import costmodel
from ttexplore.costmodel import machine as machine_module
from ttexplore.costmodel.ops import block_shapes, copy_geometry, copy_op

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


def test_default_machine_is_the_measured_one():
    """The shipped file holds exactly the tables that were a Python literal before (fingerprint of its values)."""
    machine = costmodel.DEFAULT_MACHINE
    assert machine is costmodel.default_machine()  # read once
    fingerprint = hashlib.sha256(repr(dataclasses.astuple(machine)).encode()).hexdigest()
    assert fingerprint == "772051b321888d935e26e571338bbcbefcffeafa0d57789372760e6417a0ce5c"
    assert machine.gemm_grid == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    assert machine.gemm_rows[0][0] == 4.16e9 and machine.gemm_reduce_large[-1][-1] == 1.86e11
    assert [key for key, _ in machine.copy_tables][:2] == ["passes/small/plain", "passes/small/wide"]
    assert (machine.gemm_scale, machine.plain_copy_scale, machine.wide_copy_scale, machine.nd_copy_scale) == (
        1.2, 1.17, 1.66, 3.13)


def test_machine_json_round_trips_and_loads_from_a_file(tmp_path):
    machine = dataclasses.replace(costmodel.DEFAULT_MACHINE, description="elsewhere", gemm_scale=1.0 / 3)
    text = costmodel.machine_json(machine)
    assert json.loads(text)["copy_tables"]["streams/large/wide"][0][0] == 2.42e10
    path = tmp_path / "machine.json"
    path.write_text(text)
    loaded = costmodel.load_machine(path)
    assert loaded == machine and loaded.gemm_scale == 1.0 / 3
    fast = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, 16, machine=loaded)
    default = costmodel.strategy_costs((4, 8, 8, 4), (4, 8, 8, 4), 4, 16)
    assert fast["ltr"]["forward_seconds"] < default["ltr"]["forward_seconds"]


def test_the_shipped_file_is_what_machine_json_writes():
    shipped = (Path(machine_module.__file__).parent / machine_module.DEFAULT_MACHINE_RESOURCE).read_text()
    assert costmodel.machine_json(costmodel.DEFAULT_MACHINE) == shipped


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


# ---------------------------------------------------------------------------- the choice
PAPER = ((2, 7, 8, 8, 7, 4), (4,) * 6, 4)
SQUARE = ((4, 8, 8, 4), (4, 8, 8, 4))

#: What auto picked on the benchmark cases when the machine tables became a data file.
CHOICES = [
    (PAPER, 1, False, "blocks 1+1+1+1+2, last block first"),
    (PAPER, 1, True, "blocks 2+1+1+2, last block first"),
    (PAPER, 100, False, "blocks 3+3, last block first"),
    (PAPER, 100, True, "blocks 1+2+3, last block first"),
    ((*SQUARE, 1), 1, True, "core by core, last core first"),
    ((*SQUARE, 2), 1, True, "blocks 2+2, last block first"),
    ((*SQUARE, 8), 1, False, "core by core, last core first"),
    ((*SQUARE, 2), 128, False, "blocks 2+2, last block first"),
    ((*SQUARE, 4), 128, False, "opt_einsum 'dp' path"),
    ((*SQUARE, 8), 128, True, "opt_einsum 'dp' path"),
    (((4, 7, 4, 7), (5, 5, 5, 5), 4), 1, True, "blocks 2+2, last block first"),
    (((4, 7, 4, 7), (5, 5, 5, 5), 4), 128, False, "blocks 2+2, last block first"),
    (((8,) * 4, (8,) * 4, 8), 1, True, "core by core, last core first"),
    (((8,) * 4, (8,) * 4, 8), 128, False, "opt_einsum 'dp' path"),
]


@pytest.mark.parametrize("layer,batch,training,plan", CHOICES)
def test_auto_choices_on_the_benchmark_cases(layer, batch, training, plan):
    costs = costmodel.strategy_costs(*layer, batch, training=training)
    assert costs[costmodel.best_strategy(costs)]["plan"] == plan
