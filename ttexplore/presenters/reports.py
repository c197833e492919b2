"""Runs shaped for people: labels, durations, and the 2018 reproduction's summaries.

Plain data in (run dicts as :meth:`~ttexplore.runs.store.RunStore.list_runs` returns
them, metric events as :meth:`~ttexplore.runs.store.RunStore.metrics` returns them),
plain data out (strings, dicts, pandas DataFrames). No streamlit, no torch: the
pages call these and only arrange the results.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.tt.limits import MAX_FEATURES
from ttexplore.runs.data_info import dataset_info
from ttexplore.runs.fields import pad_value
from ttexplore.runs.kinds import LayerSpec, Shape, features_of, kind_named, layer_shapes
from ttexplore.runs.migrate import stored_layers

__all__ = [
    "epoch_text",
    "run_config",
    "run_network",
    "run_ranks_used",
    "kind_title",
    "has_tt_cores",
    "run_layer_count",
    "run_is_dense",
    "ranks_list_text",
    "run_shape_text",
    "run_label",
    "run_ranks_text",
    "run_kinds_text",
    "run_net_params",
    "config_rows",
    "format_duration",
    "training_budget",
    "best_accuracy",
    "ACCURACY_WORDS",
    "stopped_early_at",
    "validation_text",
]

#: What a run's "best" accuracy is, by how it was chosen (:func:`best_accuracy`).
ACCURACY_WORDS = {
    "validation": "test accuracy at the best validation epoch",
    "test": "best test accuracy (selected on test: optimistic)",
}

@lru_cache(maxsize=4096)
def _parsed_config(text: str) -> Optional[RunConfig]:
    try:
        return RunConfig.from_dict(json.loads(text))
    except (ConfigError, ValueError, TypeError, KeyError):
        return None


def run_config(run: Mapping[str, Any]) -> Optional[RunConfig]:
    """The run's :class:`~ttexplore.runs.config.RunConfig`, read from its stored config in whatever form it
    was stored (cached by its text), or ``None`` when this version cannot read it."""
    config = run.get("config")
    if not isinstance(config, Mapping):
        return None
    return _parsed_config(json.dumps(config, sort_keys=True, default=str))


def run_network(run: Mapping[str, Any]) -> tuple[Optional[tuple[LayerSpec, ...]], Optional[Shape]]:
    """The run's hidden layers and its input shape: from its config, or, when this version does not accept
    that whole config, its layers read alone and the input its dataset and padding give (``None`` when
    those cannot be read either)."""
    config = run_config(run)
    if config is not None:
        return config.layers, config.input_shape
    values = run.get("config")
    if not isinstance(values, Mapping):
        return None, None
    try:
        info = dataset_info(values.get("dataset", RunConfig.dataset))
        side = pad_value(values.get("pad_to", RunConfig.pad_to)) or info.side
        in_shape: Optional[Shape] = (info.channels, side, side)
    except (KeyError, ConfigError, TypeError):
        in_shape = None
    return stored_layers(values, features_of(in_shape) if in_shape else None), in_shape


def kind_title(name: Any) -> str:
    """How tables name a layer kind stored as ``name``: ``"TT"``, ``"dense"``, ``"matrix rank"``
    (an unknown name as it is)."""
    try:
        return kind_named(name).title
    except ConfigError:
        return "" if name is None else str(name)


def _ranked_layer(layers: Sequence[LayerSpec], in_shape: Optional[Shape]) -> tuple[LayerSpec, Shape]:
    """The layer whose ranks describe a network (the first with ranks, a CNN's first TT convolution; else the
    first layer) and its input shape (the widest one when the network's input is unknown)."""
    if in_shape is None:
        return layers[0], (MAX_FEATURES,)
    shapes = layer_shapes(layers, in_shape)
    for layer, shape in zip(layers, shapes):
        if layer.ranks_used(shape):
            return layer, shape
    return layers[0], shapes[0]


def has_tt_cores(run: Mapping[str, Any]) -> bool:
    """Whether the run's (first) hidden layer stores TT cores."""
    layers, _ = run_network(run)
    return layers is not None and layers[0].has_tt_cores


def run_layer_count(run: Mapping[str, Any]) -> int:
    """How many hidden layers the run's network has (0 when this version cannot read its config)."""
    config = run_config(run)
    return len(config.layers) if config is not None else 0


def run_is_dense(run: Mapping[str, Any]) -> bool:
    """Whether every hidden layer of the run is dense (its own dense twin)."""
    config = run_config(run)
    return config is not None and all(layer.dense_twin() == layer for layer in config.layers)


def ranks_list_text(ranks: Sequence[int]) -> str:
    """``(4, 4, 4)`` -> ``"4"``, ``(2, 4, 2)`` -> ``"2,4,2"``, ``()`` -> ``""``."""
    if not ranks:
        return ""
    return str(ranks[0]) if len(set(ranks)) == 1 else ",".join(map(str, ranks))


def run_ranks_used(run: Mapping[str, Any]) -> Optional[tuple[int, ...]]:
    """The ranks the run's first hidden layer with ranks has (a CNN's first TT convolution; else its first layer),
    clipped to the useful ones (``()`` for a network without ranks; as asked where the input is unknown);
    ``None`` when its config cannot be read."""
    layers, in_shape = run_network(run)
    if layers is None:
        return None
    layer, shape = _ranked_layer(layers, in_shape)
    return layer.ranks_used(shape)


def run_ranks_text(run: Mapping[str, Any]) -> str:
    """The ranks of the run's first hidden layer with ranks as it uses them, clipped to the useful ones (``"4"``,
    ``"2,4,2"``), ``"max"`` when none were given, '' for a network without ranks (dense)."""
    used = run_ranks_used(run)
    if used is None:
        ranks = run.get("ranks")
        return ",".join(map(str, ranks)) if isinstance(ranks, (list, tuple)) else str(ranks or "")
    layers, in_shape = run_network(run)
    if used and _ranked_layer(layers, in_shape)[0].rank_setting is None:
        return "max"
    return ranks_list_text(used)


def run_kinds_text(run: Mapping[str, Any]) -> str:
    """The kinds of the run's hidden layers, each once, as tables name them (``"TT"``, ``"conv + max pool + TT conv
    + TT"``); the stored first layer's kind when its layers cannot be read."""
    layers, _ = run_network(run)
    if layers is None:
        return kind_title(run.get("layer"))
    return " + ".join(dict.fromkeys(layer.title for layer in layers))


def run_net_params(run: Mapping[str, Any]) -> Optional[int]:
    """Every parameter of the run's network (each layer's weights and biases and the head's, as
    :meth:`RunConfig.net_params <ttexplore.runs.config.RunConfig.net_params>` counts them); ``None`` when its config
    cannot be read."""
    config = run_config(run)
    return config.net_params() if config is not None else None


def config_rows(run: Mapping[str, Any]) -> list[dict[str, str]]:
    """The Run page's configuration table: the shape and ranks as used, every hidden layer on a row of its own (its
    text form and label, e.g. ``"ttconv:2x4x4->4x4x4:4:3 · TT conv 2x4x4->4x4x4 r=4 3x3"``), then the other
    settings as stored."""
    config = dict(run.get("config") or {})
    rows = [{"setting": "shape", "value": run_shape_text(run)}, {"setting": "ranks (as used)", "value": run_ranks_text(run)}]
    layers, _ = run_network(run)
    if layers is not None:
        config.pop("layers", None)
        config.pop("hidden_layers", None)
        rows += [{"setting": f"hidden layer {index}", "value": f"{layer.text()} · {layer.label()}"}
                 for index, layer in enumerate(layers, start=1)]
        net = run_net_params(run)
        if net is not None:
            rows.append({"setting": "network parameters", "value": f"{net:,}"})
    rows += [{"setting": key, "value": "" if value is None else str(value)} for key, value in config.items()]
    return rows


def run_shape_text(run: Mapping[str, Any]) -> str:
    """The run's shape in the house text form (``"4x8x8x4"``, ``"2^10"``, ``"4x7x4x7->5x5x8x4"``),
    derived from its config (also for runs stored before that form), else ``"dense"`` / ``"matrix rank"``;
    for several hidden layers each one's part (``"4^5->8x16x16x16x8 | dense 32"``)."""
    layers, _ = run_network(run)
    if layers is None:
        return str(run.get("shape") or run.get("layer") or "")
    if len(layers) == 1:
        return layers[0].shape_label()
    return " | ".join(layer.part_label() for layer in layers)


def run_label(run: Mapping[str, Any], with_id: bool = True) -> str:
    """A short name for legends and pickers, e.g. ``"TT 4x8x8x4 r=4 · mnist5k · #1a2b3c"``."""
    config = run_config(run)
    layers, in_shape = run_network(run)
    if config is not None:
        body = config.network_text()
    elif layers is not None and len(layers) == 1 and in_shape is not None:
        body = layers[0].describe(in_shape)
    elif layers is not None:
        body = " -> ".join(layer.label() for layer in layers)
    else:
        body = str(run.get("shape") or run.get("layer") or "")
    text = f"{body} · {run.get('dataset', (run.get('config') or {}).get('dataset', ''))}"
    if run.get("label"):
        text += f" · {run['label']}"
    if with_id and run.get("id"):
        text += f" · #{str(run['id'])[-6:]}"
    return text




def epoch_text(epochs: Optional[float]) -> str:
    """Epochs as the pages say them: whole as a whole number, else to one decimal (``25.5079`` -> ``"25.5"``,
    ``3.0`` -> ``"3"``); ``"0"`` for ``None``."""
    value = float(epochs or 0.0)
    return f"{round(value)}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def best_accuracy(run: Mapping[str, Any]) -> tuple[Optional[float], str]:
    """The run's best accuracy and how it was chosen (a key of :data:`ACCURACY_WORDS`): with a validation
    split, the test accuracy at the epoch of the lowest validation loss (``"validation"``: the test set chose
    nothing); without one, the highest test accuracy of any point (``"test"``: chosen on the test set itself,
    so optimistic)."""
    if run.get("test_accuracy_at_best_val") is not None:
        return run["test_accuracy_at_best_val"], "validation"
    return run.get("best_test_accuracy"), "test"


def stopped_early_at(run: Mapping[str, Any]) -> Optional[float]:
    """The epoch a completed run with early stopping ended at, when that is before its planned epochs; else ``None``."""
    config = run.get("config") or {}
    done, planned = run.get("epochs_done") or 0, config.get("epochs") or 0
    if run.get("status") == "completed" and config.get("early_stop") and 0 < done < planned:
        return done
    return None


def validation_text(run: Mapping[str, Any]) -> str:
    """What a run's validation split chose, in words: ``"best validation epoch 4 (val loss 0.310, val accuracy
    0.921): test accuracy 0.915 there · stopped early at epoch 6 of 10 (no lower validation loss for 2 epochs)"``;
    '' for a run without a split (or before its first epoch)."""
    if run.get("best_val_epoch") is None:
        return ""
    text = (f"best validation epoch {run['best_val_epoch']:g} (val loss {run['best_val_loss']:.3f}, val accuracy "
            f"{run['best_val_accuracy']:.3f}): test accuracy {run['test_accuracy_at_best_val']:.4f} there")
    stopped = stopped_early_at(run)
    if stopped is not None:
        config = run["config"]
        text += (f" · stopped early at epoch {stopped:g} of {config['epochs']} (no lower validation loss for "
                 f"{config['early_stop']} epoch{'s' if config['early_stop'] != 1 else ''})")
    return text


def format_duration(seconds: Optional[float]) -> str:
    """``75.2`` -> ``"1m 15s"``; ``None`` -> ``""``."""
    if seconds is None or seconds != seconds:  # None or NaN
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def training_budget(run: Mapping[str, Any]) -> str:
    """How much training a run was given: ``"5 epochs"``, ``"1 epoch, 1,000 images"``."""
    config = run.get("config") or {}
    epochs = config.get("epochs")
    text = f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else "? epochs"
    if config.get("train_limit"):
        text += f", {int(config['train_limit']):,} images"
    return text
