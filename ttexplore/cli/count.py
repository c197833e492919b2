"""``ttexplore count`` and ``ttexplore suggest``: sizes and costs of shapes, without training."""

from __future__ import annotations

import argparse
import json

from ttexplore.cli.common import EXIT_OK, UsageError, add_run_flags, config_from_args, flag_name, preset_or_usage
from ttexplore.runs.config import ConfigError
from ttexplore.runs.network import network_rows
from ttexplore.tt import ttmath


def configure_count(count: argparse.ArgumentParser) -> None:
    add_run_flags(count)
    count.set_defaults(check_memory=False)  # count shows the memory estimate, it never refuses
    count.add_argument("--json", action="store_true", help="print JSON")
    count.add_argument("--preset", default=None, help="a named network (see train --list-presets); the flags given change it")


def configure_suggest(suggest: argparse.ArgumentParser) -> None:
    """Flags of ``suggest``; their ranges are checked by :func:`~ttexplore.tt.shapes.suggest_shapes` (one line each)."""
    suggest.add_argument("in_features", type=int, help="N, input features")
    suggest.add_argument("out_features", type=int, help="M, output features")
    suggest.add_argument("--d", type=int, default=None, help="number of cores (default: try all)")
    suggest.add_argument("--rank", type=int, default=2, help="max TT rank to price shapes at (default 2)")
    suggest.add_argument("--top", type=int, default=10, help="how many to list (default 10)")


def run_count(args: argparse.Namespace) -> int:
    """Print layer weights, compression, max useful ranks, FLOPs and the memory estimate without training."""
    config = config_from_args(args, preset=preset_or_usage("count", args.preset, args))
    try:
        return _print_count(args, config)
    except ConfigError as error:  # a bad TTEXPLORE_MEMORY_LIMIT
        raise UsageError(f"ttexplore count: error: {flag_name(error.field)}: {error}") from None


def _print_count(args: argparse.Namespace, config) -> int:
    lines = {
        "layer": config.describe(),
        "layer weights": config.layer_params(),
        "dense weights": config.dense_layer_params(),
        "compression rate": f"{config.compression():.4g}",
        "compression factor": f"{1 / config.compression():.4g}x",
    }
    shapes = config.layer_shapes
    lines["network parameters"] = f"{config.net_params():,} (dense {config.dense_net_params():,}: " \
                                  f"{config.dense_net_params() / config.net_params():.4g}x smaller)"
    if len(config.layers) > 1 or any(not layer.flattens for layer in config.layers):
        lines["layer widths"] = " -> ".join(f"{width:,}" for width in config.layer_widths)
        for row in network_rows(config):  # one row per layer and the head: shapes, weights, bias, FLOPs, clipped ranks
            name = f"hidden_layers[{row.index - 1}]" if row.kind != "head" else "head"
            shape = f"{'x'.join(map(str, row.in_shape))} -> {'x'.join(map(str, row.out_shape))}"
            clipping = () if row.kind == "head" else config.layers[row.index - 1].clipping(shapes[row.index - 1])
            clipped = ", ".join(f"rank {asked} clipped to {used}" for _, asked, used in clipping)
            lines[name] = (f"{row.label}: {row.weights:,} weights (dense {row.dense_weights:,}) + {row.bias:,} bias; "
                           f"{shape}; {row.flops:,} FLOPs (dense {row.dense_flops:,})"
                           + (f"; {clipped} (more would only add weights)" if clipped else ""))
        if args.json:
            lines["layers"] = [row.to_dict() for row in network_rows(config)]
    else:
        lines.update(_layer_lines(config.layers[0], shapes[0]))
        lines["dense FLOPs (batch 1)"] = config.layers[0].dense_twin().flops(shapes[0])
    if config.round_to is not None:  # what the rank schedule leads to
        from ttexplore.presenters.rounding import schedule_caption

        lines["rank schedule"] = schedule_caption(config).replace("Weights of the hidden layers: ", "")
    lines["peak memory (est.)"] = _memory_line(config)
    if args.json:
        print(json.dumps(lines, indent=2))
    else:
        width = max(map(len, lines))
        for key, value in lines.items():
            print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _layer_lines(layer, in_shape) -> dict:
    """What ``count`` says of a network's one hidden layer: its ranks (used, useful, clipped), and for a
    TT layer its cores and the forward ``auto`` picks, else its FLOPs."""
    lines: dict = {}
    used = layer.ranks_used(in_shape)
    if used:
        lines["ranks used"] = ",".join(map(str, used))
    clipped = layer.clipping(in_shape)
    if layer.has_tt_cores:
        plan = ttmath.plan_ranks(layer.in_modes, layer.out_modes, layer.ranks)
        lines["max useful ranks"] = ",".join(map(str, plan.max_useful))
        if clipped:
            lines["clipped"] = plan.describe_clipping()
        lines["core shapes"] = "  ".join("x".join(map(str, core)) for core in ttmath.core_shapes(layer.in_modes, layer.out_modes, layer.ranks))
        from ttexplore.costmodel import best_strategy

        costs = layer.costs(1)
        chosen = best_strategy(costs)
        lines["auto strategy (batch 1)"] = f"{chosen}: {costs[chosen].get('plan', '')}"
        lines["forward FLOPs (batch 1)"] = costs[chosen]["flops"]
        lines["peak activations (batch 1)"] = f"{costs[chosen]['peak_bytes']:,} bytes"
    else:
        if clipped:
            lines["clipped"] = ", ".join(f"rank {asked} -> {kept}" for _, asked, kept in clipped) + \
                " (above the full rank min(N, M))"
        lines["forward FLOPs (batch 1)"] = layer.flops(in_shape)
    return lines


def _memory_line(config) -> str:
    """``"58.2 MiB at batch 64, within the budget of ..."``, or that ``train`` would refuse it and the fix."""
    from ttexplore.runs.resources import estimate_run_memory, human_bytes, memory_budget, budget_description, memory_fix

    estimate = estimate_run_memory(config)
    budget = memory_budget()  # a bad TTEXPLORE_MEMORY_LIMIT is a ConfigError, shown by main as one line
    verdict = "within" if estimate.total <= budget else "over"
    line = f"{human_bytes(estimate.total)} at batch {config.batch_size}, {verdict} the budget of {budget_description(budget)}"
    if verdict == "over":
        line += f": train would refuse it; {memory_fix(config, estimate)}"
    return line


def run_suggest(args: argparse.Namespace) -> int:
    """List tensorizations of an N -> M layer, fewest TT weights first."""
    from ttexplore.tt.shapes import suggest_shapes

    try:
        suggestions = suggest_shapes(args.in_features, args.out_features, d=args.d, rank=args.rank, top=args.top)
    except ValueError as error:
        raise UsageError(f"ttexplore suggest: error: {error}") from None
    for suggestion in suggestions:
        print(f"{suggestion.label:<32} {suggestion.params:>10} weights  compression {suggestion.compression:.3g}")
    return EXIT_OK
