"""Blocks of the app's pages that would make a page longer than its 250 lines: Streamlit widgets arranged around
``ttexplore.presenters`` (which holds their logic, tested there), one module per page (``explore``, ``compress``).
Like the pages, they import ``streamlit`` itself only, and ``ui`` for the shared plumbing."""
