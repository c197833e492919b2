"""A validation split held out of the training images, and early stopping on it with the best epoch kept.

:func:`hold_out` splits the training images (after ``train_limit``) into the images a run trains on and
a validation set: stratified by class, drawn from the run's seed (an independent stream, so the
split is the same on every resume and every device), at least one image per class.
:class:`BestEpoch` follows the validation loss at each epoch end: the best epoch is the one with the
lowest validation loss (the earliest on a tie), its weights are kept, and with a patience ``P`` the
run stops once ``P`` epochs in a row brought no lower loss. Its state travels in the run's checkpoint,
so a resumed run continues the same bookkeeping bit for bit.

Why the loss: it is continuous, where the accuracy of a few hundred images moves in steps and ties
often. The test set never chooses anything here; the test accuracy at the best epoch is recorded
beside it (what a run reports as its result when it has a validation split).

Pure Python at import (the run store reads :func:`best_of`); torch and numpy are imported inside
:func:`hold_out` only.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ["hold_out", "class_counts", "BestEpoch", "best_of", "VALIDATION_STREAM"]

#: The second word of the split's seed sequence ``(seed, VALIDATION_STREAM)``: the split's draw is
#: independent of the weights' (``seed``) and the batch order's (``seed + 1``) generators.
VALIDATION_STREAM = 0x7A11D


def class_counts(total: int, val_split: float) -> tuple[int, int]:
    """How a class of ``total`` training images is split: ``(trained on, held out)``. The held-out share
    is ``val_split`` rounded to the nearest image, at least one and never the class's last image."""
    if total < 2:
        return total, 0
    held = min(total - 1, max(1, math.floor(total * val_split + 0.5)))
    return total - held, held


def hold_out(images: Any, labels: Any, val_split: float, seed: int) -> tuple[Any, Any, Any, Any]:
    """Split ``(images, labels)`` into ``(train_images, train_labels, val_images, val_labels)``.

    Per class, :func:`class_counts` images are held out, chosen by a permutation drawn from
    ``numpy.random.default_rng((seed, VALIDATION_STREAM))`` class by class in label order; both parts
    keep the original order of the images (so the batch order of a run depends on its seed only).

    Args:
        images: ``(n, ...)`` tensor; labels: ``(n,)`` integer tensor (on the CPU).
        val_split: in ``(0, 0.5]`` (the config checked it).

    Raises:
        ValueError: when a class present in the images has a single one (nothing to hold out without
            taking it from training), naming the class and the fix.

    Complexity: ``O(n log n)`` (one permutation per class and a sort).
    """
    import numpy as np
    import torch

    label_values = labels.cpu().numpy()
    generator = np.random.default_rng((int(seed), VALIDATION_STREAM))
    held: list[Any] = []
    for label in np.unique(label_values):
        members = np.flatnonzero(label_values == label)
        _, count = class_counts(len(members), val_split)
        if count == 0:
            raise ValueError(f"val_split: class {int(label)} has a single training image among the {len(label_values):,} "
                             "used, so none can be held out for validation: use more training images (train_limit)")
        held.append(members[generator.permutation(len(members))[:count]])
    val_mask = np.zeros(len(label_values), dtype=bool)
    val_mask[np.concatenate(held)] = True
    val_index = torch.from_numpy(np.flatnonzero(val_mask))
    train_index = torch.from_numpy(np.flatnonzero(~val_mask))
    return images[train_index], labels[train_index], images[val_index], labels[val_index]


def best_of(epochs: Iterable[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The best of end-of-epoch records (``{"epoch", "val_loss", ...}``, in order): the lowest ``val_loss``,
    the earliest on a tie; records without a validation loss are skipped; ``None`` when none has one."""
    best = None
    for record in epochs:
        loss = record.get("val_loss")
        if loss is not None and loss == loss and (best is None or loss < best["val_loss"]):
            best = record
    return best


class BestEpoch:
    """The best epoch so far by validation loss, its weights, and early stopping.

    Args:
        patience: stop after this many epochs in a row without a lower validation loss; ``None``: never.

    Attributes:
        epoch, val_loss, val_accuracy, test_accuracy: of the best epoch (``None`` before the first).
        model_state: the best epoch's ``state_dict``, copied to the CPU.
        last_epoch: the last epoch observed.
    """

    def __init__(self, patience: Optional[int] = None) -> None:
        self.patience = patience
        self.epoch: Optional[int] = None
        self.val_loss: Optional[float] = None
        self.val_accuracy: Optional[float] = None
        self.test_accuracy: Optional[float] = None
        self.model_state: Optional[dict[str, Any]] = None
        self.last_epoch: Optional[int] = None

    def observe(self, epoch: int, val_loss: float, val_accuracy: float, test_accuracy: Optional[float],
                model_state: Callable[[], dict[str, Any]]) -> bool:
        """Record epoch ``epoch``'s validation metrics; keep ``model_state()`` (called only then) when
        the loss is lower than every earlier one. Returns whether it was."""
        self.last_epoch = epoch
        if self.val_loss is not None and not val_loss < self.val_loss:
            return False
        self.epoch, self.val_loss, self.val_accuracy, self.test_accuracy = epoch, val_loss, val_accuracy, test_accuracy
        self.model_state = {name: tensor.detach().cpu().clone() for name, tensor in model_state().items()}
        return True

    @property
    def epochs_without_improvement(self) -> int:
        """Epochs observed since the best one (0 right after an improvement)."""
        return 0 if self.epoch is None or self.last_epoch is None else self.last_epoch - self.epoch

    @property
    def should_stop(self) -> bool:
        """True when the patience ran out: ``patience`` epochs in a row brought no lower validation loss."""
        return self.patience is not None and self.epoch is not None and self.epochs_without_improvement >= self.patience

    def summary(self, epochs: int) -> dict[str, Any]:
        """``{"best_val_epoch", "val_loss", "val_accuracy", "test_accuracy_at_best_val", "stopped_early_at"}``
        (``stopped_early_at``: the last epoch trained when that is before the planned ``epochs``)."""
        stopped = self.last_epoch if self.should_stop and self.last_epoch is not None and self.last_epoch < epochs else None
        return {"best_val_epoch": self.epoch, "val_loss": self.val_loss, "val_accuracy": self.val_accuracy,
                "test_accuracy_at_best_val": self.test_accuracy, "stopped_early_at": stopped}

    def restart(self) -> None:
        """Forget the best epoch (the network changed: a rank schedule rounded it); the next epoch observed
        becomes the best, and the patience counts from it."""
        self.epoch = self.val_loss = self.val_accuracy = self.test_accuracy = self.model_state = None

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the bookkeeping (for the checkpoint; tensors on the CPU)."""
        return {"patience": self.patience, "epoch": self.epoch, "val_loss": self.val_loss,
                "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy,
                "last_epoch": self.last_epoch, "model_state": self.model_state}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` (the patience stays the config's)."""
        self.epoch, self.val_loss = state.get("epoch"), state.get("val_loss")
        self.val_accuracy, self.test_accuracy = state.get("val_accuracy"), state.get("test_accuracy")
        self.last_epoch, self.model_state = state.get("last_epoch"), state.get("model_state")
