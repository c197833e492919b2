"""The app tests' shared plumbing: Streamlit's scan of installed components runs once per session."""

from __future__ import annotations

from app_support import scan_installed_components_once


def test_new_app_tests_share_one_scan_of_the_installed_components():
    from streamlit.components.v2 import manifest_scanner
    from streamlit.testing.v1 import AppTest

    scan_installed_components_once()
    before = manifest_scanner.scan_component_manifests.cache_info()
    for _ in range(2):
        app = AppTest.from_string("import streamlit as st\nst.write('hello')").run()
        assert not app.exception and app.markdown[0].value == "hello"
    after = manifest_scanner.scan_component_manifests.cache_info()
    assert after.hits + after.misses == before.hits + before.misses + 2  # each new AppTest asked for the scan
    assert after.misses <= 1  # and it was done at most once this session
