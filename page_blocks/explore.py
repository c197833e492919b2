"""Blocks of the Explore page (``pages/explore.py``) that keep it within its 250 lines: the typed layers' boxes
with the next layer to add, the tiles, the memory guard's box, and the preview of a network typed layer by layer
(a CNN). Streamlit widgets only: what they show comes from ``ttexplore.presenters`` (``design``, ``network``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import ui
from ttexplore.presenters import design as views
from ttexplore.presenters import network as net_views
from ttexplore.presenters.design import DesignState
from ttexplore.runs.config import RunConfig

state = st.session_state


def layer_boxes(design: DesignState) -> None:
    """The typed layers (every one of a typed network, those after the first otherwise): edit, remove, and add one
    of the suggestions the kinds make from the last layer's output shape."""
    with st.expander("Layers" if design.typed else "More hidden layers", expanded=design.typed or bool(design.more_layers),
                     icon=":material/layers:", key="more_layers_box"):
        st.caption(views.layers_caption(design.typed))
        for index in range(len(design.more_layers)):
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            left.text_input(design.layer_title(index), key=f"more_layer_{index}", on_change=design.layer_typed, args=(index,))
            right.button("", icon=":material/delete:", key=f"remove_layer_{index}", on_click=design.remove_layer,
                         args=(index,), help="Remove this layer", disabled=design.typed and len(design.more_layers) == 1)
        offered = {suggestion.text: suggestion.words for suggestion in design.suggestions()}
        if state.get("next_layer") not in offered:
            state.next_layer = next(iter(offered))
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        left.selectbox("Next layer", list(offered), key="next_layer", format_func=offered.get,
                       help="Layers that fit after the last one, each built by its kind from that layer's output shape")
        right.button("Add", icon=":material/add:", key="add_layer", on_click=design.add_layer, help="Add the next layer")


def show_tiles(tiles: dict[str, dict[str, Any]], warning: str) -> None:
    """Three tiles, then two (at 1400 px a fourth in a row was cut short), and the memory guard's warning."""
    for column, name in zip(st.columns(3), ("weights", "dense", "compression")):
        column.metric(**tiles[name], border=True)
    for column, name in zip(st.columns(2), ("flops", "memory")):
        column.metric(**tiles[name], border=True)
    if warning:
        st.warning(warning, icon=":material/memory:")


def memory_box(config: RunConfig) -> None:
    """The memory guard on the design and on its dense twin, side by side, and its verdict."""
    with st.container(border=True, key="memory_box"):
        tiles, caption = views.memory_tiles(config)
        for column, tile in zip(st.columns(2), tiles):
            column.metric(**tile)
        st.caption(caption)


def network_preview(config: RunConfig) -> None:
    """A network typed layer by layer: the whole net in the tiles, every layer (and the head) in a table, the memory
    guard, and the core diagram of a TT convolution or TT layer picked among its layers."""
    network = net_views.network_preview(config)
    show_tiles(net_views.network_tiles(network), network.memory_warning)
    st.markdown("**Layer by layer** — the classifier head and the whole network last")
    st.dataframe(net_views.network_table(network), hide_index=True, key="network_table", column_config={
        **{name: st.column_config.NumberColumn(format="localized")
           for name in ("weights", "bias", "parameters", "dense weights", "FLOPs")},
        "compression": st.column_config.NumberColumn("compression rate", format="%.2e"),
        "training memory": st.column_config.TextColumn(help="A layer: its parameters with their gradients and Adam's "
                                                            "moments, its work and outputs at the batch size. The whole "
                                                            "network: the run's peak, data included")})
    memory_box(config)
    drawable = net_views.diagram_layers(config)
    if drawable:
        shown = st.selectbox("Cores of", list(drawable), key="diagram_layer", format_func=drawable.get,
                             help="The layers with TT cores: a TT convolution's spatial core and channel cores, a TT "
                                  "layer's cores, with the ranks in use")
        ui.show_figure(net_views.layer_diagram(config, shown), "tt-cores", "cores")
