"""Every flag of every command is checked like train's: a bad value is one line naming the flag and
the fix, exit code 2, no traceback, before any data loads or any benchmark runs. One table per command."""

from __future__ import annotations

import pytest
import torch

from ttexplore.cli import main


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if a command loads a dataset or measures a benchmark case (errors must come first)."""
    import ttexplore.runs.data as data
    from ttexplore.experiments.bench import harness

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started working before its flags were checked")

    monkeypatch.setattr(data, "load_dataset", forbidden)
    monkeypatch.setattr(harness, "measure", forbidden)


@pytest.fixture(autouse=True)
def a_file(tmp_path):
    """``{tmp}/a-file``: a file where a folder is asked for."""
    (tmp_path / "a-file").write_text("not a folder")


@pytest.fixture
def weights(tmp_path):
    """Weight files of a 64 -> 16 nn.Linear (digits' 8x8 images): good, with a NaN, with an inf."""
    good = torch.randn(16, 64)
    files = {}
    for name, poison in (("good", None), ("nan", float("nan")), ("inf", float("inf"))):
        weight = good.clone()
        if poison is not None:
            weight[2, 3] = poison
        files[name] = tmp_path / f"{name}.pt"
        torch.save({"weight": weight, "bias": torch.zeros(16)}, files[name])
    return files


def check_one_line(code: int, err: str, flag: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert flag in lines[0], (flag, lines[0])


BENCH = [  # (arguments, the flag the message must name)
    ("--threads 0", "--threads"), ("--threads -1", "--threads"), ("--threads 1000000", "--threads"),
    ("--retries -5", "--retries"), ("--retries 1000000", "--retries"), ("--repeats 0", "--repeats"),
    ("--repeats -1", "--repeats"), ("--repeats 100000000", "--repeats"), ("--cases ,,,", "--cases"),
    ("--modes ,,", "--modes"), ("--modes bogus", "--modes"), ("--max-wait -1", "--max-wait"),
    ("--max-wait nan", "--max-wait"), ("--max-wait inf", "--max-wait"), ("--device tpu", "device"),
    ("--calibrate --threads 0", "--threads"), ("--out {tmp}/a-file", "--out"),
]


@pytest.mark.parametrize("arguments, flag", BENCH)
def test_bench_flags(arguments, flag, no_work, tmp_path, capsys):
    check_one_line(main(["bench", *arguments.format(tmp=tmp_path).split()]), capsys.readouterr().err, flag)


def test_bench_empty_cases_is_refused(no_work, capsys):
    check_one_line(main(["bench", "--cases", ""]), capsys.readouterr().err, "--cases")


COMPRESS = [
    ("--ranks 0", "--ranks"), ("--ranks -1", "--ranks"), ("--ranks ,,", "--ranks"), ("--ranks 1.5", "--ranks"),
    ("--rel-error 0", "--rel-error"), ("--rel-error -0.5", "--rel-error"), ("--rel-error nan", "--rel-error"),
    ("--rel-error 2", "--rel-error"), ("--finetune-epochs -1", "--finetune-epochs"),
    ("--scratch-epochs 0", "--scratch-epochs"), ("--lr nan", "--lr"), ("--lr -1", "--lr"),
    ("--batch-size 0", "--batch-size"), ("--seed -1", "--seed"), ("--evals-per-epoch 0", "--evals-per-epoch"),
    ("--threads 0", "--threads"), ("--threads -1", "--threads"), ("--in-modes 2**6", "--in-modes"),
    ("--in-modes 4xx16", "--in-modes"), ("--in-modes 4x4x4 --out-modes 0x16", "--out-modes"),
    ("--pad-to abc", "--pad-to"), ("--json {tmp}/no-folder/x.json", "--json"), ("--out {tmp}/a-file", "--out"),
]


@pytest.mark.parametrize("arguments, flag", COMPRESS)
def test_compress_flags(arguments, flag, weights, no_work, tmp_path, capsys):
    argv = ["compress", "--weights", str(weights["good"]), "--dataset", "digits", *arguments.format(tmp=tmp_path).split()]
    check_one_line(main(argv), capsys.readouterr().err, flag)


@pytest.mark.parametrize("poison", ["nan", "inf"])
def test_compress_refuses_non_finite_weights_in_one_line(poison, weights, no_work, capsys):
    code = main(["compress", "--weights", str(weights[poison]), "--dataset", "digits"])
    err = capsys.readouterr().err
    check_one_line(code, err, "--weights")
    assert ("1 NaN" if poison == "nan" else "1 infinite") in err and str(weights[poison]) in err


@pytest.mark.parametrize("content, flag, words", [
    (b"", "--weights", "is empty"), (b"text, not weights\n", "--weights", "not a weights file written by torch.save"),
    ("two", "--weight-key", "give the one to use as --weight-key"), ("named", "--weight-key", "give one of them as --weight-key"),
])
def test_compress_refuses_an_unreadable_or_ambiguous_file_in_its_own_words(content, flag, words, no_work, tmp_path, capsys):
    path = tmp_path / "w.pt"
    extra = []
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save({"a.weight": torch.zeros(16, 64), "b.weight": torch.zeros(8, 64)}, path)
        extra = ["--weight-key", "c.weight"] if content == "named" else []
    code = main(["compress", "--weights", str(path), "--dataset", "digits", *extra])
    err = capsys.readouterr().err
    check_one_line(code, err, flag)
    assert words in err and "weight_key" not in err and "\x1b" not in err


SWEEP = [
    ("--shapes ,,,", "--shapes"), ("--shapes 2**6", "--shapes"), ("--ranks 0", "--ranks"), ("--ranks ''", "--ranks"),
    ("--ranks 1-1000000", "--ranks"), ("--ranks 1-100000000000000000000", "--ranks"),
    ("--ranks 100000000000000000000", "--ranks"), ("--seeds -1", "--seeds"), ("--seeds 0-100000", "--seeds"),
    ("--seeds 0-200 --ranks 1-20", "--ranks"), ("--epochs 0", "--epochs"), ("--epochs -1", "--epochs"),
    ("--lr nan", "--lr"), ("--lr -1", "--lr"), ("--batch-size 0", "--batch-size"), ("--train-limit 0", "--train-limit"),
    ("--workers 0", "--workers"), ("--workers 1000", "--workers"), ("--name ''", "--name"),
    ("--dataset ,,", "--dataset"), ("--dataset nope", "--dataset"), ("--out {tmp}/a-file", "--out"),
    ("--address auto", "--address"),
]


@pytest.mark.parametrize("arguments, flag", SWEEP)
def test_sweep_flags(arguments, flag, no_work, tmp_path, capsys):
    import shlex

    argv = ["sweep", "--shapes", "4x4x4", "--dataset", "digits", "--out", str(tmp_path / "out"),
            *shlex.split(arguments.format(tmp=tmp_path))]
    check_one_line(main(argv), capsys.readouterr().err, flag)


def test_sweep_refuses_a_name_with_control_characters(no_work, tmp_path, capsys):
    code = main(["sweep", "--shapes", "4x4x4", "--dataset", "digits", "--name", "a\nb\x1b[2J", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    check_one_line(code, err, "--name")
    assert "\x1b" not in err


SUGGEST = [
    ("0 10", "in_features"), ("-1 10", "in_features"), ("10 0", "out_features"), ("1099511627777 10", "in_features"),
    ("64 64 --d 0", " d "), ("64 64 --d 100", " d "), ("64 64 --rank 0", "rank"), ("64 64 --top 0", "top"),
    ("64 64 --top -1", "top"), ("abc 10", "in_features"),
]


@pytest.mark.parametrize("arguments, flag", SUGGEST)
def test_suggest_arguments(arguments, flag, capsys):
    check_one_line(main(["suggest", *arguments.split()]), capsys.readouterr().err, flag)


COUNT_AND_TRAIN = [
    ("--hidden-layer tt:4x8->", "nothing after '->'"), ("--hidden-layer tt:2**10", "--hidden-layer"),
    ("--in-modes 2**10", "--in-modes"), ("--in-modes 4xx8x8x4", "--in-modes"), ("--in-modes 4x8x8x4,", "--in-modes"),
    ("--ranks 0", "--ranks"), ("--layer bogus", "--layer"), ("--dataset bogus", "--dataset"),
]


@pytest.mark.parametrize("command", ["count", "train"])
@pytest.mark.parametrize("arguments, flag", COUNT_AND_TRAIN)
def test_count_and_train_flags(command, arguments, flag, no_work, capsys):
    check_one_line(main([command, *arguments.split()]), capsys.readouterr().err, flag)


TRAIN_ONLY = [
    ("--name " + "x" * 300, "--name"), ("--notes " + "x" * 20_000, "--notes"), ("--tag " + "t" * 60, "--tag"),
    ("--threads 0", "--threads"), ("--json {tmp}", "--json"), ("--save-model {tmp}", "--save-model"),
    ("--preset nope", "--preset"), ("--device tpu", "--device"),
]


@pytest.mark.parametrize("arguments, flag", TRAIN_ONLY)
def test_train_only_flags(arguments, flag, no_work, tmp_path, capsys):
    check_one_line(main(["train", *arguments.format(tmp=tmp_path).split(), "--record"]), capsys.readouterr().err, flag)


def test_train_refuses_an_empty_tag(no_work, capsys):
    check_one_line(main(["train", "--tag", "", "--record"]), capsys.readouterr().err, "--tag")


@pytest.fixture
def recorded(tmp_path):
    from ttexplore.runs.config import RunConfig
    from ttexplore.runs.store import RunStore

    store = RunStore()
    return store.create_run(RunConfig.for_dataset("digits", in_modes="4x4x4", out_modes="4x4x4", ranks=2),
                            status="completed", name="named", tags=["kept"], notes="some notes")


RUNS = [
    ("list --status bogus", "--status"), ("show nope", "'nope'"), ("resume nope", "'nope'"), ("delete nope", "'nope'"),
    ("export --out x.txt", "--out"), ("export --out {tmp}/no-folder/x.zip", "--out"),
    ("edit {run} --tag ''", "--tag"), ("edit {run} --name " + "x" * 300, "--name"), ("edit nope --name x", "'nope'"),
    ("--db {tmp} list", "--db"),
]


@pytest.mark.parametrize("arguments, flag", RUNS)
def test_runs_arguments(arguments, flag, recorded, tmp_path, capsys):
    import shlex

    check_one_line(main(["runs", *shlex.split(arguments.format(tmp=tmp_path, run=recorded))]), capsys.readouterr().err,
                   flag)
