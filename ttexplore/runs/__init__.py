"""One run, from its description to its record.

:mod:`~ttexplore.runs.config` (``RunConfig``, pure) -> :mod:`~ttexplore.runs.data` ->
:mod:`~ttexplore.runs.models` -> :mod:`~ttexplore.runs.fit` (the training loop) ->
:mod:`~ttexplore.runs.lifecycle` (checkpoints, resume, final status and weights) ->
:mod:`~ttexplore.runs.store` (SQLite: runs, events, the queue); :mod:`~ttexplore.runs.jobs`
runs queued runs in the background.
"""
