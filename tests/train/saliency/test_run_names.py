"""A run's name is its folder under --out, and the launcher refuses before starting any run
what every run would refuse: one line, exit 2, nothing written inside or outside --out."""

import os
from pathlib import Path

import pytest
import torch
import yaml

from train.saliency.__main__ import main as train_one
from train.saliency.config import ConfigError, parse_config
from train.saliency.parallel import main
from train.saliency.synthetic import write_synthetic
from trajkit.cli import short_repr


def every_file(root: Path) -> dict[str, tuple[int, int]]:
    """Each path under ``root`` (links not followed) with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


def named(tiny_config, data: Path, variant: str, name: str) -> str:
    path = tiny_config(variant, data, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["name"] = name
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def refused(capsys, argv: list[str], root: Path, command=main) -> str:
    """Run ``command``; assert exit 2 with one line and no file added or changed under ``root``."""
    before = every_file(root)
    assert command(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert every_file(root) == before
    return err


BAD_NAMES = {
    "parent": "../escaped",
    "absolute": None,  # a path under the test's own folder, filled in below
    "nested": "sub/dir",
    "backslash": "a\\b",
    "newline": "new\nline",
    "tab": "a\tb",
    "dot": ".",
    "dot dot": "..",
    "dot slash": "./dup",
    "hidden": ".lock",
    "option-like": "-x",
    "blank": "   ",
    "padded": " dup ",
    "256 bytes": "x" * 256,
    "non-ASCII": "caf\u00e9",
    "summary.md": "summary.md",
    "summary.json in capitals": "SUMMARY.JSON",
    "slurm": "slurm",
}


@pytest.mark.parametrize("bad", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_name_that_is_no_plain_folder_name_is_refused_before_any_run(
    tiny_config, synth, tmp_path, capsys, bad
):
    """Before, "../x" and "/abs" trained beside or far from --out, "sub/dir" nested, a newline
    split the summary's table, and "summary.md" made a run folder the summary could not replace."""
    bad = bad if bad is not None else str(tmp_path / "escaped_abs")
    configs = [
        named(tiny_config, synth, "baseline", "good"),
        named(tiny_config, synth, "entropy_reg", bad),
    ]
    out = tmp_path / "runs"
    err = refused(capsys, ["--configs", *configs, "--out", str(out)], tmp_path)
    assert f"name: {short_repr(bad)}" in err, err
    assert not out.exists()


def test_dup_and_dot_slash_dup_are_refused(tiny_config, synth, tmp_path, capsys):
    """Both used to pass the check that no two variants share a name, and shared one folder."""
    configs = [
        named(tiny_config, synth, "baseline", "dup"),
        named(tiny_config, synth, "entropy_reg", "./dup"),
    ]
    err = refused(capsys, ["--configs", *configs, "--out", str(tmp_path / "runs")], tmp_path)
    assert "name: './dup'" in err, err


def test_names_differing_only_in_case_are_one_folder(tiny_config, synth, tmp_path, capsys):
    """On macOS and Windows "Dup" and "dup" are one folder: refused everywhere, so that a config
    pair does not work on one machine and collide on another."""
    configs = [
        named(tiny_config, synth, "baseline", "Dup"),
        named(tiny_config, synth, "entropy_reg", "dup"),
    ]
    err = refused(capsys, ["--configs", *configs, "--out", str(tmp_path / "runs")], tmp_path)
    assert "'Dup'" in err and "'dup'" in err and "case is ignored" in err, err


def test_the_single_run_command_refuses_the_name_too(
    tiny_config, synth, tmp_path, capsys, monkeypatch
):
    """Its default run folder is runs/saliency/NAME: "../x" left runs/saliency."""
    monkeypatch.chdir(tmp_path)
    config = named(tiny_config, synth, "baseline", "../escaped")
    err = refused(capsys, ["--config", config, "--epochs", "1"], tmp_path, train_one)
    assert "name: '../escaped'" in err, err


def test_the_name_length_limit(tiny_config, synth):
    from train.saliency.config import MAX_NAME_LENGTH

    raw = yaml.safe_load(Path(tiny_config("baseline", synth)).read_text())
    assert parse_config({**raw, "name": "x" * MAX_NAME_LENGTH}).name == "x" * MAX_NAME_LENGTH
    with pytest.raises(ConfigError, match=f"name: .* is {MAX_NAME_LENGTH + 1} characters long"):
        parse_config({**raw, "name": "x" * (MAX_NAME_LENGTH + 1)})


def test_cuda_without_a_gpu_is_refused_before_any_run(
    tiny_config, synth, tmp_path, capsys, monkeypatch
):
    """Each run refused it, and the launcher reported every variant failed (exit 1)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = named(tiny_config, synth, "baseline", "good")
    argv = ["--configs", config, "--out", str(tmp_path / "runs"), "--device", "cuda"]
    assert "--device cuda" in refused(capsys, argv, tmp_path)


def test_too_few_stimuli_for_the_splits_are_refused_before_any_run(tiny_config, tmp_path, capsys):
    """Two stimuli leave the val split empty; each run refused them on its own."""
    data = write_synthetic(tmp_path / "two", 2, seed=0)
    config = named(tiny_config, data, "baseline", "good")
    err = refused(capsys, ["--configs", config, "--out", str(tmp_path / "runs")], tmp_path)
    assert "leave the train or val split empty" in err, err


def test_a_run_path_that_is_a_file_is_refused_before_any_run(tiny_config, synth, tmp_path, capsys):
    """The launcher failed to make the run's folder after starting the others, and stopped them."""
    out = tmp_path / "runs"
    out.mkdir()
    (out / "second").write_text("not a run\n")
    configs = [
        named(tiny_config, synth, "baseline", "first"),
        named(tiny_config, synth, "entropy_reg", "second"),
    ]
    err = refused(capsys, ["--configs", *configs, "--out", str(out)], tmp_path)
    assert f"{out / 'second'} exists and is not a folder" in err, err


def test_an_out_folder_starting_with_a_dash_reaches_the_runs(
    tiny_config, synth, tmp_path, capsys, monkeypatch
):
    """The run got "--out -runs/good", which its parser read as two options."""
    monkeypatch.chdir(tmp_path)
    config = named(tiny_config, synth, "baseline", "good")
    assert main(["--configs", config, "--out=-runs"]) == 0, capsys.readouterr()
    assert (tmp_path / "-runs" / "good" / "results.json").is_file()
