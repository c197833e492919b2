"""Blocks of the Explore page (``pages/explore.py``) that keep it within its 250 lines: the typed layers' boxes
with the next layer to add, the tiles, the table of a network's layers, the memory guard's box with the parts of
its estimates, and the preview of a network typed layer by layer (a CNN). Streamlit widgets only: what they show
comes from ``ttexplore.presenters`` (``design``, ``network``, ``preview``).
"""

from __future__ import annotations

from typing import Any, Optional

import streamlit as st

import ui
from ttexplore.presenters import design as views
from ttexplore.presenters import network as net_views
from ttexplore.presenters.design import DesignState
from ttexplore.presenters.preview import network_rows
from ttexplore.runs.config import RunConfig
from ttexplore.runs.kinds import MAX_HIDDEN_LAYERS

state = st.session_state


def layer_boxes(design: DesignState, layers_error: Optional[Exception] = None) -> None:
    """The typed layers (every one of a typed network, those after the first otherwise): edit, remove, and add one
    of the suggestions the kinds make from the last layer's output shape (a pick is kept while the same layers are
    offered; when the last layer changes, the first of the new ones is picked). ``layers_error``: what is wrong
    with the extra layers, shown beside their boxes (the first layer's numbers stay)."""
    with st.expander("Layers" if design.typed else "More hidden layers", expanded=design.typed or bool(design.more_layers),
                     icon=":material/layers:", key="more_layers_box"):
        st.caption(views.layers_caption(design.typed))
        for index in range(len(design.more_layers)):
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            left.text_input(design.layer_title(index), key=f"more_layer_{index}", on_change=design.layer_typed, args=(index,))
            right.button("", icon=":material/delete:", key=f"remove_layer_{index}", on_click=design.remove_layer,
                         args=(index,), help="Remove this layer", disabled=design.typed and len(design.more_layers) == 1)
        if layers_error is not None:
            ui.show_config_error(layers_error, design.error_labels())
        offered = {suggestion.text: suggestion.words for suggestion in design.suggestions()}
        if offered and (state.get("next_layer") not in offered or state.get("next_layer_offered") != tuple(offered)):
            state.next_layer = next(iter(offered))
        state.next_layer_offered = tuple(offered)
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        if offered:
            left.selectbox("Next layer", list(offered), key="next_layer", format_func=offered.get,
                           help="Layers that fit after the last one, each built by its kind from that layer's output shape")
        else:
            left.caption(f"The network has the most hidden layers, {MAX_HIDDEN_LAYERS}: remove one to add another.")
        right.button("Add", icon=":material/add:", key="add_layer", on_click=design.add_layer, disabled=not offered,
                     help=f"Add the next layer (at most {MAX_HIDDEN_LAYERS} hidden layers)")


def layers_table(config: RunConfig) -> None:
    """The hidden layers of a network designed by the shape boxes and its extra layers, one row each and a total."""
    st.dataframe(network_rows(config), hide_index=True, key="network_table", width="stretch", column_config={
        "layer": st.column_config.TextColumn(width=180), "in → out": st.column_config.TextColumn(width=115),
        "weights": st.column_config.NumberColumn(format="localized", width=75),
        "dense weights": st.column_config.NumberColumn(format="localized", width=95),  # at 1400 px all five fit
        "compression": st.column_config.NumberColumn("rate", format="%.1e", width=60, help="compression rate: TT / dense")})


def show_tiles(tiles: dict[str, dict[str, Any]], warning: str) -> None:
    """Three tiles, then two (at 1400 px a fourth in a row was cut short), and the memory guard's warning."""
    for column, name in zip(st.columns(3), ("weights", "dense", "compression")):
        column.metric(**tiles[name], border=True)
    for column, name in zip(st.columns(2), ("flops", "memory")):
        column.metric(**tiles[name], border=True)
    if warning:
        st.warning(warning, icon=":material/memory:")


def memory_box(config: RunConfig) -> None:
    """The memory guard on the design and on its dense twin, side by side, its verdict, and the parts of each
    estimate with why they are what they are."""
    with st.container(border=True, key="memory_box"):
        tiles, caption = views.memory_tiles(config)
        for column, tile in zip(st.columns(2), tiles):
            column.metric(**tile)
        st.caption(caption)
        with st.expander("Why these numbers: the parts of each estimate", key="memory_parts"):
            st.markdown(views.memory_why(config))
            st.dataframe(views.memory_parts_rows(config), hide_index=True, width="stretch", column_config={
                name: st.column_config.NumberColumn(format="%.2f") for name in ("this net (MiB)", "dense twin (MiB)")})


def network_preview(config: RunConfig) -> None:
    """A network typed layer by layer: the whole net in the tiles, every layer (and the head) in a table, the memory
    guard, and the core diagram of a TT convolution or TT layer picked among its layers."""
    network = net_views.network_preview(config)
    show_tiles(net_views.network_tiles(network), network.memory_warning)
    with st.container(key="network-layers"):
        st.markdown("**Layer by layer** — the classifier head and the whole network last")
        st.dataframe(net_views.network_table(network), hide_index=True, key="network_table", column_config={
            **{name: st.column_config.NumberColumn(format="localized")
               for name in ("weights", "bias", "parameters", "dense weights", "FLOPs")},
            "compression": st.column_config.NumberColumn("compression rate", format="%.2e"),
            "training memory": st.column_config.TextColumn(help="A layer: its parameters with their gradients and Adam's "
                                                                "moments, its work and outputs at the batch size. The "
                                                                "whole network: the run's peak, data included")})
    memory_box(config)
    drawable = net_views.diagram_layers(config)
    if drawable:
        shown = st.selectbox("Cores of", list(drawable), key="diagram_layer", format_func=drawable.get,
                             help="The layers with TT cores: a TT convolution's spatial core and channel cores, a TT "
                                  "layer's cores, with the ranks in use")
        ui.show_figure(net_views.layer_diagram(config, shown), "tt-cores", "cores")
