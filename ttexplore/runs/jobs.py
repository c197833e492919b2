"""Background training: runs queued in the store, a concurrency limit, cancel, resume, status.

The :class:`JobManager` lives as long as the process (the Streamlit app hands
one out with ``st.cache_resource``). The queue is the run store itself: a
submitted run is recorded ``queued`` on the ``"app"`` queue, and each worker
thread takes the oldest one with :meth:`~ttexplore.runs.store.RunStore.claim_next`
(atomic, so two servers on one home never both take a run) and runs it through
:func:`ttexplore.runs.lifecycle.execute` (checkpoints, final weights, status). A
run queued by a process that died simply waits for the next manager; one that
was running is marked ``interrupted`` and :meth:`JobManager.resume` continues it.
The manager never calls a UI; pages poll the store or :meth:`JobManager.snapshot`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ttexplore.runs.config import RunConfig
from ttexplore.runs.settings import worker_cap
from ttexplore.runs.store import ACTIVE_STATUSES, DUPLICATE_WINDOW_S, FINAL_STATUSES, RunStore, StoreError, Submission

__all__ = ["JobManager", "JobState"]

log = logging.getLogger(__name__)

#: Seconds before a store problem already logged is logged again.
_QUIET_S = 300.0

#: Runs running in any manager of this process (so a second manager, e.g. after a
#: Streamlit cache clear, never marks a live run as interrupted).
_LIVE_RUNS: set[str] = set()
_LIVE_LOCK = threading.Lock()

#: Handed configs beyond this many are checked against the store when a worker takes a run.
_HANDED_CHECK = 64
#: One warm-up at a time in a process: torch's first optimizer step imports and sets up its compiler stack,
#: and two of them at once in threads of one process crashed it (a segfault in Adam's step, seen when the
#: tests made a manager per test). The first warm-up pays; the ones after it find torch warm.
_WARM_LOCK = threading.Lock()


@dataclass
class JobState:
    """What the manager knows of one run it runs in this process."""

    run_id: str
    config: RunConfig
    stop: Any
    status: str = "running"
    last_event: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Runs queued training runs in the background, at most ``max_workers`` at once.

    Args:
        store: where runs, events, statuses and the queue live.
        max_workers: concurrent runs (default: the number of CPU cores), capped at
            :func:`~ttexplore.runs.settings.worker_cap` (two per core), with a note in :attr:`notes`.
        data_dir: dataset folder passed to :func:`ttexplore.runs.data.load_dataset`.
        fit_function: the training function (tests may swap it); default
            :func:`ttexplore.runs.fit.fit`.
        torch_threads: torch intra-op threads for the process (torch has one pool
            for all threads); default ``cores // max_workers``, so concurrent runs
            do not oversubscribe the cores (two threads per run on a busy 2-core
            machine made an MNIST-5k epoch 20x slower).
        poll_s: how often an idle worker looks for runs queued by other processes.

    On start it marks runs left ``running`` by a dead process ``interrupted``
    (resumable), so a restart never shows a ghost run; runs left ``queued`` are taken.
    """

    def __init__(
        self,
        store: RunStore,
        max_workers: Optional[int] = None,
        data_dir: Optional[str] = None,
        fit_function: Optional[Callable[..., Any]] = None,
        torch_threads: Optional[int] = None,
        poll_s: float = 0.5,
    ) -> None:
        self.store = store
        requested = max(1, int(max_workers or os.cpu_count() or 1))
        self.max_workers = min(requested, worker_cap())
        #: What the manager changed of what it was asked, said once (also in the log): a capped worker count.
        self.notes: list[str] = []
        if requested > self.max_workers:
            self.notes.append(f"{requested} workers asked for, more than {self.max_workers} (two per core): "
                              f"training at most {self.max_workers} runs at once")
            log.warning(self.notes[-1])
        self.data_dir = data_dir
        self._fit = fit_function
        cores = os.cpu_count() or 1
        self.torch_threads = max(1, int(torch_threads or cores // self.max_workers))
        self.poll_s = poll_s
        self._warm = threading.Event()
        self._warm.set()
        self._warm_thread: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._jobs: dict[str, JobState] = {}
        #: configs submitted here and not yet taken by a worker: the worker runs the object itself
        self._handed: dict[str, RunConfig] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._store_problem: tuple[str, float] = ("", 0.0)  # the store error last logged by a poll, and when
        self._store_failing = False  # a poll failed since the last success (its end is logged once)
        with _LIVE_LOCK:
            self.recovered = self.store.recover(set(_LIVE_RUNS))
        self._workers = [
            threading.Thread(target=self._work, name=f"ttexplore-job-{index}", daemon=True) for index in range(self.max_workers)
        ]
        for worker in self._workers:
            worker.start()

    # ---------------------------------------------------------------- API
    def submit(self, config: RunConfig, sweep: Optional[str] = None, name: str = "", tags: Sequence[str] = (),
               notes: str = "", allow_duplicate: bool = False) -> str:
        """Queue a run of ``config`` once (see :meth:`queue`); returns its run id at once."""
        return self.queue(config, sweep, name, tags, notes, allow_duplicate).run_id

    def queue(self, config: RunConfig, sweep: Optional[str] = None, name: str = "", tags: Sequence[str] = (),
              notes: str = "", allow_duplicate: bool = False) -> Submission:
        """Queue a run of ``config`` (a :class:`RunConfig` is validated when it is made), at once. The worker
        that takes the run gets this object, not its JSON to parse again (the store keeps the JSON: a run
        taken after a restart, or by another process, is read from it once).

        A submission happens once: the same config, name, tags and sweep queued or running since
        less than :data:`~ttexplore.runs.store.DUPLICATE_WINDOW_S` seconds (a double click) is not
        queued again; its :class:`~ttexplore.runs.store.Submission` comes back with ``duplicate``
        set, so a page can say "already queued" and offer to queue another anyway
        (``allow_duplicate=True``). One store transaction: race-free across threads and processes.

        Raises:
            ConfigError: for an invalid config, or a ``ResourceError`` (field ``memory``) for a run
                over the memory budget (nothing is queued).
            RuntimeError: after :meth:`shutdown`.
        """
        from ttexplore.runs.resources import check_run_memory

        if self._closed:
            raise RuntimeError("the job manager is shut down; start a new one")
        if not isinstance(config, RunConfig):
            raise TypeError(f"submit takes a RunConfig, not {type(config).__name__}: build one with RunConfig.from_dict")
        check_run_memory(config)
        submission = self.store.queue_run(config, sweep=sweep, queue="app", name=name, tags=tags, notes=notes,
                                          once_within_s=None if allow_duplicate else DUPLICATE_WINDOW_S)
        if not submission.duplicate:
            with self._lock:
                self._handed[submission.run_id] = config
        self._wake.set()
        return submission

    def resume(self, run_id: str) -> str:
        """Queue an interrupted (or cancelled, or failed) run again; it continues from its last
        checkpoint with the same id, its history continuing. Returns the run id.

        Raises:
            ResumeError: when the run does not exist or is not resumable.
        """
        from ttexplore.runs.lifecycle import ResumeError, check_resumable

        check_resumable(self.store, run_id)
        if not self.store.requeue(run_id, queue="app"):
            raise ResumeError(f"run {run_id} changed while resuming it; look at it again")
        self._wake.set()
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
                with _WARM_LOCK:
                    import torch
                    import torch.nn.functional as F

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
        self._warm_thread = thread
        return thread

    def cancel(self, run_id: str) -> bool:
        """Stop a run: a queued one never starts, a running one stops before its next batch
        (also when another process runs it).

        Returns:
            True when the run was queued or running.
        """
        with self._lock:
            job = self._jobs.get(run_id)
        if job is not None and job.status == "running":
            job.stop.cancel.set()
            return True
        return self.store.cancel_queued(run_id) or self.store.request_cancel(run_id)

    def status(self, run_id: str) -> Optional[str]:
        """The run's status as the store has it."""
        run = self.store.get_run(run_id)
        return run["status"] if run else None

    def active(self) -> list[str]:
        """Ids of runs running in this process, oldest first."""
        with self._lock:
            return [run_id for run_id, job in self._jobs.items() if job.status == "running"]

    def starting(self) -> list[str]:
        """Ids of runs running in this process that have not reported a metric yet, oldest first.

        A page follows these more often than the others, so a new run's first point shows at once.
        """
        with self._lock:
            return [run_id for run_id, job in self._jobs.items() if job.status == "running" and job.last_event is None]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{run_id: {status, last_event, error, label}}`` for every run this manager has run."""
        with self._lock:
            return {
                run_id: {"status": job.status, "last_event": job.last_event, "error": job.error, "label": job.config.describe()}
                for run_id, job in self._jobs.items()
            }

    def wait(self, run_id: str, timeout: Optional[float] = None) -> Optional[str]:
        """Block until the run ends (or ``timeout`` passes); returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                job = self._jobs.get(run_id)
            if job is not None:
                job.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if job.done.is_set():
                    return self.status(run_id)
            status = self.status(run_id)
            if status is None or status in FINAL_STATUSES or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(0.05)

    def shutdown(self, cancel_running: bool = True, timeout: float = 10.0) -> None:
        """Stop taking work; interrupt the runs running here (``interrupted``, resumable) unless
        ``cancel_running`` is False; join the workers. Queued runs stay queued in the store."""
        self._closed = True
        self._wake.set()
        if cancel_running:
            with self._lock:
                for job in self._jobs.values():
                    if job.status == "running":
                        job.stop.interrupt.set()
        for worker in self._workers:
            worker.join(timeout)
        warming = self._warm_thread
        if warming is not None:  # a warm-up never outlives its manager (it holds the process's warm-up lock)
            warming.join(timeout)

    # ---------------------------------------------------------------- worker
    def _config_of(self, run_id: str) -> RunConfig:
        """The config of a run a worker took: the object submitted here, else (a run queued by another
        process, or before a restart, or resumed) read once from the store. Configs handed here whose
        runs another process took are let go once the store says they left the queue."""
        with self._lock:
            config = self._handed.pop(run_id, None)
            waiting = list(self._handed) if len(self._handed) > _HANDED_CHECK else []
        for other in waiting:
            if (self.store.get_run(other) or {}).get("status") != "queued":
                with self._lock:
                    self._handed.pop(other, None)
        return config if config is not None else RunConfig.from_dict(self.store.get_run(run_id)["config"])

    def _claim(self) -> Optional[str]:
        """The next queued run, or ``None``. A store problem is logged once, not at every poll of every
        worker: again only when its message changes or after :data:`_QUIET_S` seconds; its end once."""
        try:
            run_id = self.store.claim_next("app")
        except StoreError as error:
            if error.reason == "changed":  # the file went mid-call; the next poll uses the new one
                return None
            with self._lock:
                now = time.monotonic()
                new = str(error) != self._store_problem[0] or now - self._store_problem[1] > _QUIET_S
                if new:
                    self._store_problem, self._store_failing = (str(error), now), True
            if new:
                log.error("could not take a run from the store (the workers keep trying, quietly): %s", error)
            return None
        if self._store_failing:
            with self._lock:
                recovered, self._store_failing = self._store_failing, False
            if recovered:
                log.warning("the run store works again; taking queued runs")
        return run_id

    def _work(self) -> None:
        while not self._closed:
            self._warm.wait(timeout=120)
            run_id = self._claim()
            if run_id is None:
                self._wake.clear()
                run_id = self._claim()  # a submit between the first try and the clear is not missed
            if run_id is None:
                self._wake.wait(self.poll_s)
                continue
            if self._closed:  # claimed while shutting down: leave it for the next manager
                self.store.requeue_claimed(run_id)
                return
            try:
                self._run(run_id)
            except Exception:  # noqa: BLE001 - the worker thread must survive anything
                log.exception("run %s failed outside the training loop", run_id)

    def _run(self, run_id: str) -> None:
        import torch

        from ttexplore.runs.lifecycle import StopFlags, execute

        job = JobState(run_id, self._config_of(run_id), StopFlags.new(self.store, run_id))
        with self._lock:
            self._jobs[run_id] = job
        with _LIVE_LOCK:
            _LIVE_RUNS.add(run_id)
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)

        def on_event(event: dict[str, Any]) -> None:
            job.last_event = event

        try:
            execute(self.store, run_id, stop=job.stop, data_dir=self.data_dir, on_event=on_event,
                    fit_function=self._fit, claimed=True, config=job.config)
        finally:
            final = self.store.get_run(run_id) or {}
            with self._lock:
                job.status = final.get("status", "failed") if final.get("status") not in ACTIVE_STATUSES else "failed"
                job.error = final.get("error")
            with _LIVE_LOCK:
                _LIVE_RUNS.discard(run_id)
            job.done.set()
