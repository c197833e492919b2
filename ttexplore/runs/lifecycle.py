"""One run's life, the same whoever starts it (CLI, the app's job manager, a sweep, Ray).

    queued -> running -> (checkpoint after every epoch) -> completed | cancelled | failed | diverged | interrupted

:func:`execute` runs a run recorded in a :class:`~ttexplore.runs.store.RunStore`:
it marks it running, continues from its checkpoint when it has one (its history
continues: events of a half-done epoch are dropped and that epoch is redone),
writes every metric event, writes a checkpoint after every epoch (weights,
optimizer, batch-order RNG state, epoch, and the ranks a rank schedule left; atomically, under the store's
artifacts; the run's ``epochs_done`` advances only once that file is safely
there, so a resume says what it will really do), and ends it through :func:`record_outcome`, the one function that
turns a training result into a final status and saved weights. A sweep's Ray
tasks, which cannot reach the store, return their result and the driver calls
:func:`record_outcome` too.

Stops: a cancel (the user's Stop) ends the run ``cancelled``; an interrupt
(Ctrl-C, SIGTERM, a server or sweep shutting down) ends it ``interrupted``; both
before the next batch, keeping the last checkpoint, so ``resume`` continues it.
An exception escaping the training loop (KeyboardInterrupt while loading data,
say) marks the run ``interrupted`` before it propagates.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ttexplore.runs.config import RunConfig
from ttexplore.runs.corestats import record_spectra
from ttexplore.runs.fit import FitResult, TrainingState, fit
from ttexplore.nn.weightfile import write_payload
from ttexplore.runs.models import save_model
from ttexplore.runs.store import RESUMABLE_STATUSES, RunStore

__all__ = ["StopFlags", "execute", "record_outcome", "load_checkpoint", "save_checkpoint", "CHECKPOINT_FORMAT",
           "ResumeError", "check_resumable", "resume_point"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ttexplore.checkpoint/1"

#: Statuses whose final model is saved as the run's weights (a cancelled run keeps what it learnt).
_SAVED_STATUSES = ("completed", "cancelled", "interrupted")


class ResumeError(ValueError):
    """A run that cannot be resumed; the message says why and what to do instead."""


@dataclass
class StopFlags:
    """Why a run should stop before its next batch: ``cancel`` (the user's Stop) or ``interrupt``
    (a shutdown). ``store``/``run_id``, when given, also let another process cancel the run
    through :meth:`RunStore.request_cancel` (checked at most every ``poll_s`` seconds)."""

    cancel: threading.Event
    interrupt: threading.Event
    store: Optional[RunStore] = None
    run_id: Optional[str] = None
    poll_s: float = 1.0
    _next_poll: float = 0.0
    _warned: bool = False

    @classmethod
    def new(cls, store: Optional[RunStore] = None, run_id: Optional[str] = None) -> "StopFlags":
        return cls(threading.Event(), threading.Event(), store, run_id)

    def is_set(self) -> bool:
        """True when the run should stop (the training loop asks before every batch)."""
        if self.cancel.is_set() or self.interrupt.is_set():
            return True
        if self.store is not None and self.run_id is not None and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.poll_s
            try:
                if self.store.cancel_requested(self.run_id):
                    self.cancel.set()
            except Exception as error:  # noqa: BLE001 - a store hiccup must not stop training
                if not self._warned:  # once per run, not every second while the store is away
                    self._warned = True
                    log.warning("could not read the cancel request of run %s (said once): %s", self.run_id, error)
        return self.cancel.is_set()


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, run_id: str, config: RunConfig, state: TrainingState) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file, fsync-ed, then a rename): a kill or a
    full disk mid-write leaves the previous checkpoint whole and no temporary file behind.

    Raises:
        WriteError: (an ``OSError``) naming the file, and for a full disk the bytes needed and free.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "config": config.to_dict(),
        "config_key": config.key(),
        "epochs_done": state.epochs_done,
        "global_step": state.global_step,
        "elapsed_s": state.elapsed_s,
        "model": state.model_state,
        "optimizer": state.optimizer_state,
        "order_rng": state.order_rng_state,
        "validation": state.validation,  # the best epoch and its weights, when the run holds a validation set out
    }
    if state.layer_ranks:  # after a rounding: the ranks the rounded cores have
        payload["layer_ranks"] = {name: list(ranks) for name, ranks in state.layer_ranks.items()}
    return write_payload(payload, path)


def load_checkpoint(path: Path, config: RunConfig) -> Optional[TrainingState]:
    """The training state in ``path`` (``None`` when there is no file), checked against ``config``.

    Raises:
        ResumeError: when the file is unreadable or belongs to another configuration.
    """
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ResumeError(f"the checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                          "delete it to restart the run from epoch 0") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(f"{path} is not a ttexplore checkpoint; delete it to restart the run from epoch 0")
    # the key written beside the config; a checkpoint older than it is read through its config
    written = payload.get("config_key") or RunConfig.from_dict(payload["config"]).key()
    if written != config.key():
        raise ResumeError(f"the checkpoint {path} was written for another configuration; delete it to restart the run")
    ranks = payload.get("layer_ranks") or {}
    if not isinstance(ranks, dict) or not all(isinstance(value, (list, tuple)) for value in ranks.values()):
        raise ResumeError(f"the checkpoint {path} has unreadable layer ranks; delete it to restart the run from epoch 0")
    return TrainingState(int(payload["epochs_done"]), int(payload["global_step"]), float(payload["elapsed_s"]),
                         payload["model"], payload["optimizer"], payload["order_rng"],
                         {str(name): [int(rank) for rank in value] for name, value in ranks.items()}, payload.get("validation"))


def resume_point(store: RunStore, run: dict[str, Any]) -> str:
    """What resuming ``run`` will really do, as a phrase: ``"from its checkpoint after epoch 3 of 10"``,
    or ``"from epoch 0 of 10: it has no checkpoint"`` (e.g. its first one could not be written).

    Reads only the checkpoint's header numbers (the tensors stay memory-mapped in the file).
    """
    epochs = run["config"].get("epochs") if isinstance(run.get("config"), dict) else None
    of = f" of {epochs}" if epochs is not None else ""
    path = store.checkpoint_path_for(run["id"])
    if not path.is_file():
        return f"from epoch 0{of}: it has no checkpoint"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        done = int(payload["epochs_done"])
    except Exception:  # noqa: BLE001 - the resume itself reports an unreadable checkpoint with the fix
        return f"from its checkpoint {path} (unreadable: the resume will say why)"
    return f"from its checkpoint after epoch {done}{of}"


def check_resumable(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run, when it can be resumed (interrupted, cancelled or failed, with epochs left).

    Raises:
        ResumeError: naming the run and why not.
    """
    run = store.get_run(run_id)
    if run is None:
        raise ResumeError(f"no run {run_id!r} in {store.path}: see 'python -m ttexplore runs list'")
    if run["status"] not in RESUMABLE_STATUSES:
        raise ResumeError(f"run {run_id} is {run['status']}: only {', '.join(RESUMABLE_STATUSES)} runs can be resumed")
    return run


# ---------------------------------------------------------------- the lifecycle
def record_outcome(store: RunStore, run_id: str, config: RunConfig, result: FitResult, interrupted: bool = False) -> str:
    """End a run in the store: its final status, error and weights; returns the status.

    A ``cancelled`` result becomes ``interrupted`` when ``interrupted`` (the stop was a
    shutdown, not the user's choice). The final model of a completed, cancelled or
    interrupted run is saved as the run's weights (and its TT layers' spectra beside them,
    :func:`~ttexplore.runs.corestats.record_spectra`), and, with a validation split, the best epoch's
    beside them (:meth:`RunStore.best_weights_path_for`); a completed run's checkpoint is removed.
    """
    status = "interrupted" if interrupted and result.status == "cancelled" else result.status
    weights = None
    if result.model is not None and status in _SAVED_STATUSES:
        weights = str(save_model(result.model, config, store.weights_path_for(run_id)))
        try:  # the trained TT layers' spectra, kept beside the weights (the run page reads them)
            record_spectra(store, run_id, config, result.model, f"{'final' if status == 'completed' else 'last'} weights")
        except Exception:  # noqa: BLE001 - a view of the weights: the run's end never fails on it
            log.exception("could not record the spectra of run %s", run_id)
        if result.best_model_state is not None:
            best = copy.deepcopy(result.model).cpu()
            best.load_state_dict(result.best_model_state)
            save_model(best, config, store.best_weights_path_for(run_id))
    error = result.error
    if status == "interrupted" and error is None:
        error = "stopped by a shutdown or interrupt; resume it to continue from its last checkpoint"
    store.finish(run_id, status, error=error, weights_path=weights)
    if status == "completed":
        store.checkpoint_path_for(run_id).unlink(missing_ok=True)
    if result.traceback:
        log.error("run %s failed:\n%s", run_id, result.traceback)
    return status


def execute(
    store: RunStore,
    run_id: str,
    stop: Optional[StopFlags] = None,
    data_dir: Optional[str] = None,
    dataset: Any = None,
    on_event: Optional[Callable[[dict[str, Any]], None]] = None,
    fit_function: Optional[Callable[..., FitResult]] = None,
    claimed: bool = False,
    config: Optional[RunConfig] = None,
) -> FitResult:
    """Run the recorded run ``run_id`` to its end (see the module docstring).

    Args:
        stop: cancel/interrupt flags (default: fresh ones, cancellable from another process).
        dataset: the loaded data, or ``None`` to load ``config.dataset`` from ``data_dir``.
        on_event: also called with every metric event (a progress bar, a live view).
        fit_function: the training function (tests swap it); default :func:`~ttexplore.runs.fit.fit`.
        claimed: the caller already marked the run running (:meth:`RunStore.claim_next`).
        config: the run's config as the caller holds it (the job manager hands over the object it was
            given); used when its key is the stored one, else (and without it) read from the store,
            which stays the source of truth.

    Returns:
        The :class:`~ttexplore.runs.fit.FitResult` (its events are this session's only).
    """
    run = store.get_run(run_id)
    if run is None:
        raise ResumeError(f"no run {run_id!r} in {store.path}")
    if config is None or config.key() != run["config_key"]:
        config = RunConfig.from_dict(run["config"])
    stop = stop or StopFlags.new(store, run_id)
    if stop.store is None:
        stop.store, stop.run_id = store, run_id
    checkpoint_path = store.checkpoint_path_for(run_id)
    if not claimed:
        store.mark_running(run_id)
    try:
        state = load_checkpoint(checkpoint_path, config)
        # events past the checkpoint (a half-done epoch; everything, without one) are redone
        store.truncate_metrics(run_id, after_epoch=state.epochs_done if state is not None else -1)

        def record_event(event: dict[str, Any]) -> None:
            store.add_event(run_id, event, count_epoch=False)  # the epoch counts once its checkpoint is safe
            if on_event is not None:
                on_event(event)

        def write_checkpoint(epoch_state: TrainingState) -> None:
            save_checkpoint(checkpoint_path, run_id, config, epoch_state)
            store.set_epochs_done(run_id, epoch_state.epochs_done)

        result = (fit_function or fit)(config, dataset, callback=record_event, cancel=stop, data_dir=data_dir,
                                       resume=state, on_epoch_end=write_checkpoint)
    except BaseException as error:
        reason = ("interrupted before it ended; resume it to continue from its last checkpoint"
                  if isinstance(error, (KeyboardInterrupt, SystemExit)) else f"{type(error).__name__}: {error}")
        status = "interrupted" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "failed"
        try:
            store.finish(run_id, status, error=reason)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.exception("could not record the end of run %s", run_id)
        raise
    record_outcome(store, run_id, config, result, interrupted=stop.interrupt.is_set())
    return result
