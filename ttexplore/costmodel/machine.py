"""Measured speeds of one machine (:class:`MachineModel`), their interpolation and their JSON files.

``python -m ttexplore bench --calibrate`` measures a machine and prints it in
the JSON format :func:`load_machine` reads. The benchmark machine's tables are
shipped in ``machines/`` next to this module, one file per torch thread count
they were measured at (``threads-1.json``, ``threads-2.json``), and read on
first use; :func:`default_machine` picks the one for a thread count
(:data:`DEFAULT_MACHINE`: torch's default, all cores).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

__all__ = ["MachineModel", "default_machine", "shipped_machines", "load_machine", "machine_from_dict", "machine_json",
           "DEFAULT_MACHINE"]

#: The folder of the shipped machine files (one per calibrated thread count), inside this package.
MACHINES_FOLDER = "machines"


@dataclass(frozen=True)
class MachineModel:
    """Measured speeds of one machine: the constants of the time estimate.

    A GEMM ``(m, k) @ (k, n)`` is classed by its largest dimension: the output rows
    ``m`` (table ``gemm_rows``, indexed by ``(k, n)``), the output columns ``n``
    (``gemm_cols``, by ``(k, m)``) or the contraction ``k`` (``gemm_reduce``, by
    ``(m, n)``). Each table holds float32 FLOP/s at the sizes ``gemm_grid`` (powers
    of two; in between interpolated in ``log2``, beyond clamped), measured with
    operands of about ``gemm_small_bytes`` in all; the ``_large`` tables hold the
    same for about ``gemm_large_bytes`` (past the last-level cache), and working
    sets in between are interpolated in ``log2`` of their size.

    A permuted copy moves ``copy_tables[key][i][j]`` bytes/s (read plus write),
    ``key`` = ``"<form>/<size>/<moves>"``: ``form`` "passes" or "streams" and fan
    ``copy_fans[i]`` as :func:`ttexplore.costmodel.ops.copy_geometry` classes it,
    contiguous blocks of ``copy_block_bytes[j]`` bytes, ``size`` "small"
    (``copy_small_bytes``) or "large" (``copy_large_bytes``; in between
    interpolated in ``log2``), ``moves`` "plain" or "wide" (16-byte words).

    Attributes:
        description: which machine, and how the numbers were taken.
        memory_bandwidth: bytes/s of main memory; no GEMM beyond the large
            tables' size is estimated faster than its operands can stream.
        fault_bytes, fault_bandwidth: results of at least ``fault_bytes`` get
            fresh pages from the OS on every allocation (glibc's largest mmap
            threshold), which costs ``bytes / fault_bandwidth`` more.
        gemm_call_s, copy_call_s, einsum_call_s, merge_call_s: fixed cost of one
            GEMM, one copy, one opt_einsum contraction step, one merged block, from
            Python (dispatch, allocation, bookkeeping).
        forward_call_s: fixed cost of one forward, whatever the strategy.
        backward_gemm_call_s, backward_copy_call_s: the same for the backward nodes.
        threads: the torch thread count the speeds were measured with (0: not recorded).
        bmm_grid, bmm_rates: float32 FLOP/s of a batched product (``torch.bmm``) of
            ``(m, k) @ (k, n)`` matrices sharing the left one, ``bmm_rates[i][j][l]`` at
            ``m, k, n = bmm_grid[i], bmm_grid[j], bmm_grid[l]`` with about ``gemm_small_bytes``
            of operands (log2-interpolated in between, clamped beyond); empty when not
            measured (a batched product is then priced as one GEMM of its combined size).
        linear_batches, linear_weights, linear_rates: float32 FLOP/s of ``F.linear`` with a
            stored ``W`` of ``linear_weights[j]`` elements on ``linear_batches[i]`` rows,
            ``W`` in cache as in repeated inference (log2-interpolated, clamped); empty when
            not measured (then priced as a GEMM).
        float64_slowdown: how much slower a float64 GEMM is than a float32 one.
        gemm_scale, plain_copy_scale, wide_copy_scale, nd_copy_scale: factors on
            the tables' times (``nd``: copies permuting more than two axes),
            fitted to whole forwards: an operation inside a forward (its
            operands just written by the previous one, its result freshly
            allocated, threads just woken) does not run at its isolated speed.
    """

    description: str
    gemm_grid: tuple[int, ...]
    gemm_rows: tuple[tuple[float, ...], ...]
    gemm_cols: tuple[tuple[float, ...], ...]
    gemm_reduce: tuple[tuple[float, ...], ...]
    gemm_rows_large: tuple[tuple[float, ...], ...]
    gemm_cols_large: tuple[tuple[float, ...], ...]
    gemm_reduce_large: tuple[tuple[float, ...], ...]
    gemm_small_bytes: int
    gemm_large_bytes: int
    copy_block_bytes: tuple[int, ...]
    copy_fans: tuple[int, ...]
    copy_tables: tuple[tuple[str, tuple[tuple[float, ...], ...]], ...]
    copy_small_bytes: int
    copy_large_bytes: int
    memory_bandwidth: float
    fault_bytes: int
    fault_bandwidth: float
    gemm_call_s: float
    copy_call_s: float
    einsum_call_s: float
    merge_call_s: float
    forward_call_s: float
    backward_gemm_call_s: float
    backward_copy_call_s: float
    float64_slowdown: float = 2.0
    gemm_scale: float = 1.0
    plain_copy_scale: float = 1.0
    wide_copy_scale: float = 1.0
    nd_copy_scale: float = 1.0
    threads: int = 0
    bmm_grid: tuple[int, ...] = ()
    bmm_rates: tuple[tuple[tuple[float, ...], ...], ...] = ()
    linear_batches: tuple[int, ...] = ()
    linear_weights: tuple[int, ...] = ()
    linear_rates: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        # a dict view of copy_tables, built once (the dataclass is frozen and hashable)
        object.__setattr__(self, "_copy_table_by_key", dict(self.copy_tables))

    def gemm_rate(self, m: int, k: int, n: int, total_bytes: int) -> float:
        """float32 FLOP/s of a ``(m, k) @ (k, n)`` GEMM whose operands and result take ``total_bytes``."""
        if m >= n and m >= k:
            small, large, first, second = self.gemm_rows, self.gemm_rows_large, k, n
        elif n >= k:
            small, large, first, second = self.gemm_cols, self.gemm_cols_large, k, m
        else:
            small, large, first, second = self.gemm_reduce, self.gemm_reduce_large, m, n
        return _by_size(
            _interpolate_2d(small, self.gemm_grid, first, second),
            _interpolate_2d(large, self.gemm_grid, first, second),
            total_bytes,
            self.gemm_small_bytes,
            self.gemm_large_bytes,
        )

    def bmm_rate(self, m: int, k: int, n: int) -> float:
        """float32 FLOP/s of each ``(m, k) @ (k, n)`` product of a batched GEMM (``bmm_rates``; 0 when not measured)."""
        if not self.bmm_rates:
            return 0.0
        grid = self.bmm_grid
        i, wi = _grid_position(grid, m)
        planes = [_interpolate_2d(self.bmm_rates[index], grid, k, n) for index in (i, i + 1)]
        return planes[0] * (1 - wi) + planes[1] * wi

    def linear_rate(self, batch: int, weight_elements: int) -> float:
        """float32 FLOP/s of ``F.linear`` by a stored ``W`` of ``weight_elements`` on ``batch`` rows (0 when not measured)."""
        if not self.linear_rates:
            return 0.0
        return _interpolate_2d(self.linear_rates, (self.linear_batches, self.linear_weights), batch, weight_elements)

    def copy_rate(self, block_bytes: int, wide: bool, total_bytes: int, form: str, fan: int) -> float:
        """Bytes/s (read plus write) of a permuted copy of ``total_bytes`` (see the class notes)."""
        tables = self._copy_table_by_key
        moves = "wide" if wide else "plain"
        small, large = (
            _interpolate_2d(tables[f"{form}/{size}/{moves}"], (self.copy_fans, self.copy_block_bytes), fan, block_bytes)
            for size in ("small", "large")
        )
        return _by_size(small, large, total_bytes, self.copy_small_bytes, self.copy_large_bytes)


# ------------------------------------------------------------------ interpolation
def _by_size(small: float, large: float, size: float, small_size: float, large_size: float) -> float:
    """``small`` up to ``small_size``, ``large`` from ``large_size``, log2-interpolated in between."""
    if size <= small_size:
        return small
    if size >= large_size:
        return large
    weight = math.log2(size / small_size) / math.log2(large_size / small_size)
    return small * (1 - weight) + large * weight


def _grid_position(grid: Sequence[int], value: float) -> tuple[int, float]:
    """Index ``i`` and weight ``w`` so that ``log2(value)`` lies between ``grid[i]`` and ``grid[i + 1]``."""
    if value <= grid[0]:
        return 0, 0.0
    if value >= grid[-1]:
        return len(grid) - 2, 1.0
    for index in range(len(grid) - 1):
        if grid[index] <= value <= grid[index + 1]:
            low, high = math.log2(grid[index]), math.log2(grid[index + 1])
            return index, (math.log2(value) - low) / (high - low)
    return len(grid) - 2, 1.0


def _interpolate_2d(
    table: Sequence[Sequence[float]], grid: Union[Sequence[int], tuple[Sequence[int], Sequence[int]]], first: float,
    second: float,
) -> float:
    """Bilinear interpolation (in ``log2``) of ``table[i][j]`` sampled at ``grid`` (one grid, or one per axis)."""
    first_grid, second_grid = grid if isinstance(grid[0], (tuple, list)) else (grid, grid)
    i, wi = _grid_position(first_grid, first)
    j, wj = _grid_position(second_grid, second)
    top = table[i][j] * (1 - wj) + table[i][j + 1] * wj
    bottom = table[i + 1][j] * (1 - wj) + table[i + 1][j + 1] * wj
    return top * (1 - wi) + bottom * wi


# ------------------------------------------------------------------ JSON files
def machine_from_dict(data: dict[str, Any]) -> MachineModel:
    """The :class:`MachineModel` of a parsed machine file (:func:`machine_json`'s format).

    Lists become tuples and ``copy_tables`` (an object ``{key: rows}``) becomes
    ``((key, rows), ...)`` in the file's order.

    Raises:
        ValueError: a field is missing or unknown.
    """
    names = [field.name for field in dataclasses.fields(MachineModel)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown machine field(s) {', '.join(unknown)}; known: {', '.join(names)}")
    values = {name: _as_tuples(value) for name, value in data.items() if name != "copy_tables"}
    for name in ("gemm_grid", "copy_block_bytes", "copy_fans", "bmm_grid", "linear_batches", "linear_weights"):
        grid = values.get(name, ())
        if any(not isinstance(size, (int, float)) or size <= 0 for size in grid) or list(grid) != sorted(set(grid)):
            raise ValueError(f"machine field {name} must list increasing positive sizes, not {grid!r:.60}")
    if "copy_tables" in data:
        values["copy_tables"] = tuple((key, _as_tuples(rows)) for key, rows in data["copy_tables"].items())
    try:
        return MachineModel(**values)
    except TypeError as error:  # a required field is missing
        raise ValueError(f"incomplete machine: {error}") from None


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list) else value


def load_machine(path: Union[str, Path]) -> MachineModel:
    """Read a machine file (as ``bench --calibrate`` prints it), e.g. to pass as ``strategy_costs(machine=...)``."""
    return machine_from_dict(json.loads(Path(path).read_text()))


@functools.lru_cache(maxsize=None)
def shipped_machines() -> tuple[MachineModel, ...]:
    """The machine files shipped in this package's ``machines/`` folder (``threads-N.json``, one per thread count the
    benchmark machine was calibrated at), fewest threads first; read once."""
    folder = resources.files(__package__).joinpath(MACHINES_FOLDER)
    machines = [machine_from_dict(json.loads(entry.read_text()))
                for entry in folder.iterdir() if entry.name.startswith("threads-") and entry.name.endswith(".json")]
    return tuple(sorted(machines, key=lambda machine: machine.threads))


@functools.lru_cache(maxsize=64)
def default_machine(threads: Optional[int] = None) -> MachineModel:
    """Speeds of the benchmark machine at ``threads`` torch threads: the shipped table calibrated at
    that thread count, else at the most threads below it, else at the fewest.

    ``None`` means torch's default, one thread per core: the table with the most threads up to
    ``os.cpu_count()``. Small GEMMs get slower with more threads while large ones and the GEMV of
    a stored ``W`` get faster, so the choice of a forward depends on the thread count
    (:func:`ttexplore.nn.forward.plan_forward` passes ``torch.get_num_threads()``).

    Complexity: ``O(1)`` after the first call per thread count.
    """
    machines = shipped_machines()
    wanted = int(threads) if threads else (os.cpu_count() or 1)
    fitting = [machine for machine in machines if machine.threads <= wanted]
    return fitting[-1] if fitting else machines[0]


def __getattr__(name: str) -> Any:
    # DEFAULT_MACHINE is read from its file on first use, not on import
    if name == "DEFAULT_MACHINE":
        return default_machine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def machine_json(machine: MachineModel) -> str:
    """``machine`` as a JSON machine file: one field per line, one table row per line, numbers exact."""
    entries = []
    for field in dataclasses.fields(machine):
        value = getattr(machine, field.name)
        if field.name == "copy_tables":
            tables = ",\n".join(f"    {json.dumps(key)}: {_json_rows(rows, '    ')}" for key, rows in value)
            text = "{\n" + tables + "\n  }"
        elif isinstance(value, tuple) and value and isinstance(value[0], tuple) and value[0] and isinstance(value[0][0], tuple):
            planes = ",\n".join(f"    {_json_rows(plane, '    ')}" for plane in value)
            text = "[\n" + planes + "\n  ]"
        elif isinstance(value, tuple) and value and isinstance(value[0], tuple):
            text = _json_rows(value, "  ")
        else:
            text = _json_value(value)
        entries.append(f"  {json.dumps(field.name)}: {text}")
    return "{\n" + ",\n".join(entries) + "\n}\n"


def _json_rows(rows: Sequence[Sequence[float]], indent: str) -> str:
    return "[\n" + ",\n".join(f"{indent}  {_json_value(row)}" for row in rows) + f"\n{indent}]"


def _json_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(map(_json_value, value)) + "]"
    if isinstance(value, float):
        return _json_float(value)
    return json.dumps(value)


def _json_float(value: float) -> str:
    """The shortest text that reads back as exactly ``value``; large values as ``4.16e+09``."""
    if not math.isfinite(value):
        raise ValueError(f"a machine file holds finite numbers only, not {value}")
    if abs(value) < 1e5:
        return repr(value)
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            return text
    return repr(value)
