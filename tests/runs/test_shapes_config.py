"""Shapes (parsing, factorizations, suggestions, padding, ranks) and RunConfig validation."""

from __future__ import annotations

import json

import pytest

from ttexplore.tt import ttmath
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.tt.shapes import (
    balanced_factorization,
    check_factorizable,
    factorizations,
    next_factorizable,
    padded_image_side,
    parse_modes,
    ranks_for_compression,
    suggest_shapes,
)


@pytest.mark.parametrize(
    "text, modes",
    [("4x8x8x4", (4, 8, 8, 4)), ("4×8×8×4", (4, 8, 8, 4)), (" 4 * 7, 4 x7 ", (4, 7, 4, 7)), ("2^10", (2,) * 10),
     ("2^2x8x8x2^2", (2, 2, 8, 8, 2, 2)), ([32, 32], (32, 32))],
)
def test_parse_modes(text, modes):
    assert parse_modes(text) == modes


@pytest.mark.parametrize("text, message", [("", "empty"), ("4x8xa", "'a' is not a whole number"), ("4x0", "below 1")])
def test_parse_modes_errors_name_the_field(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_modes(text, "in_modes")
    assert "in_modes" in str(error.value)


def test_factorizations_are_complete_and_ordered():
    found = factorizations(12, 2)
    assert sorted(found) == [(2, 6), (3, 4), (4, 3), (6, 2)]
    assert all(ttmath.prod(modes) == 1024 for modes in factorizations(1024, 4))
    assert len(factorizations(1024, 4)) == 84  # compositions of 10 into 4 positive parts
    assert factorizations(1024, 4, limit=1) == [(4, 4, 8, 8)]  # the most balanced: largest mode 8


def test_balanced_factorization_is_the_papers_order():
    assert balanced_factorization(1024, 4) == (4, 8, 8, 4)
    assert ttmath.prod(balanced_factorization(784, 4)) == 784


def test_suggestions_are_sorted_by_weights_and_valid():
    suggestions = suggest_shapes(1024, 1024, d=4, rank=2, top=20)
    params = [s.params for s in suggestions]
    assert params == sorted(params)
    for suggestion in suggestions:
        assert ttmath.prod(suggestion.in_modes) == 1024 and ttmath.prod(suggestion.out_modes) == 1024
        assert suggestion.params == ttmath.param_count(suggestion.in_modes, suggestion.out_modes, 2)
    # the paper's 4x8x8x4 is not the cheapest 4-core shape at rank 2, but it is in the list of all shapes
    everything = suggest_shapes(1024, 1024, d=4, rank=2, top=10_000)
    assert any(s.in_modes == (4, 8, 8, 4) and s.out_modes == (4, 8, 8, 4) for s in everything)


def test_prime_feature_count_gets_a_message_not_1xN():
    with pytest.raises(ValueError, match=r"787 is prime.*pad it to \d+"):
        suggest_shapes(787, 10)
    with pytest.raises(ValueError, match="is prime"):
        check_factorizable(1031, "in_features", 4)
    padded = next_factorizable(1031, 4)
    assert padded > 1031 and factorizations(padded, 4)


def test_padding_and_rank_budget():
    assert padded_image_side(28) == 32 and padded_image_side(32) == 32 and padded_image_side(8) == 8
    rank = ranks_for_compression((4, 8, 8, 4), (4, 8, 8, 4), 1e-3)
    assert ttmath.compression((4, 8, 8, 4), (4, 8, 8, 4), rank) <= 1e-3 < ttmath.compression((4, 8, 8, 4), (4, 8, 8, 4), rank + 1)
    with pytest.raises(ValueError, match="must be in"):
        ranks_for_compression((4, 4), (4, 4), 2.0)


def test_default_config_is_the_papers_net():
    config = RunConfig()
    config.validate()
    assert config.in_features == 1024 and config.hidden_features == 1024
    assert config.layer_params() == 2176
    assert config.describe() == "TT 4x8x8x4 r=4 on mnist5k"


def test_config_round_trips_through_json_and_key_ignores_label():
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "2x4x8", "ranks": "2,3"})
    again = RunConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert config.key() == config.replace(label="hello").key()
    assert config.key() != config.replace(seed=1).key()


@pytest.mark.parametrize(
    "values, field, fix",
    [
        ({"in_modes": "4x8x8"}, "in_modes", "try"),
        ({"in_modes": "4x8x8x4", "out_modes": "4x8x8"}, "out_modes", "same number"),
        ({"ranks": "two"}, "ranks", "write one number"),
        ({"ranks": [1, 2]}, "ranks", "give 3 numbers"),
        ({"dataset": "imagenet"}, "dataset", "choose one of"),
        ({"lr": 0}, "lr", "1e-3"),
        ({"epochs": 0}, "epochs", "between 1"),
        ({"pad_to": 20}, "pad_to", "use 28 or more"),
        ({"optimizer": "lbfgs"}, "optimizer", "adam"),
        ({"batch_size": "many"}, "batch_size", "not a whole number"),
        ({"colour": "red"}, "colour", "unknown setting"),
    ],
)
def test_validation_names_the_field_and_the_fix(values, field, fix):
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict(values)
    assert error.value.field == field
    assert fix in str(error.value)


def test_in_modes_message_suggests_shapes_that_fit():
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict({"in_modes": "4x8x8", "out_modes": "4x8x8"})
    message = str(error.value)
    assert "multiply to 256" in message and "1024 features" in message
    suggested = message.split("try ")[1].split(" or ")
    assert all(ttmath.prod(parse_modes(text)) == 1024 for text in suggested)


def test_for_dataset_defaults():
    digits = RunConfig.for_dataset("digits")
    layer = digits.layers[0]
    assert digits.pad_to is None and ttmath.prod(layer.in_modes) == 64 and layer.out_modes == layer.in_modes
    mnist = RunConfig.for_dataset("mnist5k")
    assert mnist.pad_to == 32 and mnist.layers[0].in_modes == (4, 8, 8, 4)
    dense = RunConfig.for_dataset("mnist5k", layer="dense", hidden=512)
    assert dense.layer_params() == 1024 * 512
    cifar = RunConfig.for_dataset("cifar10", ranks=2)
    assert cifar.in_features == 3072 and ttmath.prod(cifar.layers[0].in_modes) == 3072
