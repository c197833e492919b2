"""The run page's "Inside the TT cores" section through AppTest: per TT layer, the core norms over training,
the spectra per rank boundary with the effective ranks and the verdicts in words; a dense net says it has none."""

from __future__ import annotations

import json

from app_support import app_home, new_app, shared_data_dir  # noqa: F401

from ttexplore.runs import lifecycle
from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def trained(store, layers, epochs=1):
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": layers, "epochs": epochs,
                                  "train_limit": 256, "evals_per_epoch": 2})
    run_id = store.create_run(config)
    lifecycle.execute(store, run_id)
    return run_id


def open_run(run_id):
    at = new_app()
    at.query_params["id"] = run_id
    at.switch_page("pages/run.py").run(timeout=120)
    assert not at.exception, [item.value for item in at.exception]
    return at


def test_the_run_page_shows_inside_each_tt_layer(app_home):
    store = RunStore()
    run_id = trained(store, ["tt:4x4x4:2,12", "dense:16", "tt:4x4->2x8:3"])
    at = open_run(run_id)
    assert "Inside the TT cores" in [header.value for header in at.subheader]
    texts = [item.value for item in at.markdown]
    assert "**Hidden layer 1: TT 4x4x4 r=2,12**" in texts and "**Hidden layer 3: TT 4x4->2x8 r=3**" in texts
    assert not any("Hidden layer 2" in text for text in texts), "the dense layer has no cores"
    tables = [frame.value for frame in at.dataframe if "verdict" in frame.value.columns]
    assert len(tables) == 2
    first = tables[0]
    assert list(first["boundary"]) == ["r1", "r2"] and list(first["in use"]) == [2, 12]
    assert set(first.columns) >= {"at 0.1", "at 0.01", "at 0.001", "σ_r / σ_1"}
    # the words say, for each saturated or wasted boundary, which it is
    words = "\n".join(texts)
    for table in tables:
        for boundary, verdict in zip(table["boundary"], table["verdict"]):
            if verdict in ("saturated", "wasted"):
                assert f"**{boundary} is {verdict}**" in words
    at.run(timeout=120)  # the charts come with the second drawing
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
    assert "Core norms of hidden layer 1" in titles and "Core norms of hidden layer 3" in titles
    assert "Singular values per boundary, hidden layer 3" in titles


def test_a_dense_run_says_it_has_no_cores(app_home):
    store = RunStore()
    run_id = trained(store, ["dense:16"])
    at = open_run(run_id)
    assert any("no TT layer" in caption.value for caption in at.caption)
