"""The blocked strategy's blocks and direction, found by dynamic programming over contiguous blocks. Pure Python.

A blocking cuts the ``d`` cores into consecutive blocks; the blocked strategy
merges each block into one core, then sweeps over the merged cores in one of
:data:`~ttexplore.costmodel.ops.BLOCKED_DIRECTIONS`. There are ``2^(d-1)``
blockings, but the estimated time of a sweep is a sum over its steps, and the
cost of the step over block ``[i, j)`` depends only on ``i``, ``j`` and, for the
copying right-to-left sweep, on the start ``h`` of the block processed after it
(the width of its copy) and the pair order the step before it left (a flag).
So the best blocking of each direction is a shortest path over block
boundaries: ``O(d^2)`` states, ``O(d^3)`` priced steps in all instead of
``O(d 2^d)`` operations over every blocking; it finds the same blocking the
enumeration does (up to the rounding of a sum).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from ttexplore.tt.ttmath import prod
from ttexplore.costmodel.ops import (
    BLOCKED_DIRECTIONS,
    CoreShape,
    batched_step_ops,
    block_shapes,
    core_matrix_ops,
    ltr_step_ops,
    merge_ops,
    rtl_step_ops,
)

__all__ = ["BlockingSearch"]

#: Prices an operation list (seconds) and picks a right-to-left step's orientation.
Seconds = Callable[[Sequence[tuple]], float]
Chooser = Callable[[list[tuple], list[tuple]], str]


class BlockingSearch:
    """The best blocking of ``shapes`` for each direction, by dynamic programming.

    Args:
        shapes: the ``d`` core shapes ``(r_{k-1}, n_k, m_k, r_k)``.
        batch: rows of the input.
        chunk: a ``"rtl-bmm"`` sweep run this many rows at a time (0: all): each
            block is merged once and its step runs once per chunk.
        element_bytes: 4 for float32, 8 for float64.
        seconds: the time an operation list is ranked by.
        choose: a right-to-left step's orientation from its two operation lists.

    Attributes:
        priced: operation lists priced so far: the candidates evaluated (``O(d^3)``).
    """

    def __init__(self, shapes: Sequence[CoreShape], batch: int, element_bytes: int, seconds: Seconds,
                 choose: Chooser, chunk: int = 0) -> None:
        self.shapes, self.batch, self.element_bytes = list(shapes), batch, element_bytes
        self._seconds, self._choose = seconds, choose
        self.priced = 0
        self._step_cache: dict[tuple, tuple[float, bool]] = {}
        # the batches one sweep's steps run at, and how many times each: ``chunk`` rows at a time (the last
        # chunk what is left), or the whole batch once
        if 0 < chunk < batch:
            self._runs = [(chunk, batch // chunk)] + ([(batch % chunk, 1)] if batch % chunk else [])
        else:
            self._runs = [(batch, 1)]

    def price(self, ops: Sequence[tuple]) -> float:
        self.priced += 1
        return self._seconds(ops)

    def _block(self, start: int, stop: int) -> CoreShape:
        return block_shapes(self.shapes[start:stop], (stop - start,))[0]

    # ------------------------------------------------------------------ one block's step
    def _independent_step(self, direction: str, start: int, stop: int) -> float:
        """Seconds of merging block ``[start, stop)`` (once) and of its step (once per chunk), in a direction
        whose steps do not depend on their neighbours (``ltr``, ``rtl-bmm``, ``ltr-bmm``)."""
        seconds = self.price(merge_ops(self.shapes[start:stop], self.element_bytes, outputs_first=direction == "rtl-bmm"))
        for batch, times in self._runs:
            seconds += times * self.price(self._step_ops(direction, start, stop, batch))
        return seconds

    def _step_ops(self, direction: str, start: int, stop: int, batch: int) -> list[tuple]:
        """The operations of block ``[start, stop)``'s step on ``batch`` input rows."""
        shapes, element_bytes = self.shapes, self.element_bytes
        shape = self._block(start, stop)
        first_operand = "input_copy" if batch > 1 else "input"
        if direction == "ltr":
            state = shape[0] * prod(s[1] for s in shapes[start:]) * prod(s[2] for s in shapes[:start]) * batch
            return ltr_step_ops(shape, state, batch, first_operand if start == 0 else "state", element_bytes)[0]
        if direction == "rtl-bmm":
            outer = batch * prod(s[1] for s in shapes[:start])
            inner = prod(s[2] for s in shapes[stop:])
            operand = "input" if stop == len(shapes) else "state"
            return batched_step_ops(shape, outer, inner, direction, operand, element_bytes)
        # ltr-bmm
        outer = prod(s[2] for s in shapes[:start])
        inner = batch * prod(s[1] for s in shapes[stop:])
        ops = core_matrix_ops(shape, (2, 3, 0, 1), element_bytes)
        return ops + batched_step_ops(shape, outer, inner, direction, first_operand if start == 0 else "state",
                                      element_bytes)

    def _rtl_step(self, start: int, stop: int, next_modes_in: int, rank_first: bool) -> tuple[float, bool]:
        """Seconds of merging block ``[start, stop)`` and its right-to-left step (orientation chosen as
        the sweep chooses it), and the pair order it leaves; the block after it has ``next_modes_in``
        input modes."""
        key = (start, stop, next_modes_in, rank_first)
        if key not in self._step_cache:
            shapes, batch, element_bytes = self.shapes, self.batch, self.element_bytes
            shape = self._block(start, stop)
            # the state before this step: (m_stop..m_d, B, n_1..n_stop-1, [n r]) with r = r_stop
            state = batch * prod(s[1] for s in shapes[:stop]) * prod(s[2] for s in shapes[stop:]) * shape[3]
            operand = "input" if stop == len(shapes) else "state"
            if shape[0] == 1:
                orientation = "rows"
            else:
                options = {name: rtl_step_ops(shape, state, next_modes_in, rank_first, name, operand, element_bytes)[0]
                           for name in ("rows", "cols")}
                self.priced += 2
                orientation = self._choose(options["rows"], options["cols"])
            ops, _, rank_first_after = rtl_step_ops(shape, state, next_modes_in, rank_first, orientation, operand,
                                                   element_bytes)
            self._step_cache[key] = (self.price(merge_ops(shapes[start:stop], element_bytes) + ops), rank_first_after)
        return self._step_cache[key]

    # ------------------------------------------------------------------ the searches
    def best_merged(self, direction: str) -> Optional[tuple[float, tuple[int, ...]]]:
        """The cheapest blocking with at least one merged block (but not all cores in one) in
        ``direction``, as ``(estimated seconds of its steps, block lengths)``; ``None`` below 3
        cores (with 2 the only merged blocking is the whole layer, the dense strategy).

        The seconds leave out what every blocking in this direction pays alike (the input's and
        the output's transposition); compare directions by costing the whole operation lists.

        Complexity: ``O(d^2)`` priced steps (``O(d^3)`` for ``"rtl"``), each ``O(d)``.
        """
        if direction not in BLOCKED_DIRECTIONS:
            raise ValueError(f"direction {direction!r} is unknown: use one of {', '.join(BLOCKED_DIRECTIONS)}")
        if len(self.shapes) < 3:
            return None
        if direction == "rtl":
            return self._best_rtl()
        return self._best_independent(direction)

    def _best_independent(self, direction: str) -> tuple[float, tuple[int, ...]]:
        """Shortest path over block boundaries, left to right; a label per (boundary, merged yet)."""
        d = len(self.shapes)
        # best[(position, merged)] = (seconds, block lengths) covering cores [0, position)
        best: dict[tuple[int, bool], tuple[float, tuple[int, ...]]] = {(0, False): (0.0, ())}
        for stop in range(1, d + 1):
            for start in range(stop):
                if start == 0 and stop == d:
                    continue  # one block is the dense strategy
                step = None
                for merged in (False, True):
                    if (start, merged) not in best:
                        continue
                    if step is None:
                        step = self._independent_step(direction, start, stop)
                    seconds, blocks = best[(start, merged)]
                    label = (stop, merged or stop - start > 1)
                    candidate = (seconds + step, blocks + (stop - start,))
                    if label not in best or candidate[0] < best[label][0]:
                        best[label] = candidate
        return best[(d, True)]

    def _best_rtl(self) -> tuple[float, tuple[int, ...]]:
        """Shortest path for the copying right-to-left sweep, whose step over ``[start, stop)`` also
        depends on the next block's start and the previous step's pair order."""
        d = len(self.shapes)
        memo: dict[tuple[int, int, bool], dict[bool, tuple[float, tuple[int, ...]]]] = {}

        def rest(start: int, stop: int, rank_first: bool) -> dict[bool, tuple[float, tuple[int, ...]]]:
            """Cheapest ways to process block ``[start, stop)`` and every core before it, by whether a
            block among them is merged: ``{merged: (seconds, block lengths)}``."""
            key = (start, stop, rank_first)
            if key in memo:
                return memo[key]
            merged_here = stop - start > 1
            found: dict[bool, tuple[float, tuple[int, ...]]] = {}
            if start == 0:
                seconds, _ = self._rtl_step(0, stop, 1, rank_first)
                found[merged_here] = (seconds, (stop,))
            for after in range(start):  # the next block is [after, start)
                next_modes_in = prod(s[1] for s in self.shapes[after:start])
                seconds, rank_first_after = self._rtl_step(start, stop, next_modes_in, rank_first)
                for merged, (rest_seconds, blocks) in rest(after, start, rank_first_after).items():
                    label = merged or merged_here
                    candidate = (seconds + rest_seconds, blocks + (stop - start,))
                    if label not in found or candidate[0] < found[label][0]:
                        found[label] = candidate
            memo[key] = found
            return found

        best: tuple[float, tuple[int, ...]] = (math.inf, ())
        for start in range(1, d):  # the last block [start, d); not the whole layer
            candidate = rest(start, d, False).get(True)
            if candidate is not None and candidate[0] < best[0]:
                best = candidate
        return best
