"""Issue 19's page faults in a real browser against ``streamlit run app.py`` (Playwright and Debian's Chromium, as
``test_app_browser``): a link to a missing run keeps its address, every page under a bad variable and a
compressed run shows no traceback and no server path, and an upload the Compress page refuses is said in its
words and not kept. Slow: one server start and a browser."""

from __future__ import annotations

import time

import pytest
import torch

from test_app_browser import Server, browser, new_page  # noqa: F401 - browser is a fixture

from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

PAGES = ("", "train", "runs", "sweep", "compress", "export", "run")


def body_text(page) -> str:
    return page.locator('[data-testid="stApp"]').inner_text()


@pytest.mark.slow
def test_pages_under_faults_in_a_browser(browser, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    store = RunStore(home / "runs.db")
    weights = tmp_path / "w.pt"
    torch.save({"weight": torch.randn(64, 64)}, weights)
    from ttexplore.runs.warmstart import file_sha256

    compressed = RunConfig.for_dataset("digits", epochs=0, ranks=2,
                                       init_from={"path": str(weights), "sha256": file_sha256(weights)})
    for config, name in ((compressed, "compressed"), (RunConfig.for_dataset("digits", epochs=1, ranks=2), "**bold** <b>x</b>")):
        run_id = store.create_run(config, name=name)  # the last: the hostile name
        store.mark_running(run_id)
        store.finish(run_id, "completed")
    server = Server(home, tmp_path / "streamlit.log", {"TTEXPLORE_WORKERS": "abc"}).start()
    try:
        page = new_page(browser)
        # a link to a missing run: said, and the address is never rewritten to another run
        page.goto(server.url + "/run?id=deadbeef0000")
        page.get_by_text("There is no run").wait_for()
        time.sleep(3)  # the old page rewrote the address a second after drawing
        assert page.url == server.url + "/run?id=deadbeef0000"
        assert "deadbeef0000" in body_text(page)
        for address in PAGES:
            page.goto(f"{server.url}/{address}")
            page.locator('[data-testid="stSidebar"]').get_by_text("TTEXPLORE_WORKERS").wait_for()  # the bad variable, said
            time.sleep(2)
            text = body_text(page)
            assert "Traceback" not in text and "/tmp/" not in text and str(home) not in text, (address, text[-2000:])
            assert not page.locator('[data-testid="stException"]').count(), address
        # a name typed as Markdown and HTML shows as typed
        page.goto(f"{server.url}/run?id={run_id}")
        assert page.get_by_role("heading", level=1).first.inner_text().strip() == "**bold** <b>x</b>"
        # the Sweep page estimates with a compressed (0-epoch) run in the store
        page.goto(server.url + "/sweep")
        page.get_by_text("worker").first.wait_for()
        # an upload the Compress page refuses
        page.goto(server.url + "/compress")
        page.get_by_text("A weights file").click()
        empty = tmp_path / "empty.pt"
        empty.write_bytes(b"")
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(empty))
        page.get_by_text("is empty").wait_for()
        text = body_text(page)
        assert "the uploaded file" in text and "uploads/" not in text and "mmap" not in text
        uploads = home / "artifacts" / "uploads"
        assert not uploads.exists() or not list(uploads.iterdir())
        page.context.close()
    finally:
        server.stop()
    log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]  # nothing failed along the way
