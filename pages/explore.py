"""Explore: design a TT layer, or a network layer by layer (a CNN), and see what it costs before training; then train it."""

from __future__ import annotations

import streamlit as st

import ui
from page_blocks import explore as blocks
from ttexplore.presenters import design as views
from ttexplore.presenters import plots
from ttexplore.presenters.design import NET_RANKS, TRAINING_DEFAULTS, DesignState, planned_runs
from ttexplore.presenters.preview import (CUSTOM, core_rank_limits, layer_preview, other_factorizations, rank_slider_max,
                                          strategy_rows)
from ttexplore.presenters.tracking import already_trained_text
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data import available_datasets
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.tt.shapes import parse_modes

state = st.session_state
KEEP = "session"  # widget values survive page switches
#: The labels this page shows for RunConfig's fields: messages name the widget, not the field.
LABELS = {"in_modes": "Input modes", "out_modes": "Output modes", "ranks": "TT ranks", "pad_to": "Pad images to",
          "epochs": "Epochs", "lr": "Learning rate", "batch_size": "Batch size", "seed": "Seed",
          "train_limit": "Training images", "dataset": "Dataset", "round_to": "Round during training"}
design = DesignState(state, LABELS)  # the design widgets' values and callbacks (ttexplore.presenters.design)


@st.cache_resource(show_spinner=False)
def device_labels() -> dict[str, str]:
    """``{device name: what it is on this machine}``: auto first, the CPU, each GPU (asks torch once per server)."""
    from ttexplore.nn.device import available_devices

    return {choice.name: choice.label for choice in available_devices()}


def training_config() -> RunConfig:
    """The run the Train button would queue (raises ConfigError/ValueError with the fix)."""
    return design.run_config()


def train_clicked(anyway: bool = False) -> None:
    """The Train button's callback: queue the run(s) once (``anyway``: even when queued moments ago) before the
    page reruns, then open Train at once."""
    problem = ui.store_problem()
    try:
        runs = planned_runs(training_config(), state.get("run_name", "").strip(), state.baseline)
        if problem:
            raise ValueError(f"training needs the run store: {problem}")
        state.watch_add, repeats = ui.queue_once([(config, {"name": name, "tags": state.get("run_tags", []), "notes": state.get(
            "run_notes", "")}) for config, name in runs], anyway)  # the Train page adds the new ones to the runs it follows
    except (ConfigError, ValueError, ui.StoreError) as error:  # a bad entry, no data, over the memory budget, no store
        state.train_error = error
        return
    if repeats:  # a double click: said in the card, with "Queue another anyway"
        state.train_repeats = repeats
        return
    design.after_train()  # the next run gets its own name and notes; the tags stay, named in the settings' title
    state.open_train = True


# ---------------------------------------------------------------- training
def train_card(config: "RunConfig | None", info) -> None:
    """The Train card under the design: the main settings and the button in view, the rest folded."""
    for key, default in {**TRAINING_DEFAULTS, "baseline": False, "run_name": "", "run_tags": [], "run_notes": ""}.items():
        state.setdefault(key, default)
    state.train_limit = min(state.train_limit, info.train_size)  # the dataset may have changed
    devices = device_labels()
    if state.device not in devices:  # a session that picked a GPU the server no longer has
        state.device = "auto"
    on_machine = available_datasets().get(state.dataset, False)
    with st.container(border=True, key="train-card"):
        epochs_col, lr_col = st.columns([1, 1.4])
        epochs_col.number_input("Epochs", min(1, state.epochs), max(500, state.epochs), key="epochs", persist_state=KEEP)
        lr_col.select_slider("Learning rate", sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, state.lr}), key="lr",
                             persist_state=KEEP, format_func=lambda value: f"{value:g}")  # a loaded run's lr among them
        st.button("Train this network" if design.typed else "Train this layer", type="primary", icon=":material/play_arrow:", width="stretch", key="train_submit",
                  on_click=train_clicked, disabled=config is None or not on_machine,
                  help="Queue a background run; the Train page follows it live")
        if not on_machine:
            st.caption(f":material/cloud_off: **{info.title} is not on this machine**, so it cannot be trained here: "
                       f"{info.source}. Set TTEXPLORE_DATA to the folder that holds it and restart the app.")
        with st.expander(views.settings_title(state), expanded=bool(state.round_to), key="train-settings"):
            st.text_input("Run name", key="run_name", placeholder="e.g. paper net, lr sweep 1",
                          help="Shown instead of the automatic label on Train, Runs and in exports")
            st.multiselect("Tags", sorted(set(state.run_tags) | set(ui.known_tags())), key="run_tags", accept_new_options=True,
                           persist_state=KEEP, placeholder="Add tags (type a new one)")
            st.text_area("Notes", key="run_notes", height=68, persist_state=KEEP, placeholder="What this run tries")
            left, right = st.columns(2)
            left.selectbox("Batch size", sorted({16, 32, 64, 128, 256, state.batch_size}), key="batch_size", persist_state=KEEP)
            right.number_input("Seed", 0, max(2**31 - 1, state.seed), key="seed", persist_state=KEEP)
            left.number_input("Validation split", 0.0, 0.5, step=0.05, format="%g", key="val_split", persist_state=KEEP,
                              help="Hold this share of the training images out (stratified, from the seed); the epoch of "
                                   "the lowest validation loss is the run's best, its weights kept beside the last")
            right.number_input("Early-stopping patience (0 = off)", 0, max(1000, state.early_stop), key="early_stop",
                               persist_state=KEEP,
                               help="Stop after this many epochs without a lower validation loss (needs a split)")
            st.number_input("Training images (0 = all)", 0, info.train_size, key="train_limit", step=500,
                            persist_state=KEEP, help=f"Use fewer of the {info.train_size:,} images for a quick look.")
            st.selectbox("Device", list(devices), key="device", format_func=lambda name: devices[name].split(" — ")[0],
                         persist_state=KEEP, help="Where the run trains. auto: the first CUDA GPU when there is one, else the CPU.")
            st.caption(devices[state.device])  # the whole description wraps here; the box keeps it short
            ui.rank_schedule_box(training_config, design.error_labels())
            st.checkbox("Also train the dense twin (every layer dense), for comparison", key="baseline", persist_state=KEEP)
        if "train_error" in state:
            ui.show_config_error(state.pop("train_error"), design.error_labels())
        elif "train_repeats" in state:
            ui.repeat_notice(state.pop("train_repeats"), "train", lambda: train_clicked(anyway=True))
        elif config is not None and on_machine:
            done = ui.already_trained(training_config)
            if done is not None:
                st.caption(f":material/history: {already_trained_text(done)}")
                st.page_link("pages/run.py", label="Open that run", icon=":material/open_in_new:",
                             query_params={"id": done["id"]})


if state.pop("open_train", False):
    st.switch_page("pages/train.py")
if "from" in st.query_params:  # Re-run with changes (/?from=RUN_ID): the run's whole configuration in the widgets
    state.loaded_from = st.query_params.pop("from")
    state.load_notes = ui.config_or_error(lambda: design.load_run(ui.get_store().get_run(state.loaded_from), state.loaded_from))
design.start()  # a first visit: the paper's MNIST net on the bundled data

st.title("Explore a Tensor-Train layer")
st.caption("Image → **TT layer** → ReLU → linear classifier, as in the paper, or a network typed layer by layer (a CNN: "
           "the **convnet** and **tt-convnet** presets). Design on the left: the numbers on the right follow at once; "
           "train it below the design.")
ui.what_is_a_tt_layer()
ui.loaded_from_banner(design)

design_col, result_col = st.columns([1.25, 2], gap="medium")


# ---------------------------------------------------------------- design
with design_col:
    with st.container(border=True, key="design"):
        available = available_datasets()
        st.selectbox("Dataset", list(DATASETS), key="dataset", on_change=design.dataset_changed, persist_state=KEEP,
                     format_func=lambda name: DATASETS[name].title + ("" if available[name] else " — not on this machine"))
        info = dataset_info(state.dataset)
        chosen = design.preset()
        st.selectbox("Preset", [p.name for p in design.presets()] + [CUSTOM], key="preset", on_change=design.apply_preset,
                     persist_state=KEEP, help="Shapes from the paper and the 2018 slides, the CNNs (sized for the dataset), "
                     "or your own." + (f" This one: {chosen.note}." if chosen is not None and chosen.note else ""))
        st.toggle("Type every layer (a CNN)", key="typed_net", on_change=design.typed_changed, persist_state=KEEP,
                  help="Describe the network layer by layer as text (convolutions, TT convolutions, pools, fully-connected "
                       "layers) instead of the first layer's shapes")
        modes = None
        if not design.typed:
            left, right = st.columns(2)
            left.text_input("Input modes", key="in_modes", on_change=design.shapes_typed, persist_state=KEEP,
                            help="Factors of the input features, e.g. 4x8x8x4 or 2^10")
            right.text_input("Output modes", key="out_modes", on_change=design.shapes_typed, persist_state=KEEP,
                             help="Factors of the hidden width, as many as the input modes")
            modes = ui.config_or_error(lambda: (parse_modes(state.in_modes, LABELS["in_modes"]),
                                                parse_modes(state.out_modes, LABELS["out_modes"])), LABELS)
        pad_col, rank_col = st.columns(2)
        pad_col.segmented_control("Pad images to", design.pad_sides(), key="pad_to", on_change=design.shapes_typed,
                                  persist_state=KEEP, required=True,
                                  format_func=lambda side: f"{side}×{side}" if side else "none",
                                  help=f"Zero-pad the {info.side}×{info.side} images, as the paper padded MNIST to 32×32")
        if design.typed:
            state.setdefault("net_rank", views.FIRST_RANK)
            rank_col.select_slider("TT ranks of every TT layer", NET_RANKS, key="net_rank", on_change=design.set_all_ranks,
                                   help="Sets the rank of each layer with TT cores (each box can still say its own)")
        elif modes is not None and len(modes[0]) == len(modes[1]) and len(modes[0]) == 1:
            rank_col.caption("One core: the layer is dense, it has no TT rank to set.")
        elif modes is not None and len(modes[0]) == len(modes[1]):
            top = rank_slider_max(*modes)
            state.max_rank = min(state.get("max_rank", 4), top)
            if not state.get("per_core"):
                rank_col.slider("Max TT rank", 1, top, key="max_rank", persist_state=KEEP,
                                help="Every internal rank r₁…r_{d−1} is at most this (clipped to the maximal useful rank).")
            if st.toggle("Set each core's rank", key="per_core", persist_state=KEEP,
                         help="One rank per core boundary instead of one max rank for all"):
                limits = core_rank_limits(*modes)
                for start in range(0, len(limits), 3):
                    cells = st.columns(3)
                    for cell, (index, limit) in zip(cells, enumerate(limits[start:start + 3], start=start + 1)):
                        key = design.core_rank_key(len(modes[0]), index)
                        state[key] = min(state.get(key, state.max_rank), limit)
                        cell.slider(f"r{index}", 1, max(limit, 2), key=key, persist_state=KEEP)
        if design.typed:
            blocks.layer_boxes(design)

    if design.typed:  # every layer typed: the whole network stands or its error names the box
        first = None
        config = ui.config_or_error(lambda: design.config(batch_size=state.get("batch_size", 64)), design.error_labels())
        layers_error = None
    else:  # the shape boxes' layer, then the extra layers: a wrong extra layer keeps the first layer's numbers
        first = ui.config_or_error(lambda: design.config(more=False, batch_size=state.get("batch_size", 64)),
                                   LABELS) if modes else None
        config, layers_error = design.with_more_layers(first)
    train_card(config, info)
    if not design.typed:
        blocks.layer_boxes(design, layers_error)


# ---------------------------------------------------------------- preview
with result_col:
    if config is None and first is None:
        st.info("Fix the entry on the left to see the layer's numbers.", icon=":material/info:")
        st.stop()
    if design.typed:  # a network typed layer by layer: the whole net in the tiles, every layer in the table
        blocks.network_preview(config)
        st.stop()
    if config is None:
        st.warning("The numbers describe hidden layer 1 alone until the extra hidden layers are fixed (see below the "
                   "design).", icon=":material/layers:")
    config = config or first
    view = layer_preview(config)
    blocks.show_tiles(views.layer_tiles(view), view.memory_warning)
    if len(config.layers) > 1:
        st.markdown(views.network_caption(config))
        blocks.layers_table(config)
    blocks.memory_box(config)
    with st.container(border=True):
        st.markdown(views.ranks_markdown(view))
        st.caption(views.ranks_caption(view))
    with st.expander(f"How the forward is computed: '{view.strategy}' and the other strategies"):
        st.dataframe(strategy_rows(view), hide_index=True, width="stretch")
        st.caption("For one image, from the cost model (pure Python, no timing): what `strategy='auto'` weighs.")
    ui.show_figure(plots.core_diagram(view.layer.in_modes, view.layer.out_modes, view.layer.ranks), "tt-cores", "cores")

if view.ranks:  # every chart uses the ranks in use (per core too), as the tiles do
    rank = max(view.ranks)
    per_core_ranks = view.ranks if len(set(view.ranks)) > 1 else None
    left, right = st.columns(2, gap="large")
    with left:
        ui.show_figure(plots.params_vs_rank(view.layer.in_modes, view.layer.out_modes, max(16, min(rank_slider_max(
            view.layer.in_modes, view.layer.out_modes), 2 * rank)), rank, current_ranks=per_core_ranks), "weights-vs-rank", "vs-rank")
    with right:
        ui.show_figure(plots.factorizations_chart(other_factorizations(view.layer.in_modes, view.layer.out_modes, rank),
                                                  view.label, rank, current_params=view.tt_params,
                                                  current_ranks=per_core_ranks), "other-factorizations", "factorizations")
