"""The Explore page's design as plain state: the values of its widgets (Streamlit's session state, or any
dict), what each widget change does to the others, the run they describe, and the words of its tiles.

A preset fills the shapes and the extra layers; a typed shape picks the preset it matches (or "custom");
a dataset change keeps the preset and padding valid; layers are added (a sensible next one) and removed.
No streamlit and no torch: the page wires these to its widgets' callbacks, tests drive them with a dict.

The keys are the page's widget keys: ``dataset``, ``preset``, ``in_modes`` and ``out_modes`` (as typed),
``pad_to`` (0: no padding), ``max_rank``, ``per_core`` with ``rank_<d>_<k>`` (boundary ``k`` of a
``d``-core shape), ``more_layers`` (the hidden layers after the first, as text) with one
``more_layer_<i>`` text box each, ``next_layer`` (the suggestion "add a layer" adds); the Train card's ``epochs``,
``batch_size``, ``lr``, ``seed``, ``train_limit`` (0: every image), ``device``, ``val_split``, ``early_stop`` (0: off)
and ``round_to`` ('': none); and ``carried``, the settings of a run loaded by :meth:`DesignState.load` that have no
widget (optimizer, init, ...), kept as they were.

A network typed layer by layer (``typed_net``: a CNN, whose first layer the shape boxes cannot describe)
keeps every hidden layer in ``more_layers``, the first included; the network presets (``convnet``,
``tt-convnet``, sized for the dataset) are typed so, and ``net_rank`` sets the rank of each of its TT layers.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, Optional, Sequence

from ttexplore.presenters import preview
from ttexplore.presenters.network import NetworkPreset, Suggestion, layer_suggestions, network_presets_for, reads_images
from ttexplore.presenters.preview import (CUSTOM, Preset, baseline_config, design_config, network_config, next_layer_text,
                                          padding_options, presets_for)
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.data import available_datasets
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET, dataset_info
from ttexplore.runs.kinds import MAX_HIDDEN_LAYERS, all_kinds, parse_layer
from ttexplore.runs.resources import check_run_memory, eval_batch_size, human_bytes
from ttexplore.tt import ttmath
from ttexplore.tt.shapes import parse_modes
from ttexplore.tt.ttshape import modes_text

__all__ = ["DesignState", "TRAINING_DEFAULTS", "rerun_problem", "NET_RANKS", "layers_caption", "planned_runs", "layer_tiles", "ranks_markdown", "ranks_caption",
           "memory_tiles", "network_caption", "clipping_text", "settings_title", "MEMORY_PARTS", "memory_parts_rows",
           "memory_why", "TT_INTRO", "TT_FORMULA", "TT_RANKS", "tile_count"]

#: The max TT rank of a first visit.
FIRST_RANK = 4

PAPER = "https://arxiv.org/abs/1509.06569"
#: The "What is a TT layer?" panel: the words before the formula, the formula (LaTeX), the words after it.
TT_INTRO = ("A fully-connected layer multiplies by an $M \\times N$ weight matrix $W$. A **Tensor-Train (TT) layer** "
            "never stores $W$: it writes $N = n_1 \\cdots n_d$ and $M = m_1 \\cdots m_d$ and keeps $d$ small **cores** "
            "$G_k$ of shape $r_{k-1} \\times n_k \\times m_k \\times r_k$. Each entry of $W$ is a product of small "
            "matrices, one slice per core:")
TT_FORMULA = r"W\big((i_1,\dots,i_d),(j_1,\dots,j_d)\big) = G_1[i_1,j_1]\,G_2[i_2,j_2]\cdots G_d[i_d,j_d]"
TT_RANKS = ("The **TT ranks** $r_1, \\dots, r_{d-1}$ ($r_0 = r_d = 1$) set the size: $\\sum_k r_{k-1} n_k m_k r_k$ weights "
            "instead of $N M$. The paper's 1024→1024 layer as 4×8×8×4 needs 2,176 weights at rank 4 instead of 1,048,576, "
            f"and trains by back-propagation on the cores. Novikov, Podoprikhin, Osokin, Vetrov, [*Tensorizing Neural "
            f"Networks*]({PAPER}), NeurIPS 2015. A **TT convolution** (Garipov et al. 2016, *Ultimate tensorization*) "
            "stores its kernel the same way, with a spatial core $G_0[(x, y)]$ first and a core per factor of the "
            "channels: pick the **tt-convnet** preset.")

#: The choices of the rank every TT layer of a typed network is set to.
NET_RANKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)

#: The Train card's widgets (RunConfig fields) and their first values; ``train_limit`` and ``early_stop`` 0 and
#: ``round_to`` '' mean ``None`` (every image; no early stopping; no rank schedule).
TRAINING_DEFAULTS = {"epochs": 5, "batch_size": 64, "lr": 3e-3, "seed": 0, "train_limit": 0, "device": "auto",
                     "val_split": 0.0, "early_stop": 0, "round_to": ""}
#: The fields the design widgets and the Train card set themselves (the rest of a loaded run is ``carried``).
_WIDGET_FIELDS = ("dataset", "pad_to", "layers", "legacy_fields", *TRAINING_DEFAULTS)


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
        """The typed hidden layers (``["dense:256"]``): those after the first, or every one of a typed network."""
        return list(self.values.get("more_layers", []))

    @property
    def typed(self) -> bool:
        """Every hidden layer is typed (a network, a CNN), rather than the first designed by the shape boxes."""
        return bool(self.values.get("typed_net"))

    def error_labels(self) -> dict[str, str]:
        """The labels a message's field names become: the page's, less those of the shape boxes when every layer is
        typed (a typed layer's ``in_modes`` is its own box's, which the message names: ``Hidden layer 3: ...``)."""
        boxes = ("in_modes", "out_modes", "ranks")
        return {field: label for field, label in self.labels.items() if not (self.typed and field in boxes)}

    def layer_title(self, index: int) -> str:
        """The label of typed layer ``index``'s box, as messages count the layers (``"Hidden layer 2"``)."""
        return f"Hidden layer {index + (1 if self.typed else 2)}"

    def presets(self) -> "list[Preset | NetworkPreset]":
        """The picker's presets for the dataset: the shapes of one TT layer, then the networks (the CNNs)."""
        dataset = self.values["dataset"]
        return [*presets_for(dataset), *network_presets_for(dataset)]

    def preset(self, name: Optional[str] = None) -> "Preset | NetworkPreset | None":
        """The preset called ``name`` (default: the one picked), or None (custom)."""
        name = self.values.get("preset") if name is None else name
        return next((preset for preset in self.presets() if preset.name == name), None)

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

    def training(self) -> dict[str, Any]:
        """The Train card's values as RunConfig fields (0 or '' read as ``None`` where it means none), then the
        settings a loaded run carried (:meth:`load`)."""
        values = {key: self.values.get(key, default) for key, default in TRAINING_DEFAULTS.items()}
        for key in ("train_limit", "early_stop", "round_to"):
            values[key] = values[key] or None
        return {**values, **self.values.get("carried", {})}

    def run_config(self) -> RunConfig:
        """The run the Train button queues: the design with the Train card's settings (:meth:`training`)."""
        return self.config(**self.training())

    def config(self, more: bool = True, **training: Any) -> RunConfig:
        """The run the widgets describe (with the extra hidden layers unless ``more`` is False); ``training``
        adds RunConfig fields (``epochs``, ``lr``, ...).

        Raises:
            ConfigError, ValueError: naming the field (by its label) and the fix.
        """
        values = self.values
        if self.typed:
            layers = [text for text in self.more_layers if str(text).strip()]
            if not layers:
                raise ConfigError("layers", "the network has no layer: add one, e.g. conv:32:3")
            return RunConfig.for_dataset(values["dataset"], layers=layers, pad_to=values.get("pad_to") or None, **training)
        depth = len(parse_modes(values["in_modes"], self.labels.get("in_modes", "in_modes")))
        design = design_config(values["dataset"], values["in_modes"], values["out_modes"], values.get("pad_to") or None,
                               values.get("max_rank", FIRST_RANK), self.core_ranks(depth), **training)
        return network_config(design, self.more_layers) if more else design

    def with_more_layers(self, first: Optional[RunConfig]) -> tuple[Optional[RunConfig], Optional[Exception]]:
        """``first`` (the design's first layer, :meth:`config` with ``more=False``) followed by the extra layers,
        or ``(None, the error)`` when one of them is wrong: the page then keeps showing the first layer's numbers
        and says what is wrong beside the extra layers' boxes. ``(None, None)`` without a first layer."""
        if first is None:
            return None, None
        try:
            return network_config(first, self.more_layers), None
        except (ConfigError, ValueError) as error:
            return None, error

    def after_train(self) -> None:
        """The Train button queued the run(s): the next run gets its own name and notes (they describe one run);
        the tags stay, since a series of runs shares them, and the settings' title shows them
        (:func:`settings_title`), so none carries over unseen."""
        self.values["run_name"] = ""
        self.values["run_notes"] = ""

    # ------------------------------------------------------------ transitions
    def load(self, config: RunConfig) -> list[str]:
        """Fill every widget from ``config`` (Re-run with changes): dataset, padding, shapes, ranks (per core when
        they differ), the further layers, the Train card; settings without a widget are ``carried`` as they are,
        so :meth:`run_config` gives ``config`` back. Returns notes on what could not be carried exactly (ranks
        ``max`` become the maximal useful ranks).

        A network whose first hidden layer the shape boxes cannot describe (a CNN, a dense or matrix-rank
        first layer, a TT layer in two-part text form) is loaded typed layer by layer (``typed_net``).
        """
        first = config.layers[0]
        values = self.values
        if not (first.has_tt_cores and first.one_layer_form and getattr(first, "in_modes", None)):
            values.update(dataset=config.dataset, pad_to=config.pad_to or 0, typed_net=True, preset=CUSTOM)
            self.set_more_layers([layer.text() for layer in config.layers])
            self._load_training(config)
            return []
        notes: list[str] = []
        values.update(dataset=config.dataset, pad_to=config.pad_to or 0, in_modes=modes_text(first.in_modes),
                      out_modes=modes_text(first.out_modes), per_core=False, typed_net=False)
        ranks = first.rank_setting
        if ranks is None:
            ranks = ttmath.max_useful_ranks(first.in_modes, first.out_modes)
            notes.append("ranks 'max' became the maximal useful ranks " + ",".join(map(str, ranks)))
        if isinstance(ranks, int):
            values["max_rank"] = ranks
        else:
            values.update(max_rank=max(ranks), per_core=True)
            for boundary, rank in enumerate(ranks, start=1):
                values[self.core_rank_key(len(first.in_modes), boundary)] = rank
        self.set_more_layers([layer.text() for layer in config.layers[1:]])
        self._load_training(config)
        return notes

    def _load_training(self, config: RunConfig) -> None:
        """The Train card's widgets from ``config``, the settings without a widget ``carried``; then the design's
        derived state (the preset it matches)."""
        values = self.values
        values.update({key: getattr(config, key) for key in TRAINING_DEFAULTS})
        values["train_limit"], values["early_stop"] = config.train_limit or 0, config.early_stop or 0
        values["round_to"] = config.round_to.text() if config.round_to is not None else ""
        values["carried"] = {key: value for key, value in config.to_dict().items() if key not in _WIDGET_FIELDS}
        self.shapes_typed()

    def load_run(self, run: Optional[Mapping[str, Any]], run_id: str) -> list[str]:
        """:meth:`load` the config of ``run`` (a :meth:`RunStore.get_run` dict, ``None`` when there is no such run).

        Raises:
            ConfigError: field ``from``, for a run that does not exist or whose config this version cannot read;
                else as :meth:`load`.
        """
        from ttexplore.presenters.reports import run_config

        if run is None:
            raise ConfigError("from", f"there is no run {run_id!r} to start from: it was deleted, or the link is from "
                                      "another run store")
        config = run_config(run)
        if config is None:
            raise ConfigError("from", f"run {run_id}'s configuration cannot be read by this version")
        return self.load(config)

    def forget_run(self) -> None:
        """Drop a loaded run's carried settings (a new run's defaults again) and its banner; the widgets keep their values."""
        for key in ("carried", "loaded_from", "load_notes"):
            self.values.pop(key, None)

    def carried_text(self) -> str:
        """The carried settings that differ from a new run's (``"optimizer sgd · momentum 0.5"``); '' when none."""
        carried = self.values.get("carried", {})
        changed = [f"starts from {InitFrom.of(value).describe()}" if key == "init_from" else f"{key.replace('_', ' ')} {value}"
                   for key, value in carried.items() if value != RunConfig.__dataclass_fields__[key].default]
        return " · ".join(changed)

    def start(self) -> None:
        """A first visit (no dataset chosen yet): the paper's MNIST net on the bundled data, at rank 4."""
        if "dataset" in self.values:
            return
        self.values["dataset"] = DEFAULT_DATASET
        self.values["preset"] = presets_for(DEFAULT_DATASET)[0].name
        self.apply_preset()
        self.values["max_rank"] = FIRST_RANK

    def apply_preset(self) -> None:
        """The preset picked: its shapes, padding and extra layers fill the boxes, or a network's layers its typed
        boxes (a custom choice keeps them)."""
        values = self.values
        preset = self.preset()
        if isinstance(preset, NetworkPreset):
            values["typed_net"], values["pad_to"] = True, preset.pad_to
            self.set_more_layers(list(preset.layers))
        elif preset is not None:
            values["typed_net"] = False
            values["in_modes"], values["out_modes"], values["pad_to"] = preset.in_text, preset.out_text, preset.pad_to or 0
            self.set_more_layers(list(preset.more_layers))

    def shapes_typed(self) -> None:
        """A shape, the padding or a layer changed: the preset picker shows the preset it now matches, or custom."""
        values = self.values
        if self.typed:
            typed: tuple = (values.get("pad_to") or 0, tuple(self.more_layers))
            match = next((p for p in network_presets_for(values["dataset"]) if (p.pad_to, p.layers) == typed), None)
        else:
            typed = (values.get("in_modes"), values.get("out_modes"), values.get("pad_to"), tuple(self.more_layers))
            match = next((p for p in presets_for(values["dataset"])
                          if (p.in_text, p.out_text, p.pad_to or 0, p.more_layers) == typed), None)
        values["preset"] = match.name if match else CUSTOM

    def dataset_changed(self) -> None:
        """Another dataset: a network preset sized again for its images; its first preset when the one picked does
        not fit it (a typed network of the user's own is kept); padding it allows."""
        values = self.values
        if isinstance(self.preset(), NetworkPreset):
            self.apply_preset()
        elif values.get("preset") not in [p.name for p in self.presets()] and not self.typed:
            values["preset"] = self.presets()[0].name
            self.apply_preset()
        if values.get("pad_to") not in self.pad_sides():
            values["pad_to"] = self.pad_sides()[-1]
        self.shapes_typed()

    def typed_changed(self) -> None:
        """The "type every layer" switch: on, the design's layers become typed boxes (the first one too); off, a
        first TT layer goes back to the shape boxes (any other first layer, which they cannot describe, gives
        way to the dataset's first preset)."""
        values = self.values
        if self.typed:
            values["typed_net"] = False
            try:
                layers = [layer.text() for layer in self.config().layers]
            except (ConfigError, ValueError):  # the boxes do not stand: their text as typed, then the other layers
                layers = [f"tt:{values.get('in_modes')}->{values.get('out_modes')}:{values.get('max_rank', FIRST_RANK)}",
                          *self.more_layers]
            values["typed_net"] = True
            self.set_more_layers(layers)
        else:
            try:
                first = parse_layer(self.more_layers[0]) if self.more_layers else None
            except ConfigError:
                first = None
            if first is not None and first.one_layer_form and first.has_tt_cores and isinstance(first.rank_setting, int):
                values["in_modes"], values["out_modes"] = preview.modes_text(first.in_modes), preview.modes_text(first.out_modes)
                values["max_rank"], values["per_core"] = first.rank_setting, False
                self.set_more_layers(self.more_layers[1:])
            else:
                values["preset"] = presets_for(values["dataset"])[0].name
                self.apply_preset()
        self.shapes_typed()

    def set_all_ranks(self) -> None:
        """The "TT ranks" choice of a typed network: every layer with TT cores at that rank (``net_rank``)."""
        layers = []
        for text in self.more_layers:
            try:
                layer = parse_layer(text)
            except ConfigError:  # left as typed: its box shows what is wrong
                layers.append(text)
                continue
            layers.append(layer.with_ranks(int(self.values["net_rank"])).text() if layer.has_tt_cores else text)
        self.set_more_layers(layers)
        self.shapes_typed()

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

    def suggestions(self) -> list[Suggestion]:
        """The layers "add a layer" offers, each valid after the design's last (built by the kinds from its output
        shape: a convolution or a pool after a convolution; a fully-connected layer after images flattens them);
        with the shape boxes, first a layer back to the input's width that keeps the network valid, of the last
        layer's kind where one fits (:func:`~ttexplore.presenters.preview.next_layer_text`). A design that does not
        stand yet gets a dense layer as wide as the input (always valid); a full network (the most hidden layers)
        none."""
        try:
            config = self.config()
        except (ConfigError, ValueError):  # the design does not stand yet: a layer that fits once it does
            width = dataset_info(self.values["dataset"]).features
            return [Suggestion(f"dense:{width}", f"dense:{width} — a dense layer as wide as the input")]
        if len(config.layers) >= MAX_HIDDEN_LAYERS:
            return []
        back = None if self.typed else next_layer_text(config)
        return layer_suggestions(config.layers, config.input_shape, () if back is None else (back,))

    def add_layer(self, text: Optional[str] = None) -> None:
        """One more hidden layer: ``text``, else the suggestion picked (``next_layer``) when it is still one,
        else the first suggestion (:meth:`suggestions`); nothing at the most hidden layers."""
        if len(self.more_layers) + (0 if self.typed else 1) >= MAX_HIDDEN_LAYERS:
            return
        if text is None:
            offered = [suggestion.text for suggestion in self.suggestions()]
            if not offered:
                return
            text = self.values.get("next_layer") if self.values.get("next_layer") in offered else offered[0]
        self.set_more_layers([*self.more_layers, text])
        self.shapes_typed()

    def remove_layer(self, index: int) -> None:
        """Drop typed layer ``index`` (0-based); the boxes after it move up. A typed network keeps its last layer."""
        layers = self.more_layers
        if self.typed and len(layers) <= 1:
            return
        del layers[index]
        self.set_more_layers(layers)
        self.shapes_typed()


def rerun_problem(run: Mapping[str, Any]) -> Optional[str]:
    """Why Explore cannot be prefilled with ``run`` (:meth:`DesignState.load_run`), or ``None`` when it can."""
    try:
        DesignState({}).load_run(run, str(run.get("id")))
    except ConfigError as error:
        return str(error)
    return None


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
    layers = len(view.config.layers)
    which = f"hidden layer 1 of {layers}: " if layers > 1 else ""  # the tiles describe the first layer, and say so
    return {
        "weights": {"label": "TT layer weights", "value": tile_count(view.tt_params), **quiet,
                    "delta": f"{which}{view.in_features:,} → {view.out_features:,} layer",
                    "help": f"Σ r_{{k−1}}·n_k·m_k·r_k over the cores (no bias): {view.tt_params:,}"},
        "dense": {"label": "Dense weights", "value": tile_count(view.dense_params), "delta": "the layer TT replaces", **quiet,
                  "help": f"{view.in_features:,} inputs × {view.out_features:,} hidden units = {view.dense_params:,}"},
        "compression": {"label": "Compression", "value": f"{factor:,.0f}×" if factor >= 10 else f"{factor:.2f}×", **quiet,
                        "delta": f"smaller · rate {view.compression:.2e}",
                        "help": "Compression factor: dense / TT weights. Compression rate (the paper's tables): TT / dense."},
        "flops": {"label": "Forward FLOPs / image", "value": preview.human_count(view.tt_flops), "delta_color": "inverse",
                  "delta": f"{change:+.0%} vs dense {preview.human_count(view.dense_flops)}",
                  "help": f"FLOPs of the forward auto picks for one image: '{view.strategy}' (see the table below)"},
        "memory": {"label": "Training memory (est.)", "value": memory["value"], "delta": memory["delta"],
                   "help": memory["help"], **quiet},
    }


#: The most characters a tile's number shows whole: a third of Explore's result column at 1400 px
#: ("1,048,576" fits; "268,435,456" was cut to "268,43…").
TILE_CHARS = 9


def tile_count(count: int) -> str:
    """A count as a tile shows it: whole with separators while it fits (:data:`TILE_CHARS`), else to three
    significant digits (``"268M"``; the tile's help gives it whole)."""
    whole = f"{count:,}"
    return whole if len(whole) <= TILE_CHARS else preview.human_count(count)


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
    counts = (f"{config.dense_net_params():,} parameters against {config.net_params():,}" if reads_images(config) else
              f"{config.dense_layer_params():,} weights against {config.layer_params():,}")
    caption = ("The memory guard runs before anything is queued: the dense twin has every hidden layer dense, "
               f"{counts}."
               + (f" Refused: {dense_memory.refusal}" if not dense_memory.allowed else ""))
    return tiles, caption


def network_caption(config: RunConfig) -> str:
    """Above the table of a network of several hidden layers: that the tiles describe the first, the widths, and
    the ranks clipped in any layer (:func:`clipping_text`)."""
    clipped = clipping_text(config)
    return (f"**The whole network** — the tiles above describe hidden layer 1 of {len(config.layers)}; "
            f"widths {' → '.join(f'{width:,}' for width in config.layer_widths)}" + (f". {clipped}" if clipped else ""))


def clipping_text(config: RunConfig, first: int = 1) -> str:
    """The ranks clipped in the hidden layers from index ``first`` on (the ranks box covers the first), each as its
    kind clips them (:meth:`~ttexplore.runs.kinds.LayerSpec.clipping`): ``"Hidden layer 2: rank 100 clipped to 64
    (more would only add weights)."``; '' when none is."""
    parts = []
    for index in range(first, len(config.layers)):
        layer, shape = config.layers[index], config.layer_shapes[index]
        clipped = layer.clipping(shape)
        if not clipped:
            continue
        single = len(layer.ranks_used(shape)) == 1
        parts.append(f"Hidden layer {index + 1}: " + ", ".join(
            f"{'rank' if single else f'r{k}'} {asked:,} clipped to {used:,}" for k, asked, used in clipped))
    return "; ".join(parts) + " (the most it can use; more would only add weights)." if parts else ""


def settings_title(values: Mapping[str, Any]) -> str:
    """The title of the Train card's folded settings, naming the tags the next run gets (they stay after a
    Train: :meth:`DesignState.after_train`), so none is applied unseen."""
    tags = list(values.get("run_tags") or [])
    shown = ", ".join(tags[:3]) + (f" +{len(tags) - 3}" if len(tags) > 3 else "")
    return (f"Name, tags ({shown}), batch size, seed, validation, device, rounding, baseline" if tags
            else "Name, tags, batch size, seed, validation, device, rounding, baseline")


#: The parts of a training-memory estimate as the memory box's table names them, in the order the peak adds them.
MEMORY_PARTS = {"hidden_weights": "hidden layers' weights", "head": "classifier (head)", "gradients": "gradients",
                "optimizer_state": "optimizer state (Adam's two moments)", "dataset": "dataset in memory",
                "input_batch": "a training batch", "activations": "a step's activations",
                "optimizer_scratch": "the optimizer step's temporaries", "evaluation": "an evaluation batch"}
#: Which parts live through the whole run; of the others only the largest counts (they never overlap).
_ALWAYS = ("hidden_weights", "head", "gradients", "optimizer_state", "dataset")


def memory_parts_rows(config: RunConfig) -> list[dict[str, Any]]:
    """The memory estimate of the net and of its dense twin, part by part (MiB), for the memory box's table:
    what lives through the run, then the three phases of which the largest sets the peak, then the peak."""
    tt_memory, dense_memory = preview.memory_side_by_side(config)
    mine, twin = tt_memory.estimate, dense_memory.estimate
    phases = {"step": ("input_batch", "activations"), "optimizer": ("optimizer_scratch",), "evaluation": ("evaluation",)}
    rows = [{"part": MEMORY_PARTS[name], "when": "always", "this net (MiB)": getattr(mine, name) / 2**20,
             "dense twin (MiB)": getattr(twin, name) / 2**20} for name in _ALWAYS]
    for phase, names in phases.items():
        for name in names:
            rows.append({"part": MEMORY_PARTS[name], "when": f"{phase} (the largest phase counts)",
                         "this net (MiB)": getattr(mine, name) / 2**20, "dense twin (MiB)": getattr(twin, name) / 2**20})
    rows.append({"part": "peak (estimate)", "when": "always + largest phase", "this net (MiB)": mine.total / 2**20,
                 "dense twin (MiB)": twin.total / 2**20})
    return rows


def _largest_phase(config: RunConfig, estimate: Any) -> tuple[str, int]:
    return max((("a training step", estimate.step), ("the optimizer's step", estimate.optimizer_scratch),
                (f"evaluating {eval_batch_size(config):,} images at once", estimate.evaluation)), key=lambda item: item[1])


def memory_why(config: RunConfig) -> str:
    """Why the two estimates are what they are, in words: the peak is what lives through the run plus the
    largest phase, which phase that is for each net, and, for a TT net, that its forward on an evaluation
    batch holds intermediates that grow with the rank until ``auto`` rebuilds ``W`` instead."""
    tt_memory, dense_memory = preview.memory_side_by_side(config)
    mine, twin = tt_memory.estimate, dense_memory.estimate
    phase, size = _largest_phase(config, mine)
    twin_phase, twin_size = _largest_phase(config.dense_twin(), twin)
    words = (f"A peak is what lives through the run (weights, gradients, optimizer state, data) plus the largest of "
             f"three phases that never overlap: a training step, the optimizer's step, an evaluation. This net's "
             f"largest phase is {phase} ({human_bytes(size)}); its dense twin's is {twin_phase} ({human_bytes(twin_size)}).")
    if any(layer.has_tt_cores for layer in config.layers):
        words += (" A TT layer's forward on a batch holds intermediates of about batch × features × rank, so its "
                  "evaluation grows with the rank until `auto` rebuilds W for the batch instead (cheaper there): the "
                  "estimate can rise with the rank, then drop (measured in BENCHMARKS.md).")
    return words


def layers_caption(typed: bool) -> str:
    """Above the typed layers' boxes: what follows each, and the text forms of every kind."""
    forms = ", ".join(f"`{kind.syntax}`" for kind in all_kinds())
    where = "Every hidden layer, first to last" if typed else "After the first hidden layer"
    return (f"{where}, each after a ReLU (a pool has none); images go through convolutions and pools before the "
            f"fully-connected layers, which flatten them. Kinds: {forms}.")
