"""Explore: design a TT layer and see what it costs before training; then train it."""

from __future__ import annotations

import streamlit as st

import ui
from ttexplore.presenters import plots
from ttexplore.presenters.tracking import already_trained_text
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.resources import check_run_memory
from ttexplore.runs.data import available_datasets
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET, dataset_info
from ttexplore.presenters.preview import (CUSTOM, baseline_config, core_rank_limits, design_config, human_count, layer_preview,
                               memory_side_by_side, memory_tile, network_config, network_rows, next_layer_text,
                               other_factorizations, padding_options, presets_for, rank_slider_max, strategy_rows)
from ttexplore.runs.resources import human_bytes
from ttexplore.tt.shapes import parse_modes

state = st.session_state
KEEP = "session"  # widget values survive page switches
#: The labels this page shows for RunConfig's fields: messages name the widget, not the field.
LABELS = {"in_modes": "Input modes", "out_modes": "Output modes", "ranks": "TT ranks", "pad_to": "Pad images to",
          "epochs": "Epochs", "lr": "Learning rate", "batch_size": "Batch size", "seed": "Seed",
          "train_limit": "Training images", "dataset": "Dataset"}
PAPER = "https://arxiv.org/abs/1509.06569"


# ---------------------------------------------------------------- callbacks
def pad_sides(dataset: str) -> list[int]:
    """Padding choices as widget values: 0 stands for no padding (RunConfig reads 0 as None)."""
    return [side or 0 for side in padding_options(dataset)]


def apply_preset() -> None:
    preset = next((p for p in presets_for(state.dataset) if p.name == state.preset), None)
    if preset is not None:
        state.in_modes, state.out_modes, state.pad_to = preset.in_text, preset.out_text, preset.pad_to or 0
        set_more_layers(list(preset.more_layers))


def set_more_layers(layers: list[str]) -> None:
    """The hidden layers after the first, as text forms, and their text boxes."""
    state.more_layers = layers
    for index, text in enumerate(layers):
        state[f"more_layer_{index}"] = text


def layer_typed(index: int) -> None:
    state.more_layers[index] = state[f"more_layer_{index}"]
    shapes_typed()


def add_layer() -> None:
    try:
        text = next_layer_text(design())
    except (ConfigError, ValueError):
        text = f"dense:{dataset_info(state.dataset).features}"
    set_more_layers([*state.get("more_layers", []), text])
    shapes_typed()


def remove_layer(index: int) -> None:
    layers = list(state.get("more_layers", []))
    del layers[index]
    set_more_layers(layers)
    shapes_typed()


def dataset_changed() -> None:
    options = presets_for(state.dataset)
    if state.get("preset") not in [p.name for p in options]:
        state.preset = options[0].name
        apply_preset()
    if state.get("pad_to") not in pad_sides(state.dataset):
        state.pad_to = pad_sides(state.dataset)[-1]


def shapes_typed() -> None:
    match = next((p for p in presets_for(state.dataset)
                  if (p.in_text, p.out_text, p.pad_to or 0, p.more_layers)
                  == (state.in_modes, state.out_modes, state.pad_to, tuple(state.get("more_layers", [])))), None)
    state.preset = match.name if match else CUSTOM


def design(**training) -> RunConfig:
    """The run the widgets describe (raises ConfigError/ValueError with the fix)."""
    depth = len(parse_modes(state.in_modes, LABELS["in_modes"]))
    core_ranks = ([state[f"rank_{depth}_{k}"] for k in range(1, depth)]
                  if state.get("per_core") and depth > 1 and f"rank_{depth}_1" in state else None)
    return network_config(design_config(state.dataset, state.in_modes, state.out_modes, state.pad_to or None,
                                        state.get("max_rank", 4), core_ranks, **training), state.get("more_layers", []))


@st.cache_resource(show_spinner=False)
def device_labels() -> dict[str, str]:
    """``{device name: what it is on this machine}``: auto first, the CPU, each GPU (asks torch once per server)."""
    from ttexplore.nn.device import available_devices

    return {choice.name: choice.label for choice in available_devices()}


def training_config() -> RunConfig:
    """The run the Train button would queue (raises ConfigError/ValueError with the fix)."""
    return design(epochs=state.epochs, batch_size=state.batch_size, lr=state.lr, seed=state.seed,
                  train_limit=state.train_limit or None, device=state.get("device", "auto"))


def train_clicked() -> None:
    """The Train button's callback: queue the run(s) before the page reruns, then open Train at once."""
    try:
        config = training_config()
    except (ConfigError, ValueError) as error:
        state.train_error = error
        return
    if not available_datasets().get(config.dataset):
        state.train_error = ConfigError("dataset", f"{DATASETS[config.dataset].title} is not on this machine: "
                                                   f"{DATASETS[config.dataset].source}")
        return
    problem = ui.store_problem()
    if problem:
        state.train_error = ValueError(f"training needs the run store: {problem}")
        return
    manager = ui.get_manager()
    name, tags, notes = state.get("run_name", "").strip(), state.get("run_tags", []), state.get("run_notes", "")
    configs = [config] + ([baseline_config(config)] if state.baseline else [])
    names = [name] + ([f"{name} (dense)" if name else ""] if state.baseline else [])
    try:
        for each in configs:  # all checked before any is queued: no half-submitted pair
            check_run_memory(each)
        ids = [manager.submit(each, name=each_name, tags=tags, notes=notes) for each, each_name in zip(configs, names)]
    except ConfigError as error:  # a run over the memory budget says so, with the fix
        state.train_error = error
        return
    state.watch_add = ids  # the Train page adds them to the runs it follows
    state.run_name = ""  # the next run gets its own name
    state.open_train = True


# ---------------------------------------------------------------- training
def train_card(config: "RunConfig | None", info) -> None:
    """The Train card under the design: the main settings and the button in view, the rest folded."""
    for key, default in (("epochs", 5), ("batch_size", 64), ("lr", 3e-3), ("seed", 0), ("train_limit", 0),
                         ("baseline", False), ("run_name", ""), ("run_tags", []), ("run_notes", ""), ("device", "auto")):
        state.setdefault(key, default)
    state.train_limit = min(state.train_limit, info.train_size)  # the dataset may have changed
    devices = device_labels()
    if state.device not in devices:  # a session that picked a GPU the server no longer has
        state.device = "auto"
    on_machine = available_datasets().get(state.dataset, False)
    with st.container(border=True, key="train-card"):
        epochs_col, lr_col = st.columns([1, 1.4])
        epochs_col.number_input("Epochs", 1, 500, key="epochs", persist_state=KEEP)
        lr_col.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], key="lr", persist_state=KEEP,
                             format_func=lambda value: f"{value:g}")
        st.button("Train this layer", type="primary", icon=":material/play_arrow:", width="stretch", key="train_submit",
                  on_click=train_clicked, disabled=config is None or not on_machine,
                  help="Queue a background run; the Train page follows it live")
        if not on_machine:
            st.caption(f":material/cloud_off: **{info.title} is not on this machine**, so it cannot be trained here: "
                       f"{info.source}. Set TTEXPLORE_DATA to the folder that holds it and restart the app.")
        with st.expander("Name, tags, batch size, seed, device, baseline"):
            st.text_input("Run name", key="run_name", placeholder="e.g. paper net, lr sweep 1",
                          help="Shown instead of the automatic label on Train, Runs and in exports")
            st.multiselect("Tags", sorted(set(state.run_tags) | _known_tags()), key="run_tags", accept_new_options=True,
                           persist_state=KEEP, placeholder="Add tags (type a new one)")
            st.text_area("Notes", key="run_notes", height=68, persist_state=KEEP, placeholder="What this run tries")
            left, right = st.columns(2)
            left.selectbox("Batch size", [16, 32, 64, 128, 256], key="batch_size", persist_state=KEEP)
            right.number_input("Seed", 0, 2**31 - 1, key="seed", persist_state=KEEP)
            st.number_input("Training images (0 = all)", 0, info.train_size, key="train_limit", step=500,
                            persist_state=KEEP, help=f"Use fewer of the {info.train_size:,} images for a quick look.")
            st.selectbox("Device", list(devices), key="device", format_func=devices.get, persist_state=KEEP,
                         help="Where the run trains. auto: the first CUDA GPU when the machine has one, else the CPU.")
            st.checkbox("Also train the dense layer of the same size, for comparison", key="baseline", persist_state=KEEP)
        if "train_error" in state:
            ui.show_config_error(state.pop("train_error"), LABELS)
        elif config is not None and on_machine:
            done = _already_trained(config)
            if done is not None:
                st.caption(f":material/history: {already_trained_text(done)}")
                st.page_link("pages/run.py", label="Open that run", icon=":material/open_in_new:",
                             query_params={"id": done["id"]})


def _known_tags() -> set[str]:
    """Tags of the saved runs, offered in the tag picker (none when the store cannot be read)."""
    if ui.store_problem():
        return set()
    return {tag for run in ui.get_store().list_runs(limit=500) for tag in run.get("tags") or []}


def _already_trained(config: RunConfig) -> "dict | None":
    """The newest completed run of exactly the run the button would queue, or None."""
    if ui.store_problem():
        return None
    try:
        return ui.get_store().find_completed(training_config())
    except (ConfigError, ValueError):
        return None


if state.pop("open_train", False):
    st.switch_page("pages/train.py")
if "dataset" not in state:  # first visit: the paper's MNIST net on the bundled data
    state.dataset = DEFAULT_DATASET
    state.preset = presets_for(DEFAULT_DATASET)[0].name
    apply_preset()
    state.max_rank = 4

st.title("Explore a Tensor-Train layer")
st.caption("Image → **TT layer** → ReLU → linear classifier, as in the paper (or with more hidden layers). Design the "
           "hidden layer on the left: the numbers on the right follow at once; train it below the design.")
with st.expander("What is a TT layer?", icon=":material/school:"):
    words, drawing = st.columns([3, 2], vertical_alignment="center")
    words.markdown(
        "A fully-connected layer multiplies by an $M \\times N$ weight matrix $W$. A **Tensor-Train (TT) layer** "
        "never stores $W$: it writes $N = n_1 \\cdots n_d$ and $M = m_1 \\cdots m_d$ and keeps $d$ small **cores** "
        "$G_k$ of shape $r_{k-1} \\times n_k \\times m_k \\times r_k$. Each entry of $W$ is a product of small "
        "matrices, one slice per core:")
    words.latex(r"W\big((i_1,\dots,i_d),(j_1,\dots,j_d)\big) = G_1[i_1,j_1]\,G_2[i_2,j_2]\cdots G_d[i_d,j_d]")
    words.markdown(
        "The **TT ranks** $r_1, \\dots, r_{d-1}$ ($r_0 = r_d = 1$) set the size: $\\sum_k r_{k-1} n_k m_k r_k$ weights "
        "instead of $N M$. The paper's 1024→1024 layer as 4×8×8×4 needs 2,176 weights at rank 4 instead of 1,048,576, "
        f"and trains by back-propagation on the cores. Novikov, Podoprikhin, Osokin, Vetrov, [*Tensorizing Neural "
        f"Networks*]({PAPER}), NeurIPS 2015.")
    drawing.image(plots.tt_schematic_svg(3), caption="Three cores: input legs n below, output legs m above, ranks r between")

design_col, result_col = st.columns([1.25, 2], gap="medium")

# ---------------------------------------------------------------- design
with design_col:
    with st.container(border=True, key="design"):
        available = available_datasets()
        st.selectbox("Dataset", list(DATASETS), key="dataset", on_change=dataset_changed, persist_state=KEEP,
                     format_func=lambda name: DATASETS[name].title + ("" if available[name] else " — not on this machine"))
        info = dataset_info(state.dataset)
        presets = presets_for(state.dataset)
        chosen = next((p for p in presets if p.name == state.preset), None)
        st.selectbox("Preset", [p.name for p in presets] + [CUSTOM], key="preset", on_change=apply_preset,
                     persist_state=KEEP, help="Shapes from the paper and the 2018 slides, or type your own."
                     + (f" This one: {chosen.note}." if chosen is not None and chosen.note else ""))
        left, right = st.columns(2)
        left.text_input("Input modes", key="in_modes", on_change=shapes_typed, persist_state=KEEP,
                        help="Factors of the input features, e.g. 4x8x8x4 or 2^10")
        right.text_input("Output modes", key="out_modes", on_change=shapes_typed, persist_state=KEEP,
                         help="Factors of the hidden width, as many as the input modes")
        modes = ui.config_or_error(lambda: (parse_modes(state.in_modes, LABELS["in_modes"]),
                                            parse_modes(state.out_modes, LABELS["out_modes"])), LABELS)
        pad_col, rank_col = st.columns(2)
        pad_col.segmented_control("Pad images to", pad_sides(state.dataset), key="pad_to", on_change=shapes_typed,
                                  persist_state=KEEP, required=True,
                                  format_func=lambda side: f"{side}×{side}" if side else "none",
                                  help=f"Zero-pad the {info.side}×{info.side} images, as the paper padded MNIST to 32×32")
        per_core = False
        if modes is not None and len(modes[0]) == len(modes[1]) and len(modes[0]) == 1:
            rank_col.caption("One core: the layer is dense, it has no TT rank to set.")
        elif modes is not None and len(modes[0]) == len(modes[1]):
            top = rank_slider_max(*modes)
            state.max_rank = min(state.get("max_rank", 4), top)
            per_core = bool(state.get("per_core"))
            if not per_core:
                rank_col.slider("Max TT rank", 1, top, key="max_rank", persist_state=KEEP,
                                help="Every internal rank r₁…r_{d−1} is at most this (clipped to the maximal useful rank).")
            if st.toggle("Set each core's rank", key="per_core", persist_state=KEEP,
                         help="One rank per core boundary instead of one max rank for all"):
                limits = core_rank_limits(*modes)
                for start in range(0, len(limits), 3):
                    cells = st.columns(3)
                    for cell, (index, limit) in zip(cells, enumerate(limits[start:start + 3], start=start + 1)):
                        key = f"rank_{len(modes[0])}_{index}"
                        state[key] = min(state.get(key, state.max_rank), limit)
                        cell.slider(f"r{index}", 1, max(limit, 2), key=key, persist_state=KEEP)

    config = ui.config_or_error(lambda: design(batch_size=state.get("batch_size", 64)), LABELS) if modes else None
    train_card(config, info)
    with st.expander("More hidden layers", expanded=bool(state.get("more_layers")), icon=":material/layers:",
                     key="more_layers_box"):
        st.caption("Each after a ReLU: `tt:IN->OUT:RANK`, `dense:WIDTH` or `matrix_rank:WIDTH:RANK`")
        for index in range(len(state.get("more_layers", []))):
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            left.text_input(f"Hidden layer {index + 2}", key=f"more_layer_{index}", on_change=layer_typed, args=(index,))
            right.button("", icon=":material/delete:", key=f"remove_layer_{index}", on_click=remove_layer, args=(index,),
                         help="Remove this layer")
        st.button("Add a layer", icon=":material/add:", key="add_layer", on_click=add_layer, type="tertiary")


# ---------------------------------------------------------------- preview
with result_col:
    if config is None:
        st.info("Fix the entry on the left to see the layer's numbers.", icon=":material/info:")
        st.stop()
    view = layer_preview(config)
    row = st.columns(3)  # three to a row: at 1400 px a fourth tile cut its number short
    row[0].metric("TT layer weights", f"{view.tt_params:,}", border=True, delta=f"{view.in_features:,} → "
                  f"{view.out_features:,} layer", delta_color="off", delta_arrow="off",
                  help="Σ r_{k−1}·n_k·m_k·r_k over the cores (no bias)")
    row[1].metric("Dense weights", f"{view.dense_params:,}", border=True, delta="the layer TT replaces",
                  delta_color="off", delta_arrow="off", help=f"{view.in_features:,} inputs × {view.out_features:,} hidden units")
    factor = f"{view.compression_factor:,.0f}×" if view.compression_factor >= 10 else f"{view.compression_factor:.2f}×"
    row[2].metric("Compression", factor, border=True, delta=f"smaller · rate {view.compression:.2e}",
                  delta_color="off", delta_arrow="off",
                  help="Compression factor: dense / TT weights. Compression rate (the paper's tables): TT / dense.")
    flops_col, memory_col = st.columns(2)
    tile = memory_tile(view)
    memory_col.metric("Training memory (est.)", tile["value"], border=True, delta=tile["delta"], delta_color="off",
                      delta_arrow="off", help=tile["help"])
    if view.memory_warning:
        st.warning(view.memory_warning, icon=":material/memory:")
    if len(config.layers) > 1:
        st.markdown(f"**The whole network** — the tiles above describe hidden layer 1 of {len(config.layers)}; "
                    f"widths {' → '.join(f'{width:,}' for width in config.layer_widths)}")
        st.dataframe(network_rows(config), hide_index=True, key="network_table", column_config={
            "weights": st.column_config.NumberColumn(format="localized"),
            "dense weights": st.column_config.NumberColumn(format="localized"),
            "compression": st.column_config.NumberColumn("compression rate", format="%.2e")})
    with st.container(border=True, key="memory_box"):
        tt_memory, dense_memory = memory_side_by_side(config)
        left, right = st.columns(2)
        for column, verdict, title in ((left, tt_memory, "This net: training memory"),
                                       (right, dense_memory, "Its dense twin: training memory")):
            column.metric(title, human_bytes(verdict.estimate.total), delta="allowed" if verdict.allowed else "refused",
                          delta_color="normal" if verdict.allowed else "inverse",
                          delta_arrow="off", help=verdict.estimate.describe(5))
        st.caption("The memory guard runs before anything is queued: the dense twin has every hidden layer dense, "
                   f"{config.dense_layer_params():,} weights against {config.layer_params():,}."
                   + (f" Refused: {dense_memory.refusal}" if not dense_memory.allowed else ""))
    ranks_col = st.container()
    change = view.tt_flops / view.dense_flops - 1
    flops_col.metric("Forward FLOPs / image", human_count(view.tt_flops), border=True, delta_color="inverse",
                     delta=f"{change:+.0%} vs dense {human_count(view.dense_flops)}",
                     help=f"FLOPs of the forward auto picks for one image: '{view.strategy}' (see the table below)")
    with ranks_col.container(border=True):
        if not view.max_useful:
            st.markdown("One core: the layer is dense, it has no TT ranks.")
        elif len(view.ranks) <= 6:
            st.markdown("| | " + " | ".join(f"r{k}" for k in range(1, len(view.ranks) + 1)) + " |\n|---|"
                        + "---|" * len(view.ranks) + "\n| **max useful** | " + " | ".join(map(str, view.max_useful))
                        + " |\n| **in use** | " + " | ".join(map(str, view.ranks)) + " |")
        else:
            st.markdown(f"**max useful** {' · '.join(map(str, view.max_useful))}  \n**in use** {' · '.join(map(str, view.ranks))}")
        if view.clipped:
            st.caption("Clipped to the maximal useful rank (more would only waste weights): "
                       + ", ".join(f"r{k} {asked} → {used}" for k, asked, used in view.clipped) + ".")
        else:
            st.caption("Max useful rank of a boundary: min(∏ n·m of the cores left of it, ∏ n·m right of it). None clipped.")
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

