"""What the app and the CLI show, without Streamlit: :mod:`~ttexplore.presenters.preview`
(the Explore numbers), :mod:`~ttexplore.presenters.reports` (labels and tables of runs),
:mod:`~ttexplore.presenters.plots` (plotly figures), :mod:`~ttexplore.presenters.export`
(PNG/SVG/HTML/CSV/JSON and weights files)."""
