"""Background training: a queue of runs, a concurrency limit, cancel, status, errors.

The :class:`JobManager` lives as long as the process (the Streamlit app hands
one out with ``st.cache_resource``). It runs :func:`ttexplore.runs.fit.fit` in
worker threads, writes every metric event to the :class:`~ttexplore.runs.store.RunStore`
and saves the trained weights. It never calls a UI; pages poll the store or
:meth:`JobManager.snapshot`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ttexplore.runs.config import RunConfig
from ttexplore.runs.store import RunStore

__all__ = ["JobManager", "JobState"]

log = logging.getLogger(__name__)

#: Runs queued or running in any manager of this process (so a second manager,
#: e.g. after a Streamlit cache clear, never marks a live run as interrupted).
_LIVE_RUNS: set[str] = set()
_LIVE_LOCK = threading.Lock()


@dataclass
class JobState:
    """What the manager knows of one run in this process."""

    run_id: str
    config: RunConfig
    status: str = "queued"
    cancel: threading.Event = field(default_factory=threading.Event)
    last_event: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Runs training jobs in the background, at most ``max_workers`` at once.

    Args:
        store: where runs, events and statuses go.
        max_workers: concurrent runs (default: the number of CPU cores).
        data_dir: dataset folder passed to :func:`ttexplore.runs.data.load_dataset`.
        fit_function: the training function (tests may swap it); default
            :func:`ttexplore.runs.fit.fit`.
        torch_threads: torch intra-op threads for the process (torch has one pool
            for all threads); default ``cores // max_workers``, so concurrent runs
            do not oversubscribe the cores (two threads per run on a busy 2-core
            machine made an MNIST-5k epoch 20x slower).

    On start it marks runs left ``queued``/``running`` by a dead process as
    ``interrupted``, so a restart never shows a ghost run.
    """

    def __init__(
        self,
        store: RunStore,
        max_workers: Optional[int] = None,
        data_dir: Optional[str] = None,
        fit_function: Optional[Callable[..., Any]] = None,
        torch_threads: Optional[int] = None,
    ) -> None:
        self.store = store
        self.max_workers = max(1, int(max_workers or os.cpu_count() or 1))
        self.data_dir = data_dir
        self._fit = fit_function
        cores = os.cpu_count() or 1
        self.torch_threads = max(1, int(torch_threads or cores // self.max_workers))
        self._warm = threading.Event()
        self._warm.set()
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._closed = False
        with _LIVE_LOCK:
            self.store.mark_orphans_interrupted(set(_LIVE_RUNS))
        self._workers = [
            threading.Thread(target=self._work, name=f"ttexplore-job-{index}", daemon=True) for index in range(self.max_workers)
        ]
        for worker in self._workers:
            worker.start()

    # ---------------------------------------------------------------- API
    def submit(self, config: RunConfig, sweep: Optional[str] = None) -> str:
        """Queue a run of ``config`` (validated first); returns its run id at once.

        Raises:
            ConfigError: for an invalid config (nothing is queued).
            RuntimeError: after :meth:`shutdown`.
        """
        if self._closed:
            raise RuntimeError("the job manager is shut down; start a new one")
        config.validate()
        run_id = self.store.create_run(config, sweep=sweep)
        with _LIVE_LOCK:
            _LIVE_RUNS.add(run_id)
        with self._lock:
            self._jobs[run_id] = JobState(run_id, config)
        self._queue.put(run_id)
        return run_id

    def warm_up(self, dataset: str) -> threading.Thread:
        """Pay a first run's one-off costs in the background: import torch, load
        ``dataset``, and take one optimizer step (torch imports its compiler stack
        then, over a second). Until it ends, workers hold their first run back, so a
        run submitted at start-up does not load the same data alongside it.
        Errors are left for the run that needs the data to report, with their fix.
        """
        self._warm.clear()

        def warm() -> None:
            try:
                import torch
                import torch.nn.functional as F

                from ttexplore.runs.config import RunConfig
                from ttexplore.runs.data import load_dataset
                from ttexplore.runs.models import build_model

                data = load_dataset(dataset, self.data_dir)
                model = build_model(RunConfig.for_dataset(dataset))
                optimizer = torch.optim.Adam(model.parameters())
                F.cross_entropy(model(data.train_images[:8]), data.train_labels[:8]).backward()
                optimizer.step()
            except Exception:  # noqa: BLE001 - the run that needs the data reports the problem
                log.info("warming up on %s failed; a run on it will say why", dataset)
            finally:
                self._warm.set()

        thread = threading.Thread(target=warm, name=f"ttexplore-warm-up-{dataset}", daemon=True)
        thread.start()
        return thread

    def cancel(self, run_id: str) -> bool:
        """Stop a run: a queued one never starts, a running one stops before its next batch.

        Returns:
            True when the run was queued or running here.
        """
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.status not in ("queued", "running"):
                return False
            job.cancel.set()
            if job.status == "queued":
                job.status = "cancelled"
                self.store.finish(run_id, "cancelled")
                job.done.set()
                with _LIVE_LOCK:
                    _LIVE_RUNS.discard(run_id)
        return True

    def status(self, run_id: str) -> Optional[str]:
        """The run's status as this manager knows it, else as the store has it."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                return job.status
        run = self.store.get_run(run_id)
        return run["status"] if run else None

    def active(self) -> list[str]:
        """Ids of runs queued or running in this process, oldest first."""
        with self._lock:
            return [run_id for run_id, job in self._jobs.items() if job.status in ("queued", "running")]

    def starting(self) -> list[str]:
        """Ids of runs running in this process that have not reported a metric yet, oldest first.

        A page follows these more often than the others, so a new run's first point shows at once.
        """
        with self._lock:
            return [run_id for run_id, job in self._jobs.items() if job.status == "running" and job.last_event is None]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{run_id: {status, last_event, error, label}}`` for every run this manager has seen."""
        with self._lock:
            return {
                run_id: {"status": job.status, "last_event": job.last_event, "error": job.error, "label": job.config.describe()}
                for run_id, job in self._jobs.items()
            }

    def wait(self, run_id: str, timeout: Optional[float] = None) -> Optional[str]:
        """Block until the run ends (or ``timeout`` passes); returns its status."""
        with self._lock:
            job = self._jobs.get(run_id)
        if job is None:
            return self.status(run_id)
        job.done.wait(timeout)
        return job.status

    def shutdown(self, cancel_running: bool = True, timeout: float = 10.0) -> None:
        """Stop taking work; cancel queued and (optionally) running runs; join the workers."""
        self._closed = True
        for run_id in self.active():
            if cancel_running:
                self.cancel(run_id)
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout)

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None:
                return
            with self._lock:
                job = self._jobs.get(run_id)
                if job is None or job.status != "queued":
                    continue
                job.status = "running"
            try:
                self._run(job)
            except Exception as error:  # noqa: BLE001 - the worker thread must survive anything
                log.exception("run %s failed outside the training loop", run_id)
                self._finish(job, "failed", f"{type(error).__name__}: {error}")

    def _run(self, job: JobState) -> None:
        from ttexplore.runs.models import save_model
        from ttexplore.runs.fit import fit

        import torch

        fit_function = self._fit or fit
        self._warm.wait(timeout=120)
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        self.store.mark_running(job.run_id)

        def on_event(event: dict[str, Any]) -> None:
            self.store.add_event(job.run_id, event)
            job.last_event = event

        result = fit_function(job.config, callback=on_event, cancel=job.cancel, data_dir=self.data_dir)
        weights = None
        if result.model is not None and result.status in ("completed", "cancelled"):
            weights = str(save_model(result.model, job.config, self.store.weights_path_for(job.run_id)))
        if result.traceback:
            log.error("run %s failed:\n%s", job.run_id, result.traceback)
        self._finish(job, result.status, result.error, weights)

    def _finish(self, job: JobState, status: str, error: Optional[str], weights: Optional[str] = None) -> None:
        self.store.finish(job.run_id, status, error=error, weights_path=weights)
        with self._lock:
            job.status, job.error = status, error
        with _LIVE_LOCK:
            _LIVE_RUNS.discard(job.run_id)
        job.done.set()
