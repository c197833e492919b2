"""One RunConfig: its network is always a list of layers, stored runs keep their keys, it is validated
when it is made, and the job manager hands the object itself to the worker.

Every key below was computed by the code before ``RunConfig.layers`` existed (the one-layer fields and
``hidden_layers``), from the same input, and is written here as that code printed it."""

from __future__ import annotations

import json

import pytest

from ttexplore.cli import build_parser
from ttexplore.cli.common import config_from_args
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.jobs import JobManager
from ttexplore.runs.kinds import DenseLayerSpec, MatrixRankLayerSpec, TTLayerSpec
from ttexplore.runs.store import RunStore

#: ``RunConfig.from_dict(values).key()`` before ``layers``: values in the forms runs were described in then.
OLD_KEYS = [
    ({}, "5e23df29cf89b17b"),
    ({"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": [2, 3], "epochs": 2},
     "54c4c944b57f9ba8"),
    ({"ranks": None}, "f2c6585369ec65e1"),
    ({"pad_to": None, "in_modes": "4x7x4x7", "out_modes": "5x5x8x4", "ranks": 3}, "7ffa49954e022bab"),
    ({"hidden": 1024, "matrix_rank": 8}, "5c2e485c7ea66aac"),  # fields a TT layer does not use, kept
    ({"in_modes": "32x32", "out_modes": "32x32", "ranks": 5000}, "718f356843334ea6"),  # clipped when built, kept as asked
    ({"layer": "dense", "in_modes": None, "out_modes": None}, "ce35ac0693b80c1a"),
    ({"layer": "dense", "in_modes": None, "out_modes": None, "hidden": 256}, "f251be87366af028"),
    ({"layer": "dense"}, "80b782c12113a791"),  # a dense twin: in_modes and out_modes kept from its TT layer
    ({"layer": "dense", "in_modes": None, "out_modes": None, "ranks": None, "hidden": 1024}, "054efb2eeea88fc5"),
    ({"layer": "matrix_rank", "in_modes": None, "out_modes": None, "hidden": 512, "matrix_rank": 3}, "2ca339c59c792c5b"),
    ({"layer": "matrix_rank", "in_modes": None, "out_modes": None, "hidden": 64, "matrix_rank": 100, "ranks": None},
     "78029b2c73431c6f"),
    ({"hidden_layers": ["tt:4x8x8x4->4x4x4x4:2", "dense:32"]}, "0839473cc235c288"),
    ({"hidden_layers": ["dense:64", "matrix_rank:16:2", "tt:4x4->2x2:2"]}, "7ddce8d6fd7976d3"),
    ({"hidden_layers": ["tt:4^5->8x16x16x16x8:4", "tt:8x16x16x16x8->4^5:4"], "epochs": 3}, "4f011a37279a12a3"),
    ({"hidden_layers": ["tt:4x8x8x4:2,4,2"]}, "1a04587bebe717a8"),
    ({"hidden_layers": ["dense:300"]}, "97ab83e7fd730445"),
    ({"init_from": {"path": "/tmp/w.pt", "sha256": "ab" * 32, "run": "r1"}, "epochs": 0}, "7e06bc87e30382a6"),
    ({"device": "cpu", "label": "hello", "seed": 3, "lr": 0.01, "optimizer": "sgd"}, "10b069701ffab8c5"),
    ({"dataset": "fashion-mnist", "train_limit": 1000, "batch_size": 32, "init": "he", "strategy": "ltr"},
     "525ea00d2524a9ff"),
]

#: Configs as the run store holds them, written by the code before ``layers`` (``to_json``), and their keys.
STORED = [
    ('{"batch_size": 64, "dataset": "mnist5k", "device": "auto", "epochs": 10, "evals_per_epoch": 4, "hidden": null, '
     '"in_modes": [4, 8, 8, 4], "init": "glorot", "label": "", "layer": "dense", "lr": 0.003, "matrix_rank": 4, '
     '"momentum": 0.9, "optimizer": "adam", "out_modes": [4, 8, 8, 4], "pad_to": 32, "ranks": 4, "seed": 0, '
     '"strategy": "auto", "train_limit": null, "weight_decay": 0.0}', "80b782c12113a791"),
    ('{"batch_size": 64, "dataset": "mnist5k", "device": "auto", "epochs": 10, "evals_per_epoch": 4, "hidden": 64, '
     '"hidden_layers": [{"kind": "dense", "width": 64}, {"kind": "matrix_rank", "matrix_rank": 2, "width": 16}, '
     '{"in_modes": [4, 4], "kind": "tt", "out_modes": [2, 2], "ranks": 2}], "in_modes": null, "init": "glorot", '
     '"label": "", "layer": "dense", "lr": 0.003, "matrix_rank": 4, "momentum": 0.9, "optimizer": "adam", '
     '"out_modes": null, "pad_to": 32, "ranks": 4, "seed": 0, "strategy": "auto", "train_limit": null, '
     '"weight_decay": 0.0}', "7ddce8d6fd7976d3"),
    ('{"batch_size": 64, "dataset": "mnist5k", "device": "auto", "epochs": 0, "evals_per_epoch": 4, "hidden": null, '
     '"in_modes": [4, 8, 8, 4], "init": "glorot", "init_from": {"method": "tt-svd", "path": "/tmp/w.pt", "run": "r1", '
     '"sha256": "abababababababababababababababababababababababababababababababab"}, "label": "", "layer": "tt", '
     '"lr": 0.003, "matrix_rank": 4, "momentum": 0.9, "optimizer": "adam", "out_modes": [4, 8, 8, 4], "pad_to": 32, '
     '"ranks": 4, "seed": 0, "strategy": "auto", "train_limit": null, "weight_decay": 0.0}', "7e06bc87e30382a6"),
    ('{"batch_size": 64, "dataset": "mnist5k", "device": "auto", "epochs": 10, "evals_per_epoch": 4, "hidden": 1024, '
     '"in_modes": [4, 8, 8, 4], "init": "glorot", "label": "", "layer": "tt", "lr": 0.003, "matrix_rank": 8, '
     '"momentum": 0.9, "optimizer": "adam", "out_modes": [4, 8, 8, 4], "pad_to": 32, "ranks": 4, "seed": 0, '
     '"strategy": "auto", "train_limit": null, "weight_decay": 0.0}', "5c2e485c7ea66aac"),
]

#: ``train`` flags of a TT network and the key the config they described had (the CLI keeps its flags and,
#: for these, its keys).
CLI_KEYS = [
    ([], "049c85f94796837e"),
    (["--hidden-layer", "tt:4x8x8x4:2", "--hidden-layer", "dense:64"], "a4a3e3349ef43288"),
    (["--dataset", "digits", "--in-modes", "4x4x4", "--ranks", "2"], "49bb9d95ef64c67f"),
]


def cli_config(flags: list[str]) -> RunConfig:
    args = build_parser("train").parse_args(["train", *flags])
    args.check_memory = False
    return config_from_args(args)


@pytest.mark.parametrize("values, key", OLD_KEYS)
def test_every_older_form_keeps_its_key_and_reads_into_layers(values, key):
    config = RunConfig.from_dict(values)
    assert config.key() == key
    assert config.layers and all(hasattr(layer, "build") for layer in config.layers)
    again = RunConfig.from_dict(json.loads(config.to_json()))  # stored in the one form, read back
    assert again == config and again.key() == key
    assert set(config.to_dict()) & {"layer", "in_modes", "out_modes", "ranks", "hidden", "matrix_rank", "hidden_layers"} == set()


@pytest.mark.parametrize("text, key", STORED)
def test_stored_runs_keep_their_keys(text, key):
    assert RunConfig.from_dict(json.loads(text)).key() == key


@pytest.mark.parametrize("flags, key", CLI_KEYS)
def test_the_cli_flags_describe_the_same_runs_as_before(flags, key):
    assert cli_config(flags).key() == key


@pytest.mark.parametrize("flags, layer", [
    (["--layer", "dense", "--hidden", "256"], DenseLayerSpec(256)),
    (["--hidden-layer", "dense:256"], DenseLayerSpec(256)),
    (["--layer", "dense"], DenseLayerSpec(1024)),
    (["--layer", "matrix_rank", "--hidden", "128", "--matrix-rank", "3"], MatrixRankLayerSpec(128, 3)),
])
def test_a_new_config_is_its_layers_alone(flags, layer):
    # the flags a layer does not use (a dense layer's --ranks 4) are not kept: a new run is its layers,
    # and the same network typed either way is one run
    config = cli_config(flags)
    assert config.layers == (layer,) and config.legacy_fields == ()
    assert config.key() == RunConfig.for_dataset("mnist5k", layers=[layer], epochs=5).key()


def test_the_same_network_from_layers_has_the_key_sweeps_gave_it():
    # a sweep's cells, made from kinds now, match the cells a sweep recorded before (resume finds them)
    assert RunConfig.for_dataset("mnist5k", layers=[DenseLayerSpec(1024)], epochs=2).key() == "51fc271ceee8ae58"
    assert RunConfig.for_dataset("mnist5k", layers=[MatrixRankLayerSpec(1024, 4)], epochs=2).key() == "b9d6752be4ca0d12"
    tt = RunConfig.for_dataset("mnist5k", layers=[TTLayerSpec((4, 8, 8, 4), (4, 8, 8, 4), 2)], epochs=2)
    assert tt.key() == "1bcd89a3eee704bf"
    assert RunConfig.for_dataset("digits").key() == "f0ede008d932c8de"


def test_a_config_is_one_form_validated_when_made():
    config = RunConfig(layers=("tt:4x8x8x4:2", {"kind": "dense", "width": 32}))
    assert config.layers == (TTLayerSpec(ranks=2), DenseLayerSpec(32)) and config.layer_widths == [1024, 1024, 32, 10]
    for bad, field in [({"layers": ("dense:0",)}, "layers[0].width"), ({"layers": ()}, "layers"),
                       ({"layers": ("tt:4x8x8x4:2", "tt:4x4:2")}, "layers[1].in_modes"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ConfigError) as caught:
            RunConfig(**bad)
        assert caught.value.field == field
    with pytest.raises(ConfigError) as caught:  # one form: the one-layer fields only describe a one-layer net
        config.replace(ranks=3)
    assert caught.value.field == "ranks" and "change layers" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"layers": ["dense:32"], "hidden": 32})
    assert caught.value.field == "hidden"
    assert RunConfig().replace(ranks=2).layers == (TTLayerSpec(ranks=2),)  # a one-layer net changes as it always did


def test_the_worker_runs_the_object_it_was_handed(tmp_path):
    seen = []

    def fake_fit(config, dataset=None, **kwargs):
        seen.append(config)
        raise RuntimeError("stop here")  # the run fails; what it ran with is what matters

    store = RunStore(tmp_path / "runs.db")
    manager = JobManager(store, max_workers=1, fit_function=fake_fit, poll_s=0.05)
    try:
        config = RunConfig.for_dataset("digits", epochs=1, ranks=2)
        run_id = manager.submit(config)
        assert manager.wait(run_id, timeout=60)
    finally:
        manager.shutdown()
    assert seen and seen[0] is config  # not a copy parsed from the store
    # a run queued by another process (or before a restart) is read from the store, once
    other = store.create_run(config.replace(seed=1))
    later = JobManager(store, max_workers=1, fit_function=fake_fit, poll_s=0.05)
    try:
        assert later.wait(other, timeout=60)
    finally:
        later.shutdown()
    assert seen[-1] == config.replace(seed=1) and seen[-1] is not config
