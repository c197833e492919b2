"""The run page's view inside the TT cores: norm series and figures from stored events, the spectra figure and
table, the per-layer sections' notes, and spectra computed once for a run that ended without them."""

from __future__ import annotations

import pytest

from ttexplore.presenters import cores
from ttexplore.runs.config import RunConfig

CONFIG = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:2,3", "dense:16", "tt:4x4->4x4:2"],
                              "epochs": 2})


def event(epoch, step, weights, grads=None, layer=0):
    return {"kind": "eval", "epoch": epoch, "step": step, "elapsed_s": epoch * 2,
            "cores": [{"layer": layer, "weight": weights, "grad": grads}]}


def run_dict(status="completed", config=CONFIG, run_id="r1"):
    return {"id": run_id, "status": status, "config": config.to_dict(), "weights_path": None}


def test_norm_series_follows_the_events_that_carry_the_layer():
    events = [event(0.0, 0, [1.0, 2.0, 3.0]), {"kind": "eval", "epoch": 0.25, "step": 2},  # an older event: no norms
              event(0.5, 4, [1.1, 2.1, 3.1], [0.1, 0.2, 0.3]), event(1.0, 8, [9.0], layer=2)]
    series = cores.norm_series(events, 0)
    assert series["x"] == [0.0, 0.5]
    assert series["weight"] == [[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]]
    assert series["grad"] == [[None, 0.1], [None, 0.2], [None, 0.3]]
    assert cores.norm_series(events, 0, x="step")["x"] == [0, 4]
    assert cores.norm_series(events, 2)["weight"] == [[9.0]]
    assert cores.norm_series(events, 1) == {"x": [], "weight": [], "grad": []}


def test_norms_figure_draws_one_line_per_core_in_each_panel():
    events = [event(epoch / 2, epoch, [1.0 + epoch, 2.0, 3.0], None if epoch == 0 else [0.1, 0.2, 0.3 * epoch])
              for epoch in range(4)]
    figure = cores.norms_figure(events, 0, "Hidden layer 1: core norms", x="epoch")
    assert [trace.name for trace in figure.data] == ["G1", "G1", "G2", "G2", "G3", "G3"]
    weights, grads = figure.data[0], figure.data[1]
    assert list(weights.y) == [1.0, 2.0, 3.0, 4.0] and list(weights.x) == [0.0, 0.5, 1.0, 1.5]
    assert grads.y[0] is None and list(grads.y[1:]) == [0.1, 0.1, 0.1]
    assert figure.layout.yaxis2.type == "log" and figure.layout.title.text == "Hidden layer 1: core norms"


def spectra_record(spectra, ranks, max_useful, effective):
    return {"layer": 0, "ranks": ranks, "max_useful": max_useful, "singular_values": spectra,
            "effective_ranks": effective}


def test_spectra_figure_marks_the_rank_in_use_on_a_log_scale():
    record = spectra_record([[4.0, 2.0], [3.0, 0.03, 0.003]], [2, 3], [16, 16], {"0.1": [2, 1], "0.01": [2, 1], "0.001": [2, 2]})
    figure = cores.spectra_figure(record, "spectra")
    lines = [trace for trace in figure.data if trace.mode != "markers"]
    diamonds = [trace for trace in figure.data if trace.mode == "markers"]
    assert [trace.name for trace in lines] == ["r1 (saturated)", "r2 (wasted)"]
    assert list(lines[0].y) == [1.0, 0.5] and list(lines[1].y) == pytest.approx([1.0, 0.01, 0.001])
    assert [(list(trace.x), list(trace.y)) for trace in diamonds] == [([2], [0.5]), ([3], [pytest.approx(0.001)])]
    assert figure.layout.yaxis.type == "log"
    rows = cores.effective_rank_rows(record)
    assert rows[1] == {"boundary": "r2", "in use": 3, "at 0.1": 1, "at 0.01": 1, "at 0.001": 2, "σ_r / σ_1": 0.001,
                       "verdict": "wasted"}
    assert set(rows[1]) <= set(cores.TABLE_WIDTHS)
    words = cores.verdict_markdown(record)
    assert "**r1 is saturated**" in words and "rank 2 limits it" in words
    assert "**r2 is wasted**" in words and "rank 1 already keeps the layer within 0.01" in words


def test_sections_name_each_tt_layer_and_say_what_is_missing():
    events = [event(0.0, 0, [1.0, 1.0, 1.0])]
    record = {"source": "final weights", "layers": [spectra_record([[1.0, 0.5], [1.0, 0.5, 0.2]], [2, 3], [16, 16],
                                                                   {"0.01": [2, 3]})]}
    sections = cores.layer_sections(run_dict(), events, record)
    assert [section["layer"] for section in sections] == [0, 2], "the dense layer has no cores"
    first, third = sections
    assert first["heading"] == "Hidden layer 1: TT 4x4x4 r=2,3" and first["norms"] and first["spectra"] is not None
    assert first["spectra_note"] == "From its final weights."
    assert third["heading"] == "Hidden layer 3: TT 4x4 r=2" and not third["norms"] and third["spectra"] is None
    assert "recorded before core norms were" in third["norms_note"]
    running = cores.layer_sections(run_dict("running"), [], None)
    assert "No point yet" in running[0]["norms_note"] and "when the run ends" in running[0]["spectra_note"]
    dense = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["dense:16"]})
    assert cores.layer_sections(run_dict(config=dense), [], None) == []


@pytest.mark.parametrize("source", ["checkpoint", "weights"])
def test_a_run_that_ended_without_spectra_gets_them_once_from_its_checkpoint_or_weights(tmp_path, source):
    from ttexplore.runs import corestats, lifecycle
    from ttexplore.runs.data import load_dataset
    from ttexplore.runs.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["tt:4x4x4:2,3"], "epochs": 2,
                                  "train_limit": 128})
    run_id = store.create_run(config)
    stop = lifecycle.StopFlags.new(store, run_id)
    lifecycle.execute(store, run_id, stop=stop, dataset=load_dataset("digits", str(tmp_path / "data")),
                      on_event=lambda event: stop.interrupt.set() if event["epoch"] >= 1.5 else None)
    # a server killed mid-run leaves its checkpoint but neither final weights nor spectra
    store.spectra_path_for(run_id).unlink()
    if source == "checkpoint":
        store.artifact_path(store.get_run(run_id)["weights_path"]).unlink()
    assert cores.spectra_for(store, {**store.get_run(run_id), "status": "running"}) is None, "not while it runs"
    record = cores.spectra_for(store, store.get_run(run_id))
    assert record["source"] == ("checkpoint after epoch 1" if source == "checkpoint" else "final weights")
    assert record["layers"][0]["ranks"] == [2, 3]
    kept = store.spectra_path_for(run_id).stat().st_mtime_ns
    assert cores.spectra_for(store, store.get_run(run_id)) == record
    assert store.spectra_path_for(run_id).stat().st_mtime_ns == kept, "read back, not computed again"
    assert corestats.read_spectra(store, run_id) == record
