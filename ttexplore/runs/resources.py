"""How much memory a run needs, how much it may use, and a check before anything is allocated.

Pure Python (no torch): the CLI, the Explore page, the job manager and the sweep
ask it before they build a model or load data, so a 40 GB dense layer is a
one-line refusal instead of a frozen machine.

* :func:`estimate_run_memory` prices a :class:`~ttexplore.runs.config.RunConfig`
  part by part (weights, gradients, optimizer state, head, activations, the input
  and evaluation batches, the dataset), all float32.
* :func:`~ttexplore.tt.memory.memory_budget` (re-exported here) is what a run may
  use: ``TTEXPLORE_MEMORY_LIMIT`` when set (``8G``, ``512M``, ``1.5GiB`` or bytes), else
  half of the memory the machine (or its container) has available now.
* :func:`check_run_memory` raises :class:`ResourceError` (a
  :class:`~ttexplore.runs.config.ConfigError` with field ``"memory"``) when the
  estimate exceeds the budget, with the numbers and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from ttexplore.tt.memory import (DEFAULT_SHARE, ENV_LIMIT, ResourceError, available_memory,
                                   budget_description, check_bytes, human_bytes, memory_budget, parse_size)
from ttexplore.tt import ttmath
from ttexplore.runs.config import RunConfig
from ttexplore.runs.kinds import LayerMemory
from ttexplore.runs.data_info import dataset_info

__all__ = [
    "ResourceError",
    "MemoryEstimate",
    "estimate_run_memory",
    "memory_budget",
    "budget_description",
    "available_memory",
    "parse_size",
    "check_run_memory",
    "memory_fix",
    "check_bytes",
    "human_bytes",
    "ENV_LIMIT",
    "DEFAULT_SHARE",
    "EVAL_BATCH",
    "EVAL_ACTIVATIONS",
    "eval_batch_size",
]

#: Rows per forward in :func:`ttexplore.runs.fit.evaluate`.
EVAL_BATCH = 1000

#: An evaluation batch holds at most this many activations of the widest layer (64 MiB of
#: float32): 1000 rows of a 1024-wide net, 64 rows of a 262 144-wide one.
EVAL_ACTIVATIONS = 1 << 24

FLOAT_BYTES = 4  # every tensor of a run is float32
LABEL_BYTES = 8  # labels are int64

# ---------------------------------------------------------------- the estimate
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run holds at its peak, part by part (all float32).

    Attributes:
        hidden_weights: the hidden layer's weights and bias.
        head: the classifier ``Linear(hidden, classes)``.
        gradients: one gradient per weight (hidden and head).
        optimizer_state: Adam's two moments, SGD's momentum buffer (none without momentum).
        activations: what one training step's forward keeps for the backward and the
            backward's own tensors, at the batch size (for a TT layer from the cost
            model's ``saved_bytes`` and ``peak_bytes`` of the strategy it will use).
        input_batch: the batch of images gathered for a step (and its padded copy).
        evaluation: one forward of :data:`EVAL_BATCH` images without gradients.
        dataset: the train and test images (float32) and labels held in memory.
        optimizer_scratch: the temporaries Adam's step allocates per parameter tensor
            (``sqrt`` of its second moment, then its quotient): twice the largest
            tensor; none for SGD, which updates in place.
    """

    hidden_weights: int
    head: int
    gradients: int
    optimizer_state: int
    activations: int
    input_batch: int
    evaluation: int
    dataset: int
    optimizer_scratch: int = 0

    @property
    def static(self) -> int:
        """What lives through the whole run: weights, gradients, optimizer state, data."""
        return self.hidden_weights + self.head + self.gradients + self.optimizer_state + self.dataset

    @property
    def step(self) -> int:
        """What one training step adds: its input batch and its activations."""
        return self.input_batch + self.activations

    @property
    def total(self) -> int:
        """The peak: what lives through the run plus the largest of a training step, the optimizer's
        step and an evaluation (they never overlap: :func:`~ttexplore.runs.fit.fit` runs them in turn)."""
        return self.static + max(self.step, self.optimizer_scratch, self.evaluation)

    def parts(self) -> dict[str, int]:
        """``{part: bytes}`` in field order, for tables and messages."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def describe(self, largest: int = 3) -> str:
        """``"about 3.9 GiB (hidden weights 3.9 GiB, gradients ..., ...)"``: the total and its ``largest`` parts."""
        parts = sorted(self.parts().items(), key=lambda item: -item[1])[:largest]
        listed = ", ".join(f"{name.replace('_', ' ')} {human_bytes(size)}" for name, size in parts if size)
        return f"about {human_bytes(self.total)} ({listed})"


def eval_batch_size(config: RunConfig) -> int:
    """Rows per forward when :func:`~ttexplore.runs.fit.fit` evaluates: :data:`EVAL_BATCH`, fewer for a
    wide net, so a batch's widest activations stay within :data:`EVAL_ACTIVATIONS` floats."""
    return max(1, min(EVAL_BATCH, EVAL_ACTIVATIONS // max(config.layer_widths)))


def _layer_memories(config: RunConfig, rows: int, training: bool) -> list[LayerMemory]:
    """What each hidden layer holds at ``rows`` examples (its kind prices it: weights, largest tensor,
    the forward's work beyond its output), training (a layer after the first also computes its input's
    gradient) or evaluating."""
    shapes = config.layer_shapes
    return [layer.memory(shapes[index], rows, training, input_grad=training and index > 0, strategy=config.strategy)
            for index, layer in enumerate(config.layers)]


def estimate_run_memory(config: RunConfig) -> MemoryEstimate:
    """The memory a run of ``config`` needs, part by part (see :class:`MemoryEstimate`).

    An estimate, not a measurement: allocator slack, torch's own buffers and the
    temporary arrays of loading a dataset come on top (the default budget leaves
    half of the available memory for them). The 1024x1024 dense layer's weights
    are priced at exactly their 4 MiB. Several hidden layers add up; an evaluation
    holds one layer's input and output at a time.

    Complexity: integer arithmetic, plus for each TT layer two cost-model calls
    (cached; the same ones its forward makes).
    """
    info = dataset_info(config.dataset)
    n, classes, batch = config.in_features, info.classes, config.batch_size
    widths, layers = config.layer_widths, config.layers
    raw = info.features
    padded = config.pad_to is not None and config.pad_to != info.side
    step_layers = _layer_memories(config, batch, True)
    hidden = sum(layer.weights for layer in step_layers)
    head = config.hidden_features * classes + classes
    params = hidden + head
    if config.optimizer == "adam":
        state = 2 * params
    else:
        state = params if config.momentum > 0 else 0
    # A training step: the gathered images (and their padded copy, which the first hidden layer keeps
    # for its weight gradient), then per row and hidden layer: its output, the ReLU output (kept by
    # the next layer) and their two gradients (a max pool has no ReLU: its output and gradient), plus
    # logits, log-softmax and the logits' gradient. A convolution's outputs are C x H x W values a row.
    input_batch = batch * (raw + (n if padded else 0))
    activations = sum(layer.work_bytes for layer in step_layers)
    outputs = sum((4 if layer.relu_after else 2) * widths[index + 1] for index, layer in enumerate(layers))
    activations += FLOAT_BYTES * batch * (outputs + 3 * classes)
    # An evaluation: a slice of the stored images (a view), padded, forward only, one layer at a time.
    train_count = config.train_limit or info.train_size
    rows = min(eval_batch_size(config), max(info.test_size, train_count))
    eval_layer = max(layer.work_bytes for layer in _layer_memories(config, rows, False))
    widest = max((widths[index] if index else 0) + 2 * widths[index + 1] for index in range(len(layers)))
    evaluation = eval_layer + FLOAT_BYTES * rows * ((n if padded else 0) + widest + 2 * classes)
    images = info.train_size + info.test_size
    dataset = images * (raw * FLOAT_BYTES + LABEL_BYTES)
    largest = max([config.hidden_features * classes] + [layer.largest_tensor for layer in step_layers])
    scratch = 2 * largest if config.optimizer == "adam" else 0
    return MemoryEstimate(
        hidden_weights=hidden * FLOAT_BYTES,
        head=head * FLOAT_BYTES,
        gradients=params * FLOAT_BYTES,
        optimizer_state=state * FLOAT_BYTES,
        activations=activations,
        input_batch=input_batch * FLOAT_BYTES,
        evaluation=evaluation,
        dataset=dataset,
        optimizer_scratch=scratch * FLOAT_BYTES,
    )


# ---------------------------------------------------------------- the checks
def check_run_memory(config: RunConfig, budget: Optional[int] = None,
                     estimate: Optional[MemoryEstimate] = None) -> MemoryEstimate:
    """The run's :class:`MemoryEstimate`, or a :class:`ResourceError` when it exceeds ``budget``.

    Args:
        budget: bytes; ``None`` reads :func:`memory_budget` (``TTEXPLORE_MEMORY_LIMIT`` or half the available memory).
        estimate: a precomputed :func:`estimate_run_memory` of ``config``.

    Raises:
        ResourceError: with the estimate, the budget, where the budget comes from and the fix.
    """
    estimate = estimate or estimate_run_memory(config)
    explicit = budget is not None
    budget = memory_budget() if budget is None else int(budget)
    if estimate.total <= budget:
        return estimate
    source = f"{human_bytes(budget)}" if explicit else budget_description(budget)
    raise ResourceError(f"this run needs {estimate.describe()} of memory, more than the budget of {source}: "
                        f"{memory_fix(config, estimate)}, or raise {ENV_LIMIT} (e.g. {ENV_LIMIT}=16G) if the machine has the room")


def memory_fix(config: RunConfig, estimate: Optional[MemoryEstimate] = None) -> str:
    """The change that shrinks the largest part of the run's memory (a phrase for messages)."""
    estimate = estimate or estimate_run_memory(config)
    width = f"{max(config.layer_widths[1:-1]):,} units wide"
    ranks = " or lower the ranks" if any(layer.ranks_used(shape) for layer, shape in zip(config.layers, config.layer_shapes)) else ""
    weights = estimate.hidden_weights + estimate.gradients + estimate.optimizer_state
    largest = max(("weights", weights), ("head", estimate.head), ("step", estimate.step),
                  ("evaluation", estimate.evaluation), ("dataset", estimate.dataset), key=lambda item: item[1])[0]
    if largest == "dataset":
        return f"the {config.dataset} images alone need {human_bytes(estimate.dataset)}: use a smaller dataset"
    if largest == "evaluation":
        return (f"evaluating {eval_batch_size(config)} images at a time alone needs {human_bytes(estimate.evaluation)}: choose smaller "
                f"out_modes (the hidden layer is {width}){ranks}")
    if largest == "step" and any(not layer.flattens for layer in config.layers):
        shapes = config.layer_shapes
        widest = max(shapes[1:], key=lambda shape: ttmath.prod(shape))
        return (f"lower batch_size (now {config.batch_size}), or use fewer channels or pool earlier (the largest "
                f"activation is {'x'.join(map(str, widest))} values an image)")
    if largest == "step":
        return f"lower batch_size (now {config.batch_size}){ranks}, or choose smaller out_modes (the hidden layer is {width})"
    if largest == "head" or estimate.head + config.hidden_features * FLOAT_BYTES > weights / 2:
        return f"choose smaller out_modes: the hidden layer is {width}, and the classifier on top of it grows with it"
    shapes = config.layer_shapes
    heaviest = max(range(len(config.layers)), key=lambda index: config.layers[index].params(shapes[index]))
    return config.layers[heaviest].shrink_hint()
