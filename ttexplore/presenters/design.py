"""The Explore page's design as plain state: the values of its widgets (Streamlit's session state, or any
dict), what each widget change does to the others, the run they describe, and the words of its tiles.

A preset fills the shapes and the extra layers; a typed shape picks the preset it matches (or "custom");
a dataset change keeps the preset and padding valid; layers are added (a sensible next one) and removed.
No streamlit and no torch: the page wires these to its widgets' callbacks, tests drive them with a dict.

The keys are the page's widget keys: ``dataset``, ``preset``, ``in_modes`` and ``out_modes`` (as typed),
``pad_to`` (0: no padding), ``max_rank``, ``per_core`` with ``rank_<d>_<k>`` (boundary ``k`` of a
``d``-core shape), ``more_layers`` (the hidden layers after the first, as text) with one
``more_layer_<i>`` text box each.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, Optional, Sequence

from ttexplore.presenters import preview
from ttexplore.presenters.preview import (CUSTOM, baseline_config, design_config, network_config, next_layer_text,
                                          padding_options, presets_for)
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data import available_datasets
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET, dataset_info
from ttexplore.runs.resources import check_run_memory, human_bytes
from ttexplore.tt.shapes import parse_modes

__all__ = ["DesignState", "planned_runs", "layer_tiles", "ranks_markdown", "ranks_caption", "memory_tiles", "network_caption"]

#: The max TT rank of a first visit.
FIRST_RANK = 4


class DesignState:
    """The design widgets' values and their transitions (each method is one widget's callback).

    Args:
        values: the widgets' values by key (``st.session_state``, or a dict); changed in place.
        labels: the page's labels of RunConfig's fields (``{"in_modes": "Input modes"}``): a shape's
            error names the box the user typed in.
    """

    def __init__(self, values: MutableMapping[str, Any], labels: Optional[Mapping[str, str]] = None) -> None:
        self.values = values
        self.labels = dict(labels or {})

    # ------------------------------------------------------------ reading
    @property
    def more_layers(self) -> list[str]:
        """The hidden layers after the first, as typed (``["dense:256"]``)."""
        return list(self.values.get("more_layers", []))

    def pad_sides(self, dataset: Optional[str] = None) -> list[int]:
        """The padding choices as widget values: 0 stands for no padding (RunConfig reads 0 as None)."""
        return [side or 0 for side in padding_options(dataset or self.values["dataset"])]

    @staticmethod
    def core_rank_key(depth: int, boundary: int) -> str:
        """The key of the rank slider of ``boundary`` (1-based) of a ``depth``-core shape."""
        return f"rank_{depth}_{boundary}"

    def core_ranks(self, depth: int) -> Optional[list[int]]:
        """One rank per boundary when the user sets each core's rank (and the sliders exist), else None."""
        if not (self.values.get("per_core") and depth > 1 and self.core_rank_key(depth, 1) in self.values):
            return None
        return [self.values[self.core_rank_key(depth, k)] for k in range(1, depth)]

    def config(self, **training: Any) -> RunConfig:
        """The run the widgets describe; ``training`` adds RunConfig fields (``epochs``, ``lr``, ...).

        Raises:
            ConfigError, ValueError: naming the field (by its label) and the fix.
        """
        values = self.values
        depth = len(parse_modes(values["in_modes"], self.labels.get("in_modes", "in_modes")))
        design = design_config(values["dataset"], values["in_modes"], values["out_modes"], values.get("pad_to") or None,
                               values.get("max_rank", FIRST_RANK), self.core_ranks(depth), **training)
        return network_config(design, self.more_layers)

    # ------------------------------------------------------------ transitions
    def start(self) -> None:
        """A first visit (no dataset chosen yet): the paper's MNIST net on the bundled data, at rank 4."""
        if "dataset" in self.values:
            return
        self.values["dataset"] = DEFAULT_DATASET
        self.values["preset"] = presets_for(DEFAULT_DATASET)[0].name
        self.apply_preset()
        self.values["max_rank"] = FIRST_RANK

    def apply_preset(self) -> None:
        """The preset picked: its shapes, padding and extra layers fill the boxes (a custom choice keeps them)."""
        values = self.values
        preset = next((p for p in presets_for(values["dataset"]) if p.name == values.get("preset")), None)
        if preset is not None:
            values["in_modes"], values["out_modes"], values["pad_to"] = preset.in_text, preset.out_text, preset.pad_to or 0
            self.set_more_layers(list(preset.more_layers))

    def shapes_typed(self) -> None:
        """A shape, the padding or a layer changed: the preset picker shows the preset it now matches, or custom."""
        values = self.values
        typed = (values.get("in_modes"), values.get("out_modes"), values.get("pad_to"), tuple(self.more_layers))
        match = next((p for p in presets_for(values["dataset"])
                      if (p.in_text, p.out_text, p.pad_to or 0, p.more_layers) == typed), None)
        values["preset"] = match.name if match else CUSTOM

    def dataset_changed(self) -> None:
        """Another dataset: its first preset when the one picked does not fit it; padding it allows."""
        values = self.values
        options = presets_for(values["dataset"])
        if values.get("preset") not in [p.name for p in options]:
            values["preset"] = options[0].name
            self.apply_preset()
        if values.get("pad_to") not in self.pad_sides():
            values["pad_to"] = self.pad_sides()[-1]

    def set_more_layers(self, layers: Sequence[str]) -> None:
        """The hidden layers after the first, and the text in each one's box."""
        self.values["more_layers"] = list(layers)
        for index, text in enumerate(layers):
            self.values[f"more_layer_{index}"] = text

    def layer_typed(self, index: int) -> None:
        """The box of extra layer ``index`` (0-based) was edited."""
        layers = self.more_layers
        layers[index] = self.values[f"more_layer_{index}"]
        self.values["more_layers"] = layers
        self.shapes_typed()

    def add_layer(self) -> None:
        """One more hidden layer: back to the input's modes after a TT net, else a dense layer as wide as the input."""
        try:
            text = next_layer_text(self.config())
        except (ConfigError, ValueError):  # the design does not stand yet: a layer that always does
            text = f"dense:{dataset_info(self.values['dataset']).features}"
        self.set_more_layers([*self.more_layers, text])
        self.shapes_typed()

    def remove_layer(self, index: int) -> None:
        """Drop extra layer ``index`` (0-based); the boxes after it move up."""
        layers = self.more_layers
        del layers[index]
        self.set_more_layers(layers)
        self.shapes_typed()


def planned_runs(config: RunConfig, name: str = "", baseline: bool = False,
                 available: Optional[Mapping[str, bool]] = None) -> list[tuple[RunConfig, str]]:
    """What the Train button queues, as ``(config, name)``: the design, and with ``baseline`` the dense
    layers of the same sizes (named ``"<name> (dense)"``), all checked before any is queued (no half pair).

    Args:
        available: which datasets this machine holds (default :func:`~ttexplore.runs.data.available_datasets`).

    Raises:
        ConfigError: the dataset is not on this machine, or a run is over the memory budget; with the fix.
    """
    available = available_datasets() if available is None else available
    if not available.get(config.dataset):
        info = DATASETS[config.dataset]
        raise ConfigError("dataset", f"{info.title} is not on this machine: {info.source}")
    runs = [(config, name)] + ([(baseline_config(config), f"{name} (dense)" if name else "")] if baseline else [])
    for each, _ in runs:
        check_run_memory(each)
    return runs


# ---------------------------------------------------------------- the preview's words
def layer_tiles(view: preview.LayerPreview) -> dict[str, dict[str, Any]]:
    """The Explore tiles of a design, each as keyword arguments of ``st.metric``: ``weights``, ``dense``,
    ``compression``, ``flops`` (forward, one image) and ``memory`` (training, :func:`memory_tile`)."""
    factor = view.compression_factor
    change = view.tt_flops / view.dense_flops - 1
    memory = preview.memory_tile(view)
    quiet = {"delta_color": "off", "delta_arrow": "off"}
    return {
        "weights": {"label": "TT layer weights", "value": f"{view.tt_params:,}", **quiet,
                    "delta": f"{view.in_features:,} → {view.out_features:,} layer",
                    "help": "Σ r_{k−1}·n_k·m_k·r_k over the cores (no bias)"},
        "dense": {"label": "Dense weights", "value": f"{view.dense_params:,}", "delta": "the layer TT replaces", **quiet,
                  "help": f"{view.in_features:,} inputs × {view.out_features:,} hidden units"},
        "compression": {"label": "Compression", "value": f"{factor:,.0f}×" if factor >= 10 else f"{factor:.2f}×", **quiet,
                        "delta": f"smaller · rate {view.compression:.2e}",
                        "help": "Compression factor: dense / TT weights. Compression rate (the paper's tables): TT / dense."},
        "flops": {"label": "Forward FLOPs / image", "value": preview.human_count(view.tt_flops), "delta_color": "inverse",
                  "delta": f"{change:+.0%} vs dense {preview.human_count(view.dense_flops)}",
                  "help": f"FLOPs of the forward auto picks for one image: '{view.strategy}' (see the table below)"},
        "memory": {"label": "Training memory (est.)", "value": memory["value"], "delta": memory["delta"],
                   "help": memory["help"], **quiet},
    }


def ranks_markdown(view: preview.LayerPreview) -> str:
    """The ranks box as markdown: each boundary's maximal useful rank and the rank in use (a table up to six
    boundaries, two lines beyond); a one-core layer has none."""
    if not view.max_useful:
        return "One core: the layer is dense, it has no TT ranks."
    if len(view.ranks) > 6:
        return f"**max useful** {' · '.join(map(str, view.max_useful))}  \n**in use** {' · '.join(map(str, view.ranks))}"
    return ("| | " + " | ".join(f"r{k}" for k in range(1, len(view.ranks) + 1)) + " |\n|---|" + "---|" * len(view.ranks)
            + "\n| **max useful** | " + " | ".join(map(str, view.max_useful))
            + " |\n| **in use** | " + " | ".join(map(str, view.ranks)) + " |")


def ranks_caption(view: preview.LayerPreview) -> str:
    """Under the ranks box: which ranks were clipped to the maximal useful ones, or how those are defined."""
    if view.clipped:
        return ("Clipped to the maximal useful rank (more would only waste weights): "
                + ", ".join(f"r{k} {asked} → {used}" for k, asked, used in view.clipped) + ".")
    return "Max useful rank of a boundary: min(∏ n·m of the cores left of it, ∏ n·m right of it). None clipped."


def memory_tiles(config: RunConfig) -> tuple[list[dict[str, Any]], str]:
    """The memory guard's box: a tile for the design and one for its dense twin (keyword arguments of
    ``st.metric``), and the caption under them (with the twin's refusal, when refused)."""
    tt_memory, dense_memory = preview.memory_side_by_side(config)
    tiles = [{"label": title, "value": human_bytes(verdict.estimate.total),
              "delta": "allowed" if verdict.allowed else "refused", "delta_arrow": "off",
              "delta_color": "normal" if verdict.allowed else "inverse", "help": verdict.estimate.describe(5)}
             for verdict, title in ((tt_memory, "This net: training memory"), (dense_memory, "Its dense twin: training memory"))]
    caption = ("The memory guard runs before anything is queued: the dense twin has every hidden layer dense, "
               f"{config.dense_layer_params():,} weights against {config.layer_params():,}."
               + (f" Refused: {dense_memory.refusal}" if not dense_memory.allowed else ""))
    return tiles, caption


def network_caption(config: RunConfig) -> str:
    """Above the table of a network of several hidden layers: that the tiles describe the first, and the widths."""
    return (f"**The whole network** — the tiles above describe hidden layer 1 of {len(config.layers)}; "
            f"widths {' → '.join(f'{width:,}' for width in config.layer_widths)}")
