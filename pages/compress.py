"""Compress: TT-SVD of a trained layer (the slides' "in theory" path) beside TT layers trained from scratch; a trained
dense CNN layer by layer (page_blocks.compress)."""

from __future__ import annotations

from typing import Any, Optional

import streamlit as st

import ui
from page_blocks.compress import compress_network, every_seed
from ttexplore.tt import ttmath
from ttexplore.tt.shapes import default_modes, parse_modes
from ttexplore.tt.ttshape import modes_text
from ttexplore.presenters import compress as views, tracking
from ttexplore.presenters.preview import other_factorizations
from ttexplore.presenters.groups import group_of
from ttexplore.runs.data_info import DATASETS, DEFAULT_DATASET
from ttexplore.runs.uploads import discard_upload

state = st.session_state
KEEP = "session"
RANK_CHOICES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
RANKS_KEY = "compress_ranks"  # the rank picker's key (a TT run's, whose choices stop below its ranks, has its own)
LABELS = {"weight_key": "Weight key", "dataset": "Trained on", "pad_to": "Images padded to"}  # fields, as this page names them
ERROR_CHOICES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]
store = ui.store_or_stop()


# ---------------------------------------------------------------- cached work (W does not change under a key)
@st.cache_resource(show_spinner="Reading the trained layer…", max_entries=8)
def run_source(db: str, run_id: str, finished_at: Optional[float]) -> Any:
    from ttexplore.experiments import compress

    return compress.source_from_run(ui.get_store(), run_id)


@st.cache_resource(show_spinner="Reading the weights file…", max_entries=8)
def file_source(path: str, sha: str, dataset: str, pad_to: Optional[int], weight_key: Optional[str]) -> Any:
    from ttexplore.experiments import compress

    return compress.source_from_file(path, dataset, weight_key or None, **({"pad_to": pad_to or ""}))


@st.cache_data(show_spinner="Singular values of each TT unfolding…", max_entries=32)
def spectra(sha: str, in_modes: tuple, out_modes: tuple, _source: Any) -> list[list[float]]:
    from ttexplore.experiments import compress

    return compress.source_spectra(_source, in_modes, out_modes)  # a TT run's: of its trained cores


@st.cache_resource(show_spinner="TT-SVD at each rank…", max_entries=32)
def plan(sha: str, in_modes: tuple, out_modes: tuple, ranks: tuple, epochs: int, scratch_epochs: int, _source: Any) -> list:
    from ttexplore.experiments import compress

    return compress.plan_compression(_source, in_modes, out_modes, ranks=ranks, finetune_epochs=epochs,
                                     scratch_epochs=scratch_epochs)


@st.cache_data(show_spinner="Testing the network as trained…", max_entries=8)
def dense_accuracy(sha: str, _source: Any) -> Optional[float]:
    from ttexplore.experiments import compress

    return compress.source_accuracy(_source)


# ---------------------------------------------------------------- the page
st.title("Compress a trained layer")
st.caption("The 2018 slides' two paths to a TT layer: **in theory**, choose the shapes and factor a trained W by "
           "TT-SVD, the ranks given by W; **in practice**, choose the ranks and train. Here both, side by side: "
           "TT-SVD as it is, TT-SVD then fine-tuned, and the same TT net trained from scratch. A trained TT run's cores "
           "are TT-rounded to lower ranks instead, never building W. A dense CNN is compressed layer by layer.")

with st.container(border=True):
    st.subheader("What to compress", divider="gray")
    kind = st.segmented_control("Source", ["A trained run", "A weights file"], key="compress_kind", required=True,
                                default="A trained run", persist_state=KEEP)
    source, siblings, network_run = None, None, None
    if kind == "A trained run":
        candidates = views.compressible_runs(store.list_runs(status=("completed",)))
        if not candidates:
            st.info("No trained run to compress yet: on **Explore**, tick *Also train the dense twin* and press "
                    "**Train**, or run `python -m ttexplore train --layer dense --record`.", icon=":material/info:")
            st.stop()
        by_id, names = {run["id"]: run for run in candidates}, views.candidate_labels(candidates)
        run_id = tracking.picked_id(st.selectbox("Trained run (dense runs first; a TT run is rounded; a CNN layer by layer)",
                                                 list(by_id), key="compress_run", persist_state=KEEP, format_func=names.get),
                                    by_id, candidates[0]["id"])
        if views.is_network_run(by_id[run_id]):  # a dense CNN (or a deeper net): its own flow, below
            network_run = by_id[run_id]
        else:
            source = ui.config_or_error(lambda: run_source(str(store.path), run_id, by_id[run_id].get("finished_at")))
            siblings = every_seed(group_of(candidates, by_id[run_id]), lambda run: run_source(  # compressed alike, averaged
                str(store.path), run["id"], run.get("finished_at")))
    else:
        upload = st.file_uploader("Weights (.pt): a state_dict or tensor holding an nn.Linear weight, or a ttexplore "
                                  "model file; read weights-only", type=["pt", "pth"], key="compress_upload")
        left, middle, right = st.columns(3)
        dataset = left.selectbox("Trained on", list(DATASETS), key="compress_dataset", persist_state=KEEP,
                                 index=list(DATASETS).index(DEFAULT_DATASET), format_func=lambda key: DATASETS[key].title)
        side = DATASETS[dataset].side
        pad_to = middle.selectbox("Images padded to", [32, 0] if side == 28 else [0], key="compress_pad",
                                  persist_state=KEEP, format_func=lambda value: f"{value}×{value}" if value else "no padding")
        weight_key = right.text_input("Weight key (optional)", key="compress_key", persist_state=KEEP,
                                      help="The state_dict key of W: needed only when the file holds several matrices "
                                           "that could be the layer")
        if upload is not None:
            path = store.keep_upload(upload.getvalue())  # kept while a run names it (ttexplore.runs.uploads)
            source = ui.config_or_error(lambda: file_source(str(path), path.stem, dataset, pad_to or None, weight_key), LABELS)
            if source is None:
                discard_upload(store, path)  # rejected: not kept on the server
    if source is None and network_run is None:
        st.stop()
    siblings = [each for each in siblings or [source] if each is not None]  # the sources compressed alike
    rounding = source is not None and source.trained is not None
    top = max(source.tt.ranks, default=1) if rounding else None  # rounding only lowers the ranks in use
    if source is not None:
        st.caption((f"The trained TT layer, ranks {', '.join(map(str, source.tt.ranks))} ({source.tt.params:,} weights), "
                    f"is rounded in its own modes: {source.base.describe()}." if rounding else
                    f"W is {source.out_features:,} × {source.in_features:,} ({source.out_features * source.in_features:,} "
                    f"weights) in {source.base.describe()}.") + (" " + ui.said(" ".join(source.notes)) if source.notes else ""))
if network_run is not None:  # a dense CNN: its TT network, each layer's spectra, the three paths (page_blocks.compress)
    compress_network(store, network_run)
    st.stop()

sha = source.init_from.sha256
if state.get("compress_for") != (sha, source.in_features, source.out_features):
    state.compress_for = (sha, source.in_features, source.out_features)
    state.compress_in = modes_text(source.tt.in_modes if rounding else default_modes(source.in_features))
    state.compress_out = modes_text(source.tt.out_modes if rounding else
                                    default_modes(source.out_features, len(parse_modes(state.compress_in))))


def suggestion_chosen() -> None:
    chosen = state.get("compress_suggestion")
    if chosen and "->" in chosen:
        state.compress_in, state.compress_out = chosen.split("->")
    elif chosen:
        state.compress_in = state.compress_out = chosen


with st.container(border=True):
    st.subheader("TT shapes" + (" (the run's own: rounding keeps them)" if rounding else ""), divider="gray")
    left, right, pick = st.columns([1, 1, 1.4])
    left.text_input("Input modes", key="compress_in", help=f"Factors of W's {source.in_features:,} inputs", disabled=rounding)
    right.text_input("Output modes", key="compress_out", help=f"Factors of W's {source.out_features:,} outputs",
                     disabled=rounding)
    modes = ui.config_or_error(lambda: (parse_modes(state.compress_in, "in_modes"), parse_modes(state.compress_out, "out_modes")))
    if modes is not None and len(modes[0]) == len(modes[1]) and not rounding:
        options = other_factorizations(modes[0], modes[1], 4)[:10]
        pick.selectbox("Suggestions (fewest weights at rank 4 first)", [option.label for option in options],
                       key="compress_suggestion", index=None, on_change=suggestion_chosen, placeholder="pick a shape",
                       format_func=lambda label: next(f"{label} · {option.params:,} weights" for option in options
                                                      if option.label == label))
    if modes is None:
        st.stop()
    in_modes, out_modes = modes
    problem = views.shape_problem(in_modes, out_modes, source.in_features, source.out_features)
    if problem:
        st.error(problem, icon=":material/error:")
        st.stop()

# ---------------------------------------------------------------- the spectra
values = spectra(sha, in_modes, out_modes, source)
target = st.select_slider("Target error ‖W − W_TT‖_F / ‖W‖_F", ERROR_CHOICES, value=0.5, key="compress_error",
                          persist_state=KEEP, format_func=lambda value: f"{value:g}")
needed = ttmath.ranks_for_error(values, target)
st.markdown(f"{'Rounding' if rounding else 'TT-SVD'} reaches **{target:g}** with ranks **{', '.join(map(str, needed))}**: "
            f"**{ttmath.param_count(in_modes, out_modes, needed):,}** weights "
            f"(compression {ttmath.param_count(in_modes, out_modes, needed) / (source.in_features * source.out_features):.2e}).")
ui.show_figure(views.spectra_figure(values, target, needed, **({"title": "Singular values of the trained cores' "
                                                                         "unfoldings"} if rounding else {})),
               "unfolding-spectra", "compress-spectra")
with st.expander("Ranks each boundary needs, per error"):
    st.dataframe(views.needed_ranks_table(values, ERROR_CHOICES), hide_index=True)

# ---------------------------------------------------------------- the three paths
with st.form("compress_form"):
    st.markdown("**Compress at these ranks** — every network below is a recorded run (tag `compress`), queued on "
                "the job manager; the table fills in as they finish.")
    cols = st.columns([2.2, 1, 1, 1.2])
    choices = [rank for rank in RANK_CHOICES if top is None or rank < top]
    cols[0].multiselect("Max TT ranks", choices, default=[rank for rank in (1, 2, 4, 8, 16) if rank in choices],
                        key=RANKS_KEY if top is None else f"{RANKS_KEY}_below_{top}", persist_state=KEEP)
    cols[1].number_input("Fine-tune epochs", 0, 100, value=3, key="compress_epochs", persist_state=KEEP)
    cols[2].number_input("From-scratch epochs", 1, 500, value=source.base.epochs, key="compress_scratch_epochs",
                         persist_state=KEEP)
    cols[3].checkbox("Train the from-scratch nets the store lacks", value=True, key="compress_scratch", persist_state=KEEP)
    pressed = st.form_submit_button("Compress", type="primary", icon=":material/compress:", key="compress_submit")

ranks = tuple(sorted(state.get(RANKS_KEY if top is None else f"{RANKS_KEY}_below_{top}") or []))
if not ranks:
    st.info("Choose at least one rank.", icon=":material/info:")
    st.stop()
plans = [plan(each.init_from.sha256, in_modes, out_modes, ranks, int(state.compress_epochs),
              int(state.compress_scratch_epochs), each) for each in siblings]
if pressed:
    from ttexplore.experiments import compress

    ui.manager_or_stop()
    queued, repeats = ui.queue_once((config, {"name": name, "tags": compress.run_tags(what)}) for targets in plans for what, config, name
                                    in compress.missing_runs(store, targets, bool(state.compress_scratch), skip_active=True))
    st.toast(views.queued_text(len(queued), len(repeats)), icon=":material/queue:")  # new runs only

accuracies = [dense_accuracy(each.init_from.sha256, each) for each in siblings]
accuracy = sum(accuracies) / len(accuracies) if None not in accuracies else None
keys = {config.key() for targets in plans for target in targets
        for config in (target.compressed, target.finetuned, target.scratch) if config}


def waiting_runs() -> int:
    return sum(run["config_key"] in keys for run in store.list_runs(status=("queued", "running")))


polling = waiting_runs() > 0


@ui.fragment("the results", run_every=2.0 if polling else None)
def results() -> None:
    from ttexplore.experiments import compress

    per_seed = [[row.to_dict() for row in compress.compress_rows(store, targets)] for targets in plans]
    rows = compress.combine_seeds(per_seed) if len(per_seed) > 1 else per_seed[0]
    waiting = waiting_runs()
    if polling and not waiting:
        st.rerun(scope="app")  # all done: draw once more without polling
    st.caption((f"{waiting} run(s) queued or running · " if waiting else "")
               + (f"{len(plans)} seeds: each value is their mean · " if len(plans) > 1 else "")
               + (f"the network as trained: test accuracy {accuracy:.4f}" if accuracy is not None else
                  "the file has no classifier: TT-SVD's accuracy is that of a random head"))
    st.dataframe(views.compress_table(rows, source.method), hide_index=True, key="compress_table", column_config={
        "weights": st.column_config.NumberColumn(format="localized"),
        "compression": st.column_config.NumberColumn(format="%.2e"),
        "rel_error": st.column_config.NumberColumn(format="%.4f"),
        **{name: st.column_config.NumberColumn(format="%.4f") for name in (*views.METHOD_WORDS.values(), "+ fine-tuning",
                                                                          "from scratch")},
    })
    dense = source.in_features * source.out_features
    left, right = st.columns(2, gap="large")
    with left:
        ui.show_figure(views.compress_figure(rows, "rank", dense, accuracy, method=source.method), "compress-vs-rank",
                       "compress-rank")
    with right:
        ui.show_figure(views.compress_figure(rows, "params", dense, accuracy, method=source.method), "compress-vs-weights",
                       "compress-weights")


results()
