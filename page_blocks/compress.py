"""The Compress page's block for a trained dense network (a CNN), compressed layer by layer: the TT network (each
compressed layer's modes, proposed by :func:`ttexplore.runs.ttnet.tt_network` and editable), the singular values
of every unfolding of each layer's kernel (one figure per layer), then TT-SVD at each rank, fine-tuned, beside
the same TT network trained from scratch, the table and figures filling in as the runs end. The work is
:mod:`ttexplore.experiments.netcompress`; the words and figures :mod:`ttexplore.presenters.compress`.
"""

from __future__ import annotations

from typing import Any, Optional

import streamlit as st

import ui
from ttexplore.presenters import compress as views
from ttexplore.tt import ttmath

state = st.session_state
KEEP = "session"
RANK_CHOICES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
ERROR_CHOICES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]


def every_seed(seeds: list[dict[str, Any]], source_of: Any) -> Optional[list[Any]]:
    """The "Every seed of this experiment" switch, offered when the chosen run's experiment has other seeds
    (``seeds``, :func:`ttexplore.presenters.groups.group_of`): on, each seed's source (``source_of(run)``; ``None``
    where it cannot be read, said on the page), compressed alike and averaged; off or alone, ``None``."""
    if len(seeds) < 2 or not st.toggle(f"Every seed of this experiment ({len(seeds)} runs: seeds "
                                       f"{', '.join(str(run['config'].get('seed', 0)) for run in seeds)})",
                                       key="compress_seeds", persist_state=KEEP,
                                       help="Compress each seed's W alike; the table and figures show each rank's mean "
                                            "with its spread over the seeds (± 1 std from three, min–max below)"):
        return None
    return [ui.config_or_error(lambda run=run: source_of(run)) for run in seeds]


# ---------------------------------------------------------------- cached work (the kernels do not change under a key)
@st.cache_resource(show_spinner="Reading the trained network…", max_entries=8)
def network_source(db: str, run_id: str, finished_at: Optional[float]) -> Any:
    from ttexplore.experiments import netcompress

    return netcompress.network_source_from_run(ui.get_store(), run_id)


@st.cache_data(show_spinner="Singular values of each kernel's TT unfoldings…", max_entries=16)
def layer_spectra(sha: str, layers: tuple, _source: Any, _target: list) -> list[dict]:
    from ttexplore.experiments import netcompress

    return [spectra.to_dict() for spectra in netcompress.network_spectra(_source, _target)]


@st.cache_resource(show_spinner="TT-SVD of each layer at each rank…", max_entries=16)
def network_plan(sha: str, layers: tuple, ranks: tuple, epochs: int, scratch_epochs: int, _source: Any, _target: list) -> list:
    from ttexplore.experiments import netcompress

    return netcompress.plan_network_compression(_source, _target, ranks, finetune_epochs=epochs, scratch_epochs=scratch_epochs)


@st.cache_data(show_spinner="Testing the network as trained…", max_entries=8)
def trained_accuracy(sha: str, _source: Any) -> Optional[float]:
    from ttexplore.experiments import compress

    return compress.source_accuracy(_source)


# ---------------------------------------------------------------- the block
def tt_network(source: Any, run_id: str) -> Optional[list]:
    """The TT network the source becomes: a box per layer it compresses (the text form of its TT layer, the modes
    proposed, yours to change; the ranks come from the ranks picked below), checked against the source."""
    from ttexplore.experiments import netcompress

    proposed = netcompress.target_network(source)
    compressed = [index for index, (mine, theirs) in enumerate(zip(proposed, source.base.layers)) if mine != theirs]
    with st.container(border=True):
        st.subheader("The TT network", divider="gray")
        st.caption("Each dense convolution after the first becomes a TT convolution (its channels' modes), each dense "
                   "fully-connected layer a TT layer; the first convolution, the pools and the head stay as trained. "
                   "The modes are proposed (balanced, the largest at the chain's rank-1 ends); change them here.")
        for start in range(0, len(compressed), 2):
            for cell, index in zip(st.columns(2), compressed[start:start + 2]):
                cell.text_input(f"Layer {index + 1}: {source.base.layers[index].label()} →", key=f"netcompress_{run_id}_{index}",
                                value=proposed[index].text(), persist_state=KEEP,
                                help="ttconv:IN->OUT:RANK:K (channels' modes) or tt:IN->OUT:RANK; its ranks are set below")
    typed = [state.get(f"netcompress_{run_id}_{index}", layer.text()) if index in compressed else layer
             for index, layer in enumerate(proposed)]
    return ui.config_or_error(lambda: netcompress.target_network(source, typed))


def spectra_figures(source: Any, target: list) -> None:
    """For each compressed layer, the singular values of every unfolding of its trained kernel in the TT layout of
    its target, and the ranks each boundary needs for the error picked (one figure per layer)."""
    sha = source.init_from.sha256
    error = st.select_slider("Target error ‖W − W_TT‖_F / ‖W‖_F, per layer", ERROR_CHOICES, value=0.5,
                             key="netcompress_error", persist_state=KEEP, format_func=lambda value: f"{value:g}")
    shapes = source.base.layer_shapes
    for layer in layer_spectra(sha, tuple(item.text() for item in target), source, target):
        index = layer["index"] - 1
        dense = source.base.layers[index].params(shapes[index])
        st.markdown(f"**Layer {layer['index']}**: {layer['source_label']} → {layer['target_label']} · "
                    + views.needed_text(layer["spectra"], layer["in_modes"], layer["out_modes"], error, dense))
        needed = ttmath.ranks_for_error(layer["spectra"], error)
        ui.show_figure(views.spectra_figure(layer["spectra"], error, needed, boundaries=layer["boundaries"],
                                            title=f"Layer {layer['index']}: singular values of its kernel's TT unfoldings"),
                       f"unfolding-spectra-layer-{layer['index']}", f"netcompress-spectra-{layer['index']}")


def compress_network(store: Any, run: dict) -> None:
    """The whole flow for the dense network of ``run``: its TT network, the spectra, the runs to queue, the results."""
    from ttexplore.experiments import compress

    source = ui.config_or_error(lambda: network_source(str(store.path), run["id"], run.get("finished_at")))
    if source is None:
        st.stop()
    st.caption(f"{source.describe()}: compressed layer by layer.")
    target = tt_network(source, run["id"])
    if target is None:
        st.stop()
    spectra_figures(source, target)
    with st.form("netcompress_form"):
        st.markdown("**Compress at these ranks** — every TT layer at each max rank; every network below is a recorded "
                    "run (tag `compress`), queued on the job manager; the table fills in as they finish.")
        cols = st.columns([2.2, 1, 1, 1.2])
        cols[0].multiselect("Max TT ranks", RANK_CHOICES, default=[1, 2, 4, 8], key="netcompress_ranks", persist_state=KEEP)
        cols[1].number_input("Fine-tune epochs", 0, 100, value=2, key="netcompress_epochs", persist_state=KEEP)
        cols[2].number_input("From-scratch epochs", 1, 500, value=source.base.epochs, key="netcompress_scratch_epochs",
                             persist_state=KEEP)
        cols[3].checkbox("Train the from-scratch nets the store lacks", value=True, key="netcompress_scratch",
                         persist_state=KEEP)
        pressed = st.form_submit_button("Compress", type="primary", icon=":material/compress:", key="netcompress_submit")
    ranks = tuple(sorted(state.get("netcompress_ranks") or []))
    if not ranks:
        st.info("Choose at least one rank.", icon=":material/info:")
        st.stop()
    sha, texts = source.init_from.sha256, tuple(layer.text() for layer in target)
    targets = ui.config_or_error(lambda: network_plan(sha, texts, ranks, int(state.netcompress_epochs),
                                                      int(state.netcompress_scratch_epochs), source, target))
    if targets is None:
        st.stop()
    if pressed:
        manager = ui.manager_or_stop()
        queued = [manager.submit(config, name=name, tags=compress.run_tags(what)) for what, config, name
                  in compress.missing_runs(store, targets, bool(state.netcompress_scratch), skip_active=True)]
        st.toast(f"Queued {len(queued)} run(s)" if queued else "Every run is already done or queued", icon=":material/queue:")
    results(store, source, targets)


def results(store: Any, source: Any, targets: list) -> None:
    """The table and the two figures of the three paths, polled while their runs are queued or running."""
    keys = {config.key() for target in targets for config in (target.compressed, target.finetuned, target.scratch) if config}
    accuracy = trained_accuracy(source.init_from.sha256, source)

    def waiting() -> int:
        return sum(run["config_key"] in keys for run in store.list_runs(status=("queued", "running")))

    polling = waiting() > 0

    @st.fragment(run_every=2.0 if polling else None)
    def table_and_figures() -> None:
        from ttexplore.experiments import compress

        rows = [row.to_dict() for row in compress.compress_rows(store, targets)]
        left = waiting()
        if polling and not left:
            st.rerun(scope="app")  # all done: draw once more without polling
        st.caption((f"{left} run(s) queued or running · " if left else "")
                   + (f"the network as trained: test accuracy {accuracy:.4f}" if accuracy is not None else ""))
        st.dataframe(views.compress_table(rows, network=True), hide_index=True, key="netcompress_table", column_config={
            "weights": st.column_config.NumberColumn("parameters", format="localized",
                                                     help="Every parameter of the network, biases and head included"),
            "compression": st.column_config.NumberColumn(format="%.2e"),
            "rel_error": st.column_config.NumberColumn(format="%.4f", help="The largest layer's TT-SVD error"),
            **{name: st.column_config.NumberColumn(format="%.4f") for name in ("TT-SVD", "+ fine-tuning", "from scratch")}})
        dense = source.base.net_params()
        left_col, right_col = st.columns(2, gap="large")
        with left_col:
            ui.show_figure(views.compress_figure(rows, "rank", dense, accuracy, network=True), "compress-network-vs-rank",
                           "netcompress-rank")
        with right_col:
            ui.show_figure(views.compress_figure(rows, "params", dense, accuracy, network=True),
                           "compress-network-vs-weights", "netcompress-weights")

    table_and_figures()
