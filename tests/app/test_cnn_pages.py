"""The pages for CNNs through Streamlit's AppTest: Explore designs the tt-convnet preset (its numbers against the built
modules), edits its layers and trains it; Train follows the CNN run live; the Runs and Run pages show its layers; the
Sweep page plans a sweep of a network's TT layers; Compress takes a tiny trained dense CNN layer by layer."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from app_support import app_home, metric, new_app, run_until, shared_data_dir, shown  # noqa: F401

from ttexplore.experiments import sweep
from ttexplore.runs.config import RunConfig
from ttexplore.runs.presets import run_preset
from ttexplore.runs.store import RunStore


def module_counts(config: RunConfig) -> int:
    """Every parameter of the network ``config`` describes, counted on the built modules."""
    from ttexplore.runs.models import build_model

    return sum(parameter.numel() for parameter in build_model(config).parameters())


def charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_explore_designs_the_tt_convnet_and_edits_its_layers(app_home):
    at = new_app().run()
    at.selectbox(key="preset").select("tt-convnet").run()
    assert not at.exception and not at.error
    config = run_preset("tt-convnet", dataset="mnist5k")
    assert at.toggle(key="typed_net").value and at.session_state["more_layers"] == [layer.text() for layer in config.layers]
    assert metric(at, "Network parameters") == f"{module_counts(config):,}"
    assert metric(at, "Dense twin's parameters") == f"{module_counts(config.dense_twin()):,}"
    table = at.dataframe[0].value
    assert list(table["layer"])[-1] == "whole network" and table["parameters"].iloc[-1] == module_counts(config)
    assert [text_input.label for text_input in at.text_input][:2] == ["Hidden layer 1", "Hidden layer 2"]
    assert at.selectbox(key="diagram_layer").value == 2  # the first TT convolution's cores
    at.run()  # the charts come with the second drawing
    cores = next(chart for chart in charts(at) if chart["layout"]["title"]["text"].startswith("TT conv"))
    assert "1×9×1×4" in [note["text"] for note in cores["layout"]["annotations"]]  # the spatial core, r_0 = 4
    # the next layer after the TT FC layer: a fully-connected one; added, then removed
    offered = at.selectbox(key="next_layer").options
    assert offered and all(not option.startswith(("conv", "pool", "ttconv")) for option in offered)
    at.button(key="add_layer").click().run()
    assert len(at.session_state["more_layers"]) == 8 and at.selectbox(key="preset").value == "Custom shapes"
    at.button(key="remove_layer_7").click().run()
    assert at.selectbox(key="preset").value == "tt-convnet"
    at.text_input(key="more_layer_2").input("ttconv:4x4->4x4x4:4:3").run()  # 16 channels where 32 come in
    assert at.error and shown(at.error[0].value).startswith("Hidden layer 3: input modes 4x4x1 multiply to 16")
    at.text_input(key="more_layer_2").input("conv:64:3").run()  # the convnet's layer back in, dense
    expected = RunConfig.for_dataset("mnist5k", layers=[*at.session_state["more_layers"]])
    assert not at.error and metric(at, "Network parameters") == f"{module_counts(expected):,}"
    at.select_slider(key="net_rank").set_value(8).run()
    ranked = RunConfig.for_dataset("mnist5k", layers=[*at.session_state["more_layers"]])
    assert [layer.rank_setting for layer in ranked.layers if layer.has_tt_cores] == [8, 8]
    assert metric(at, "Network parameters") == f"{module_counts(ranked):,}"


@pytest.mark.slow  # trains a small CNN in the background and follows it live
def test_train_a_cnn_from_explore_and_follow_it(app_home):
    at = new_app().run()
    at.selectbox(key="dataset").select("digits").run()
    at.selectbox(key="preset").select("tt-convnet").run()
    at.number_input(key="epochs").set_value(1)
    at.number_input(key="train_limit").set_value(300)
    at.button(key="train_submit").click().run()
    assert not at.exception and at.title[0].value == "Train"
    store = RunStore()
    (run,) = store.list_runs()
    config = RunConfig.from_dict(run["config"])
    assert config.layers == run_preset("tt-convnet", dataset="digits").layers and config.train_limit == 300
    at = at.switch_page("pages/train.py")
    run_until(at, lambda at: store.get_run(run["id"])["status"] == "completed", "the CNN run to complete")
    at.run()
    curves = next(chart for chart in charts(at) if chart["data"] and any(trace.get("x") for trace in chart["data"]))
    assert any(len(trace.get("x") or []) >= 1 for trace in curves["data"])
    at.switch_page("pages/runs.py").run()
    row = at.dataframe[0].value.iloc[0]
    assert row["net weights"] == config.net_params() and "TT conv" in row["layer"]


def test_the_run_page_of_a_cnn_lists_its_layers(app_home):
    store = RunStore()
    config = run_preset("tt-convnet", dataset="digits", epochs=1)
    run_id = store.create_run(config, status="running")
    store.finish(run_id, "cancelled")
    at = new_app()
    at.query_params["id"] = run_id
    at.switch_page("pages/run.py").run()
    assert not at.exception
    assert metric(at, "Network parameters") == f"{config.net_params():,}"
    settings = {row["setting"]: row["value"] for row in at.dataframe[0].value.to_dict("records")}
    assert [settings[f"hidden layer {index}"].split(" · ")[0] for index in range(1, len(config.layers) + 1)] == \
        [layer.text() for layer in config.layers]


def test_the_sweep_page_plans_a_sweep_of_a_networks_tt_layers(app_home):
    from streamlit.testing.v1 import AppTest

    import app_support

    at = AppTest.from_file(str(app_support.REPO / "pages" / "sweep.py"), default_timeout=90).run()
    at.segmented_control(key="sweep_what_custom").set_value("A network's TT layers").run()
    at.selectbox(key="sweep_dataset_custom").select("digits")
    at.text_input(key="sweep_ranks_custom").input("2,4,8")
    at.text_input(key="sweep_seeds_custom").input("0,1").run()
    assert not at.exception and not at.error
    assert at.checkbox(key="sweep_baselines_custom").label == "Its dense twin"
    grid = sweep.expand(sweep.make_spec("my-sweep", "digits", "", "2,4,8", "0,1", network="tt-convnet", epochs=5))
    plan = next(item.value for item in at.markdown if "runs," in item.value)
    assert f"**{len(grid.cells)} runs," in plan and f"({grid.counts_text()})" in plan
    assert len(grid.cells) == 3 * 2 + 2  # three ranks and the dense twin, two seeds each
    at.text_input(key="sweep_network_custom").input("convnet").run()
    assert at.error and "no layer with TT cores" in at.error[0].value
    assert RunStore().list_runs() == []  # planned, nothing queued


def unfoldings(kernel: np.ndarray, in_modes, out_modes) -> list[np.ndarray]:
    """The singular values of each unfolding of a conv kernel ``(C_out, C_in, k, k)`` in Garipov's TT layout: the
    kernel position ``(x, y)`` first, then the pairs ``(c_j, s_j)`` of each channel mode (numpy, float64)."""
    c_out, c_in, kh, kw = kernel.shape
    d = len(in_modes)
    tensor = kernel.reshape(*out_modes, *in_modes, kh, kw)  # (s_1..s_d, c_1..c_d, x, y)
    order = [2 * d, 2 * d + 1] + [axis for k in range(d) for axis in (d + k, k)]  # x, y, c_1, s_1, ..., c_d, s_d
    tensor = tensor.transpose(order)
    sizes = [kh * kw] + [c * s for c, s in zip(in_modes, out_modes)]
    tensor = tensor.reshape(sizes)
    return [np.linalg.svd(tensor.reshape(int(np.prod(sizes[:k])), -1), compute_uv=False) for k in range(1, len(sizes))]


@pytest.mark.slow  # trains a tiny dense CNN, then five TT networks of it
def test_compress_a_trained_dense_cnn_layer_by_layer(app_home):
    from streamlit.testing.v1 import AppTest

    import app_support
    from ttexplore.runs.lifecycle import execute
    from ttexplore.runs.models import load_model

    store = RunStore()
    config = RunConfig.for_dataset("digits", layers=["conv:8:3", "pool:2", "conv:16:3", "pool:2", "dense:32"], epochs=2,
                                   batch_size=32, evals_per_epoch=1)
    run_id = store.create_run(config, status="running")
    execute(store, run_id)
    page = AppTest.from_file(str(app_support.REPO / "pages" / "compress.py"), default_timeout=120).run()
    assert not page.exception and not page.error
    boxes = {box.key: box.value for box in page.text_input}
    assert set(boxes) == {f"netcompress_{run_id}_2", f"netcompress_{run_id}_4"}  # the second conv and the FC layer
    tt_conv = boxes[f"netcompress_{run_id}_2"]
    assert tt_conv.startswith("ttconv:") and tt_conv.split(":")[1].split("->")[0] != ""
    figures = [chart for chart in charts(page) if "singular values" in chart["layout"]["title"]["text"]]
    assert len(figures) == 2  # one figure per compressed layer
    model, _ = load_model(store.artifact_path(store.get_run(run_id)["weights_path"]))
    kernel = model.hidden_3.weight.detach().double().numpy()
    from ttexplore.runs.kinds import parse_layer

    target = parse_layer(tt_conv)
    expected = unfoldings(kernel, target.in_modes, target.out_modes)
    drawn = [trace for trace in figures[0]["data"] if trace.get("showlegend") is not False]
    assert drawn[0]["name"].startswith("r_0: kernel | channels")
    for trace, values in zip(drawn, expected):  # sigma_i / sigma_1 of each unfolding, against numpy's
        assert np.allclose(trace["y"], np.maximum(values / values[0], 1e-16), rtol=1e-6, atol=1e-12)
    page.multiselect(key="netcompress_ranks").set_value([1, 4])
    page.number_input(key="netcompress_epochs").set_value(1)
    page.number_input(key="netcompress_scratch_epochs").set_value(1)
    page.button(key="netcompress_submit").click().run()
    assert not page.exception
    deadline = time.monotonic() + 240
    while True:
        table = page.dataframe[-1].value
        if table[["TT-SVD", "+ fine-tuning", "from scratch"]].notna().all().all() or time.monotonic() > deadline:
            break
        time.sleep(1)
        page.run()
    assert list(table["rank"]) == [1, 4] and table[["TT-SVD", "+ fine-tuning", "from scratch"]].notna().all().all()
    assert (table["weights"] < config.net_params()).all() and table["layer errors"].str.count(",").eq(1).all()
    runs = store.list_runs()
    assert sum("compress" in run["tags"] for run in runs) == 2 * 3
