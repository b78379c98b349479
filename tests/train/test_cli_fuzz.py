"""Hostile command lines for every trainer-side entry point, run in-process.

Whatever the arguments (empty, newlines, -1, 0, 1e30, nan, unicode, a FIFO, a folder or a
missing path where a file goes, repeated options, unknown flags, typos of subcommands):
no traceback, no hang, exit 0/1/2/130, a usage error is one line, and nothing is written
outside the folder the command was given as its output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractors.__main__ import main as extractors_main
from train.__main__ import main as train_main
from train.saliency.__main__ import main as saliency_main
from train.saliency.convert import main as convert_main
from train.saliency.parallel import main as saliency_parallel_main
from train.saliency.synthetic import main as synthetic_main
from train.saliency.verify import main as verify_main
from train.trajectory.parallel import main as parallel_main

NUMBERS = ["-1", "0", "1e30", "nan", "inf", "-0", "0x10", "1_0"]
TEXT = ["", " ", "\n", "a\nb", "ünï©ødé", "\x00", "--", "-", "$(touch PWNED)", "'\""]


@pytest.fixture
def place(in_tmp_path, monkeypatch):
    """A scratch folder as the working directory, with the paths the table refers to."""
    tmp_path = in_tmp_path
    monkeypatch.setattr("train.slurm.shutil.which", lambda name: None)
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    config = {"name": "v", "data": {"path": str(tmp_path / "empty"), "image_size": 16}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


PATHS = [
    "empty",
    "fifo",
    "./fifo",
    "./empty",
    "missing/deeper",
    "binary.yaml",
    "list.yaml",
    "cfg.yaml",
]
VALUES = NUMBERS + TEXT + PATHS

# entry point -> (main, base argv that fails fast or does little, index of the output in it)
DEFAULT_OUT = {"train.parallel": "runs", "train.saliency.parallel": "runs/saliency"}
ENTRY: dict[str, tuple[Callable, list[str], int | None]] = {
    "extractors": (extractors_main, ["list", "i3d", "--preset", "tiny"], None),
    "train": (
        train_main,
        ["--extractor", "i3d", "--data", "empty", "--epochs", "1", "--out", "out", "--lr", "1"],
        7,
    ),
    "train.parallel": (
        parallel_main,
        [
            "--extractors",
            "i3d",
            "--data",
            "empty",
            "--epochs",
            "1",
            "--out",
            "out",
            "--launcher",
            "slurm",
            "--time",
            "10",
        ],
        7,
    ),  # fmt: skip
    "train.saliency": (
        saliency_main,
        ["--config", "cfg.yaml", "--out", "out", "--epochs", "1", "--device", "cpu"],
        3,
    ),
    "train.saliency.parallel": (
        saliency_parallel_main,
        ["--configs", "cfg.yaml", "--out", "out", "--epochs", "1", "--launcher", "slurm"],
        3,
    ),
    "train.saliency.verify": (verify_main, ["empty", "--quiet"], None),
    "train.saliency.convert": (convert_main, ["empty", "out", "--to", "hdf5", "--quiet"], 1),
    "train.saliency.synthetic": (synthetic_main, ["out", "--n", "2", "--seed", "0"], 0),
}


def snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def check(place: Path, capsys, name: str, argv: list[str]) -> None:
    main, base, out_at = ENTRY[name]
    before = snapshot(place)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:
        code = 130
    captured = capsys.readouterr()
    context = f"{name} {argv!r}: {captured.err[-1500:]}"
    assert code in (0, 1, 2, 130), context
    assert "Traceback" not in captured.err, context
    if code == 2:
        assert captured.err.strip() and len(captured.err.strip().splitlines()) == 1, context
    given = argv[out_at] if out_at is not None and out_at < len(argv) else DEFAULT_OUT.get(name)
    out = Path(os.path.abspath(place / given)) if given else None
    for new in snapshot(place) - before:
        inside = out is not None and (new.is_relative_to(out) or out.is_relative_to(new))
        assert inside, f"{new} written outside the output folder (or its parents): {context}"
    assert not list(place.rglob("PWNED")), context


def mutations(base: list[str]) -> list[list[str]]:
    """Each value of the base argv replaced by each hostile value; plus repeats and unknowns."""
    argvs = []
    for i, token in enumerate(base):
        if token.startswith("--") and i > 0:
            continue
        argvs += [[*base[:i], v, *base[i + 1 :]] for v in VALUES]
    argvs += [[*base, base[-2], base[-1]] if base[-2].startswith("--") else [*base, *base[-2:]]]
    argvs += [[*base, "--no-such-flag"], [*base, "--no-such-flag", "x"], []]
    return argvs


CASES = [(name, argv) for name, (_, base, _) in ENTRY.items() for argv in mutations(base)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ENTRY)
def test_hostile_table(place, capsys, name):
    for entry, argv in CASES:
        if entry == name:
            check(place, capsys, name, argv)


@pytest.mark.parametrize(
    "name, argv, expected",
    [
        ("extractors", ["lst"], ["invalid choice: 'lst'", "list"]),
        ("extractors", ["list", "i3"], ["known: i3d, magvit, slowfast, transformer"]),
        ("train", ["--preset", "tinny", "--out", "o"], ["'tinny'", "tiny", "base"]),
        (
            "train.parallel",
            ["--launcher", "slrum", "--epochs", "1"],
            ["'slrum'", "local", "slurm"],
        ),
        ("train.saliency", ["--config", "baseline_tin"], ["baseline, baseline_tiny, entropy_reg"]),
        ("train.saliency.convert", ["a", "b", "--to", "hdf"], ["'hdf'", "images", "hdf5"]),
    ],
)
def test_typos_are_answered_with_the_valid_choices(place, capsys, name, argv, expected):
    main = ENTRY[name][0]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert all(word in err for word in expected), err


def test_four_bad_saliency_fields_are_named_at_once(place, capsys):
    bad = {
        "name": "v",
        "data": {"path": "empty", "image_size": 12, "fit": "stretch"},
        "model": {"width": 0},
        "train": {"lr": -1},
    }
    (place / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert saliency_main(["--config", "bad.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for field in ("data.image_size", "data.fit", "model.width", "train.lr"):
        assert field in err, (field, err)


def test_four_bad_training_fields_are_named_at_once(place, capsys, dataset):
    bad = {"batch_size": 0, "dropout": 2, "precision": "fp8", "nonsense": 1}
    (place / "bad.yaml").write_text(yaml.safe_dump(bad))
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", "o"]
    assert train_main([*argv, "--config", "bad.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for field in ("batch_size", "dropout", "precision", "nonsense"):
        assert field in err, (field, err)
    assert not (place / "o").exists()


FLAGS = sorted({t for _, base, _ in ENTRY.values() for t in base if t.startswith("--")})
TOKENS = st.one_of(
    st.sampled_from(FLAGS + VALUES + ["--no-such-flag", "list", "-h"]),
    st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=6),
)


@pytest.mark.timeout(300)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(name=st.sampled_from(sorted(ENTRY)), tail=st.lists(TOKENS, max_size=6))
def test_random_command_lines(place, capsys, name, tail):
    """The base argv with random tokens appended: repeats, unknown flags, odd values."""
    argv = [*ENTRY[name][1], *tail]
    if "-h" in tail or "--help" in tail:
        argv.remove("-h")  # help is exit 0 with several lines: fine, but not what is fuzzed here
    check(place, capsys, name, argv)
