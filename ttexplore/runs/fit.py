"""The training loop: deterministic by seed, cancellable, emitting metric events.

:func:`fit` takes a config, the data, a cancel flag and a callback. It never
prints, sleeps or touches a UI; whoever runs it (the CLI, a job, a sweep) turns
its events into progress bars, database rows or plots.

An event is a plain JSON-ready dict::

    {"kind": "eval" | "epoch", "epoch": 1.25, "step": 80, "steps_per_epoch": 63,
     "train_loss": 0.31, "train_accuracy": 0.91, "test_loss": 0.29,
     "test_accuracy": 0.92, "elapsed_s": 3.4, "layer_params": 2176, "lr": 0.003,
     "cores": [{"layer": 0, "weight": [...], "grad": [...]}]}

A run with a validation split (``val_split``, :mod:`ttexplore.runs.validation`) trains on the rest of its
training images; its ``"epoch"`` events also carry ``val_loss`` and ``val_accuracy``, the best epoch by
validation loss is kept (weights included), and with ``early_stop`` it ends ``completed`` once that many
epochs in a row brought no lower validation loss.

``kind == "epoch"`` marks the end of an epoch (these form the history) and
averages the train metrics over the whole epoch; an ``"eval"`` event within an
epoch averages them over the batches since the previous event. The test
metrics are over the whole test split. A first event at step 0 gives the
untrained network's metrics, so a live plot has a point at once. A run with a
rank schedule (``RunConfig.round_to``) reports each rounding, right after the
epoch it follows, as a ``"round"`` event: the rounded network's metrics (train ones
on up to 1000 training images) and a ``"detail"`` dict saying what changed
(:mod:`ttexplore.runs.schedule`); its ``layer_params`` and those of later events are the
weights in use from then on. ``cores`` (only for a network with TT layers) gives each
TT layer's core norms and their last gradients'
(:func:`~ttexplore.runs.corestats.core_norms`). A run of 0 epochs
(one that only evaluates the weights it starts from, ``init_from``) reports that
point alone, as an ``"epoch"`` event: its history and its final accuracy.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn.device import DeviceUnavailable, resolve_device
from ttexplore.runs.corestats import core_norms, tt_layer_modules
from ttexplore.runs.config import RunConfig
from ttexplore.runs.data import Dataset, load_dataset
from ttexplore.runs.models import build_model, hidden_layer_params, layer_ranks
from ttexplore.runs.resources import eval_batch_size
from ttexplore.runs.rounding import carry_optimizer_state, round_network
from ttexplore.runs.schedule import ROUND_KIND
from ttexplore.runs.validation import BestEpoch, hold_out
from ttexplore.runs.warmstart import apply_init_from

__all__ = ["FitResult", "TrainingState", "fit", "evaluate", "STATUSES", "CancelFlag"]

#: Terminal statuses of a run.
STATUSES = ("completed", "cancelled", "diverged", "failed")

EventCallback = Callable[[dict[str, Any]], None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        status: ``"completed"``, ``"cancelled"``, ``"diverged"`` (non-finite loss)
            or ``"failed"`` (an exception; see ``error``).
        events: every metric event, in order.
        model: the trained network (also when stopped early).
        error: a message for ``diverged`` / ``failed``, else ``None``.
        traceback: the formatted exception for ``failed`` (for logs, not the UI).
        elapsed_s: wall time of the loop.
        extra: ``{"device": "cuda:0"}``, where it trained (when it got that far).
        validation: with a validation split, :meth:`~ttexplore.runs.validation.BestEpoch.summary`
            (the best epoch by validation loss, its validation and test accuracy, where it stopped early).
        best_model_state: the best epoch's ``state_dict`` (with a validation split), on the CPU.
    """

    status: str
    events: list[dict[str, Any]]
    model: Optional[nn.Module]
    error: Optional[str] = None
    traceback: Optional[str] = None
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    validation: Optional[dict[str, Any]] = None
    best_model_state: Optional[dict[str, Any]] = None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The end-of-epoch events."""
        return [event for event in self.events if event["kind"] == "epoch"]

    @property
    def final_test_accuracy(self) -> Optional[float]:
        return self.events[-1]["test_accuracy"] if self.events else None

    @property
    def best_test_accuracy(self) -> Optional[float]:
        """The best test accuracy of the network in use at the end (after its last rounding, if any): selected
        on the test set, so optimistic (prefer ``validation["test_accuracy_at_best_val"]`` when the run has a
        validation split)."""
        last_round = max((index for index, event in enumerate(self.events) if event["kind"] == ROUND_KIND), default=0)
        scored = [event["test_accuracy"] for event in self.events[last_round:] if event["step"] > 0 or event["kind"] == "epoch"]
        return max(scored) if scored else None


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``images``, in batches."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        target = labels[start : start + batch_size]
        total_loss += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(dim=1) == target).sum().item()
    model.train(was_training)
    count = max(images.shape[0], 1)
    return total_loss / count, correct / count


def _optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _eval_steps(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """1-based steps within an epoch after which metrics are reported (always the last)."""
    count = max(1, min(evals_per_epoch, steps_per_epoch))
    return {max(1, round(steps_per_epoch * index / count)) for index in range(1, count + 1)}


@dataclass
class TrainingState:
    """Where a run stands at the end of an epoch: enough to continue it bit for bit.

    Attributes:
        epochs_done: whole epochs trained.
        global_step: optimizer steps taken.
        elapsed_s: training seconds so far (wall time of the loop, summed over resumes).
        model_state: ``model.state_dict()``.
        optimizer_state: ``optimizer.state_dict()``.
        order_rng_state: the batch-order generator's state (``torch.Generator.get_state()``).
        layer_ranks: the ranks of the layers a rank schedule rounded, by child name
            (:func:`~ttexplore.runs.models.layer_ranks`; empty before any rounding): a resume builds them so.
        validation: the best-epoch bookkeeping (:meth:`~ttexplore.runs.validation.BestEpoch.state`), or ``None``.
    """

    epochs_done: int
    global_step: int
    elapsed_s: float
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    order_rng_state: torch.Tensor
    layer_ranks: dict[str, list[int]] = field(default_factory=dict)
    validation: Optional[dict[str, Any]] = None


def _check_resume(config: RunConfig, state: TrainingState) -> None:
    if not 0 <= state.epochs_done <= config.epochs:
        raise ValueError(f"the checkpoint is at epoch {state.epochs_done}, outside this run's 0..{config.epochs} epochs")


class _Stopped(Exception):
    """Ends the loop early with a status (``cancelled``, ``diverged``) and a message."""

    def __init__(self, status: str, message: Optional[str] = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Training:
    """One run's training loop, step by step: the model, optimizer and batch order built from the
    config's seed (or restored from a :class:`TrainingState`), epochs of mini-batches, and the
    metric events (see the module docstring)."""

    def __init__(self, config: RunConfig, dataset: Dataset, emit: EventCallback, elapsed: Callable[[], float],
                 resume: Optional[TrainingState], device: torch.device) -> None:
        self.config, self.emit, self.elapsed, self.device = config, emit, elapsed, device
        self.train_images, self.train_labels = dataset.train_images, dataset.train_labels
        if config.train_limit is not None:
            self.train_images = self.train_images[: config.train_limit]
            self.train_labels = self.train_labels[: config.train_limit]
        self.val_images = self.val_labels = self.best = None
        if config.val_split > 0:  # the same split on every resume: it depends on the seed only
            self.train_images, self.train_labels, self.val_images, self.val_labels = hold_out(
                self.train_images, self.train_labels, config.val_split, config.seed)
            self.val_images, self.val_labels = self.val_images.to(device), self.val_labels.to(device)
            self.best = BestEpoch(config.early_stop)
        self.test_images, self.test_labels = dataset.test_images, dataset.test_labels
        # the whole (small) dataset moves once; batches are then gathered on the device
        self.train_images, self.train_labels, self.test_images, self.test_labels = (
            tensor.to(device) for tensor in (self.train_images, self.train_labels, self.test_images, self.test_labels))
        # weights are drawn on the CPU, so a seed gives the same start on every device; a resume after a
        # rounding builds the rounded layers at their ranks then (its weights come from the checkpoint)
        self.model = build_model(config, generator=torch.Generator().manual_seed(config.seed),
                                 layer_ranks=resume.layer_ranks if resume is not None else None)
        # a run from trained weights starts from them (a resumed one has its own in the checkpoint)
        self.init_errors = apply_init_from(self.model, config) if config.init_from is not None and resume is None else None
        self.model = self.model.to(device)
        self.model.train()
        self.optimizer = _optimizer(config, self.model)
        self.order_generator = torch.Generator().manual_seed(config.seed + 1)
        self.global_step, self.first_epoch = 0, 0
        if resume is not None:
            _check_resume(config, resume)
            self.model.load_state_dict(resume.model_state)
            self.optimizer.load_state_dict(resume.optimizer_state)
            self.order_generator.set_state(resume.order_rng_state)
            self.global_step, self.first_epoch = resume.global_step, resume.epochs_done
            if self.best is not None and resume.validation is not None:
                self.best.restore(resume.validation)
        self.layer_params = hidden_layer_params(self.model)
        self.tt_layers = tt_layer_modules(self.model, config)  # their core norms go with every event
        self.eval_rows = eval_batch_size(config)
        self.count = self.train_images.shape[0]
        self.steps_per_epoch = math.ceil(self.count / config.batch_size)
        self.report_after = _eval_steps(self.steps_per_epoch, config.evals_per_epoch)

    def report(self, kind: str, epoch_index: int, step_in_epoch: int, train_loss: float, train_accuracy: float,
               detail: Optional[dict[str, Any]] = None) -> None:
        """Emit one event: the train metrics given, the test metrics over the whole test split (and ``detail``)."""
        test_loss, test_accuracy = evaluate(self.model, self.test_images, self.test_labels, self.eval_rows)
        validation: dict[str, float] = {}
        if kind == "epoch" and self.best is not None:
            validation["val_loss"], validation["val_accuracy"] = evaluate(self.model, self.val_images, self.val_labels,
                                                                          self.eval_rows)
            self.best.observe(epoch_index + (step_in_epoch > 0), validation["val_loss"], validation["val_accuracy"],
                              test_accuracy, self.model.state_dict)
        event = {
            "kind": kind,
            "epoch": round(epoch_index + step_in_epoch / self.steps_per_epoch, 6),
            "step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "elapsed_s": round(self.elapsed(), 4),
            "layer_params": self.layer_params,
            "lr": self.config.lr,
            **({"cores": core_norms(self.tt_layers)} if self.tt_layers else {}),
            **validation,
        }
        if detail is not None:
            event["detail"] = detail
        self.emit(event)

    def probe(self) -> tuple[float, float]:
        """Loss and accuracy of the network as it is on (up to) the first 1000 training images."""
        probe = slice(0, min(self.count, 1000))
        return evaluate(self.model, self.train_images[probe], self.train_labels[probe], self.eval_rows)

    def report_untrained(self) -> None:
        """The step-0 event: the untrained network on (up to) 1000 training images, so a live plot has a point at once
        (a 0-epoch run's one ``"epoch"`` event)."""
        self.report("eval" if self.config.epochs else "epoch", 0, 0, *self.probe())

    def round_layers(self, epochs_done: int) -> None:
        """After epoch ``epochs_done``: when the schedule rounds there, round every TT layer
        (:func:`~ttexplore.runs.rounding.round_network`), rebuild the optimizer over the new parameters (fresh
        state for the new cores, the old state kept for every parameter left in place) and report the
        rounded network as a ``"round"`` event."""
        step = self.config.round_to.at(epochs_done) if self.config.round_to is not None else None
        if step is None:
            return
        rounding = round_network(self.model, self.config, step)
        if rounding.changed:
            fresh = _optimizer(self.config, self.model)
            carry_optimizer_state(self.optimizer, fresh)
            self.optimizer = fresh
        self.layer_params = hidden_layer_params(self.model)
        self.tt_layers = tt_layer_modules(self.model, self.config)  # a rounded layer may be a new module
        if rounding.changed and self.best is not None:
            self.best.restart()  # the best epoch is one of the network the run ends with (its weights load into it)
        self.report(ROUND_KIND, epochs_done - 1, self.steps_per_epoch, *self.probe(),
                    detail=rounding.detail(self.config.dense_layer_params()))

    def step(self, indices: torch.Tensor, epoch_index: int) -> tuple[float, int, int]:
        """One optimizer step on the batch ``indices``; returns its summed loss, correct count and size.

        Raises:
            _Stopped: ``diverged`` when the loss is not finite (nothing is updated).
        """
        images, labels = self.train_images[indices], self.train_labels[indices]
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise _Stopped("diverged", f"the training loss became {loss.item()} at epoch {epoch_index + 1}, step "
                                       f"{self.global_step + 1}: lower lr (now {self.config.lr:g}), e.g. to {self.config.lr / 10:g}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.global_step += 1
        correct = (logits.detach().argmax(dim=1) == labels).sum().item()
        return loss.item() * labels.shape[0], correct, labels.shape[0]

    def epoch(self, epoch_index: int, cancel: Optional[CancelFlag]) -> None:
        """One pass over the training images in this epoch's order, reporting within and at its end.

        Raises:
            _Stopped: ``cancelled`` when ``cancel`` is set before a batch; ``diverged`` (see :meth:`step`).
        """
        batch_size = self.config.batch_size
        permutation = torch.randperm(self.count, generator=self.order_generator).to(self.device)
        since_report = [0.0, 0, 0]  # loss sum, correct, seen since the last report
        whole_epoch = [0.0, 0, 0]
        for step_in_epoch in range(1, self.steps_per_epoch + 1):
            if cancel is not None and cancel.is_set():
                raise _Stopped("cancelled")
            batch = self.step(permutation[(step_in_epoch - 1) * batch_size : step_in_epoch * batch_size], epoch_index)
            for totals in (since_report, whole_epoch):
                totals[0] += batch[0]
                totals[1] += batch[1]
                totals[2] += batch[2]
            if step_in_epoch == self.steps_per_epoch:
                self.report("epoch", epoch_index, step_in_epoch, whole_epoch[0] / whole_epoch[2], whole_epoch[1] / whole_epoch[2])
            elif step_in_epoch in self.report_after:
                self.report("eval", epoch_index, step_in_epoch, since_report[0] / since_report[2], since_report[1] / since_report[2])
                since_report = [0.0, 0, 0]

    def state(self, epochs_done: int) -> TrainingState:
        """The state after ``epochs_done`` epochs, its tensors on the CPU (a checkpoint written on a GPU loads anywhere)."""
        return TrainingState(epochs_done, self.global_step, self.elapsed(), _on_cpu(self.model.state_dict()),
                             _on_cpu(self.optimizer.state_dict()), self.order_generator.get_state(),
                             layer_ranks(self.model, self.config), self.best.state() if self.best is not None else None)


def _on_cpu(state: Any) -> Any:
    """``state`` (a ``state_dict``: nested dicts and lists of tensors) with every tensor on the CPU;
    CPU tensors are returned as they are."""
    if isinstance(state, torch.Tensor):
        return state if state.device.type == "cpu" else state.cpu()
    if isinstance(state, dict):
        return {key: _on_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_on_cpu(value) for value in state)
    return state


def fit(
    config: RunConfig,
    dataset: Optional[Dataset] = None,
    callback: Optional[EventCallback] = None,
    cancel: Optional[CancelFlag] = None,
    data_dir: Optional[str] = None,
    resume: Optional[TrainingState] = None,
    on_epoch_end: Optional[Callable[[TrainingState], None]] = None,
) -> FitResult:
    """Train the network ``config`` describes and report as it goes.

    Deterministic by ``config.seed`` (bit for bit at a fixed torch thread count):
    weights and batch order come from private generators, so two runs at once in
    two threads do not disturb each other. A run resumed from the
    :class:`TrainingState` of its epoch ``k`` continues exactly as the
    uninterrupted run did after epoch ``k``.

    Args:
        config: the run (validated when it was made); it trains on ``config.device`` (data, model
            and metrics there; a device this machine lacks ends the run ``failed``
            with the fix).
        dataset: the data, or ``None`` to :func:`~ttexplore.runs.data.load_dataset` it.
        callback: called with each metric event (see the module docstring).
        cancel: checked before every batch; when set the run ends as ``"cancelled"``.
        data_dir: folder for datasets that live on disk.
        resume: continue from this state (no step-0 event is emitted again).
        on_epoch_end: called with the state after every epoch (the lifecycle writes a checkpoint).

    With ``config.early_stop`` the loop ends ``completed`` after the epoch that used up the patience
    (its checkpoint written first); ``validation["stopped_early_at"]`` says which.

    Returns:
        A :class:`FitResult`. Exceptions inside the loop become ``status="failed"``;
        a non-finite loss becomes ``status="diverged"`` with a message.

    Complexity: ``epochs * n_train`` forward/backward passes plus
    ``epochs * evals_per_epoch * n_test`` forward passes.
    """
    started = time.perf_counter()
    earlier_s = resume.elapsed_s if resume is not None else 0.0
    events: list[dict[str, Any]] = []
    training: Optional[_Training] = None
    device: Optional[torch.device] = None

    def elapsed() -> float:
        return earlier_s + time.perf_counter() - started

    def emit(event: dict[str, Any]) -> None:
        events.append(event)
        if callback is not None:
            callback(event)

    def result(status: str, error: Optional[str] = None, trace: Optional[str] = None) -> FitResult:
        model = training.model if training is not None else None
        extra: dict[str, Any] = {"device": str(device)} if device is not None else {}
        if training is not None and training.init_errors is not None:
            extra["init_errors"] = training.init_errors
        best = training.best if training is not None else None
        return FitResult(status, events, model, error=error, traceback=trace, elapsed_s=elapsed(), extra=extra,
                         validation=best.summary(config.epochs) if best is not None and best.epoch is not None else None,
                         best_model_state=best.model_state if best is not None else None)

    try:
        device = resolve_device(config.device)
        training = _Training(config, dataset if dataset is not None else load_dataset(config.dataset, data_dir),
                             emit, elapsed, resume, device)
        if resume is None:
            training.report_untrained()
        for epoch_index in range(training.first_epoch, config.epochs):
            if training.best is not None and training.best.should_stop:
                break  # early stopping: also for a run resumed from the checkpoint of the epoch it stopped at
            training.epoch(epoch_index, cancel)
            training.round_layers(epoch_index + 1)
            if on_epoch_end is not None:
                on_epoch_end(training.state(epoch_index + 1))
        return result("completed")
    except _Stopped as stop:
        return result(stop.status, stop.message)
    except DeviceUnavailable as error:
        return result("failed", f"device {config.device}: {error}")
    except Exception as error:  # noqa: BLE001 - a failed run is reported, never raised into a UI
        return result("failed", f"{type(error).__name__}: {error}", traceback.format_exc())
