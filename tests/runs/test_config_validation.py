"""RunConfig refuses every bad value with one ConfigError naming the field, in the library,
the app and the CLI alike; nothing is truncated, nothing crashes later."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ttexplore.tt.shapes import MAX_FEATURES
from ttexplore.runs.config import MAX_SEED, ConfigError, RunConfig
from ttexplore.runs.kinds import TTLayerSpec


def refused(field: str, **values) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict({"dataset": "mnist5k", **values})
    assert error.value.field == field, str(error.value)
    assert "Traceback" not in str(error.value) and "\n" not in str(error.value)
    return error.value


@pytest.mark.parametrize("field", ["lr", "weight_decay", "momentum"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "inf", -1.0])
def test_rates_must_be_finite_and_in_range(field, value):
    refused(field, **{field: value})


@pytest.mark.parametrize("field", ["lr", "weight_decay", "momentum", "epochs", "batch_size", "seed", "evals_per_epoch"])
def test_booleans_are_not_numbers(field):
    assert "True" in str(refused(field, **{field: True}))


@pytest.mark.parametrize("field, value", [("epochs", 4.5), ("batch_size", "64.5"), ("seed", "abc"), ("train_limit", 10.25),
                                          ("matrix_rank", 2.5), ("hidden", "12x")])
def test_whole_numbers_are_not_truncated(field, value):
    assert "whole number" in str(refused(field, **{field: value}))


def test_integral_floats_are_whole_numbers():
    config = RunConfig.from_dict({"dataset": "mnist5k", "epochs": 3.0, "batch_size": "32", "seed": 7.0})
    assert (config.epochs, config.batch_size, config.seed) == (3, 32, 7)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**63, 2**64, 10**30])
def test_seed_fits_torch_and_seed_plus_one(seed):
    message = str(refused("seed", seed=seed))
    assert str(MAX_SEED) in message


def test_the_largest_seed_is_accepted_and_torch_takes_it_and_the_next():
    import torch

    config = RunConfig.from_dict({"dataset": "mnist5k", "seed": MAX_SEED})
    torch.Generator().manual_seed(config.seed)
    torch.Generator().manual_seed(config.seed + 1)  # fit() seeds the batch order with seed + 1


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("epochs", 10_001), ("batch_size", 0), ("batch_size", 10**9), ("evals_per_epoch", 0),
     ("evals_per_epoch", 101), ("train_limit", 0), ("train_limit", 4001), ("weight_decay", 2.0), ("lr", 11.0),
     ("momentum", 1.0), ("matrix_rank", 0)],
)
def test_ranges_have_upper_and_lower_bounds(field, value):
    refused(field, **{field: value})


@pytest.mark.parametrize(
    "field, values",
    [
        ("in_modes", {"in_modes": [4.5, 8, 8, 4]}),
        ("in_modes", {"in_modes": [True, 1024]}),
        ("in_modes", {"in_modes": "4x8x8x0"}),
        ("out_modes", {"out_modes": "100000000000000000000000"}),
        ("out_modes", {"out_modes": "2^64"}),
        ("out_modes", {"out_modes": "1000000x1000000x1000000x1000000"}),
        ("out_modes", {"out_modes": [2] * 13}),
        ("hidden", {"layer": "dense", "in_modes": None, "out_modes": None, "hidden": 10**24}),
        ("ranks", {"ranks": [2.5, 2, 2]}),
        ("ranks", {"ranks": [True, 2, 2]}),
        ("ranks", {"ranks": "9" * 50}),
        ("ranks", {"ranks": [2] * 1000}),
        ("pad_to", {"pad_to": "abc"}),
        ("pad_to", {"pad_to": 32.5}),
        ("pad_to", {"pad_to": 10**6}),
        ("label", {"label": "x" * 10_000}),
        ("dataset", {"dataset": ["mnist"]}),
    ],
)
def test_absurd_shapes_and_values_are_refused(field, values):
    refused(field, **values)


def test_a_24_digit_shape_is_refused_with_the_limit():
    message = str(refused("out_modes", out_modes="4x8x8x100000000000000000000000"))
    assert "2^40" in message and f"{MAX_FEATURES:,}" in message


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError) as error:
        RunConfig(epochs=4.5)
    assert error.value.field == "epochs"
    with pytest.raises(ConfigError) as error:  # the mode-count message must not factor 1e32
        RunConfig(layers=(TTLayerSpec((4, 8, 8, 4), (10**8, 10**8, 10**8, 10**8)),))
    assert error.value.field == "layers[0].out_modes" and "2^40" in str(error.value)
    with pytest.raises(ConfigError) as error:
        RunConfig(weight_decay=math.nan)
    assert error.value.field == "weight_decay"


@pytest.mark.parametrize("pad_to, field", [("abc", "pad_to"), ("4.5", "pad_to"), (1000, "pad_to"), (True, "pad_to")])
def test_for_dataset_reads_pad_to_before_using_it(pad_to, field):
    with pytest.raises(ConfigError) as error:
        RunConfig.for_dataset("mnist5k", pad_to=pad_to)
    assert error.value.field == field


def test_pad_to_none_spellings_still_mean_no_padding():
    for value in ("none", "None", "", 0, None):
        assert RunConfig.for_dataset("digits", pad_to=value).pad_to is None


HUGE_INT = 10**5000  # beyond Python's 4300-digit limit for str(): any message printing it would raise


@pytest.mark.parametrize("values", [{"epochs": HUGE_INT}, {"seed": HUGE_INT}, {"in_modes": [HUGE_INT]}, {"ranks": [HUGE_INT, 2, 2]},
                                    {"lr": HUGE_INT}, {"hidden": HUGE_INT, "layer": "dense", "in_modes": None, "out_modes": None}])
def test_ints_too_long_to_print_are_refused_with_a_message(values):
    field = next(iter(values))
    assert "too large" in str(refused(field, **values))


@pytest.mark.parametrize("field", ["epochs", "seed", "out_modes", "ranks"])
def test_ints_too_long_to_print_in_a_direct_construction(field):
    value = (HUGE_INT,) if field == "out_modes" else HUGE_INT
    with pytest.raises(ConfigError, match="far too large") as error:
        if field in ("epochs", "seed"):
            RunConfig(**{field: value})
        else:
            RunConfig(layers=(replace(TTLayerSpec(), **{field: value}),))
    assert error.value.field == (field if field in ("epochs", "seed") else f"layers[0].{field}")
