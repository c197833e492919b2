"""RunStore's rows: one damaged row never stops a listing."""

from __future__ import annotations

from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore


def test_a_row_whose_json_cannot_be_read_is_listed_and_marked(tmp_path):
    """A row changed outside ttexplore (its config, ranks or tags JSON broken) never stops the listing."""
    import json
    import sqlite3

    store = RunStore(tmp_path / "runs.db")
    good = store.create_run(RunConfig.for_dataset("digits", epochs=1, ranks=2), tags=["kept"])
    broken = {store.create_run(RunConfig.for_dataset("digits", epochs=epochs, ranks=2)): values
              for epochs, values in ((2, ("{not json", "[1, 2", "x")), (3, (json.dumps([1]), json.dumps({}), json.dumps("t"))))}
    with sqlite3.connect(store.path) as connection:
        for run_id, (config, ranks, tags) in broken.items():
            connection.execute("UPDATE runs SET config=?, ranks=?, tags=? WHERE id=?", (config, ranks, tags, run_id))
    runs = {run["id"]: run for run in store.list_runs()}
    assert runs[good]["config"]["epochs"] == 1 and runs[good]["tags"] == ["kept"] and "damaged" not in runs[good]
    for run_id in broken:
        assert runs[run_id]["config"] == {} and runs[run_id]["tags"] == [] and runs[run_id]["ranks"] is None
        assert runs[run_id]["damaged"] == ["config", "ranks", "tags"]
        assert store.get_run(run_id)["damaged"] == ["config", "ranks", "tags"]
